"""Where and how a model runs: device, precision, memory format, threads.

``--precision auto`` picks the fast path a device has *and* that is safe there:

* CUDA: bf16 autocast where the GPU supports it, channels_last for conv nets;
* a CPU with native bf16 (AVX512-BF16 or AMX): bf16 autocast **with** channels_last for conv nets.
  On such CPUs bf16 without channels_last is slower than fp32 (oneDNN reorders every conv), and
  channels_last without bf16 is often slower too: the two only pay together;
* a CPU where native bf16 is unknown (not x86, or a torch without the capability query): a short
  one-off probe times both paths on a small conv net and the answer is cached under
  ``$ZOO_HOME/probe/``;
* everywhere else: fp32, NCHW.

The choice is made by capability, never by CPU model names, and ``Precision.reason`` says why,
so the trainer's start line can tell the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UsageError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
PROBE_VERSION = 1


def pick_device(name: str) -> torch.device:
    """``auto`` prefers cuda, then mps, then cpu; an unavailable explicit device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"bad device '{name}' (auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device '{name}' asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("device 'mps' asked for, but MPS is not available here")
    return device


@dataclass(frozen=True)
class Precision:
    """The autocast dtype (None: plain fp32), whether conv nets go channels_last, and why."""

    dtype: torch.dtype | None
    channels_last: bool
    reason: str

    @property
    def name(self) -> str:
        return NAMES[self.dtype]

    def describe(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.name}{layout}: {self.reason}"


def cpu_bf16_native() -> bool | None:
    """True/False where torch can tell whether this CPU computes bf16 natively; None if unknown."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None
    cpu = getattr(torch, "cpu", None)
    avx512_bf16 = getattr(cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(cpu, "_is_amx_tile_supported", None)
    if avx512_bf16 is None or amx is None:
        return None
    try:
        return bool(avx512_bf16() or amx())
    except RuntimeError:
        return None


def cpu_bf16_feature() -> str:
    """The capability that makes bf16 native here, for the start line."""
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    return "AVX512-BF16"


def has_conv(model: nn.Module | None) -> bool:
    """channels_last only changes anything for 2-D convolutions (and their transposes)."""
    if model is None:
        return True
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def pick_precision(precision: str, device: torch.device, model: nn.Module | None = None,
                   channels_last: bool = True) -> Precision:
    """Resolve ``--precision`` (auto|fp32|bf16|fp16) and the memory format for ``device``.

    ``channels_last=False`` (``--set train.channels_last=false``) keeps NCHW whatever is chosen.
    """
    if precision not in ("auto", *DTYPES):
        raise UsageError(f"bad precision '{precision}' (auto, fp32, bf16 or fp16)")
    conv = channels_last and has_conv(model)
    if device.type == "cuda":
        if precision == "auto":
            bf16 = torch.cuda.is_bf16_supported()
            return Precision(torch.bfloat16 if bf16 else None, conv,
                             "CUDA with bf16" if bf16 else "this GPU has no bf16")
        return Precision(DTYPES[precision], conv, f"--precision {precision}")
    if device.type != "cpu":
        reason = "auto: fp32 on this device" if precision == "auto" else f"--precision {precision}"
        return Precision(DTYPES["fp32" if precision == "auto" else precision], False, reason)
    if precision != "auto":
        # An explicit bf16 on CPU still gets channels_last: without it bf16 convs are a trap.
        return Precision(DTYPES[precision], conv and precision == "bf16", f"--precision {precision}")
    native = cpu_bf16_native()
    if native:
        return Precision(torch.bfloat16, conv, f"auto: CPU has native bf16 ({cpu_bf16_feature()})")
    if native is False:
        return Precision(None, False, "auto: CPU has no native bf16")
    if probe_bf16_pays():
        return Precision(torch.bfloat16, conv, "auto: bf16 + channels_last measured faster here")
    return Precision(None, False, "auto: bf16 measured no faster here")


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def prepare(model: nn.Module, precision: Precision) -> nn.Module:
    """Put a model's weights in the memory format the precision asks for (in place)."""
    return model.to(memory_format=torch.channels_last) if precision.channels_last else model


# ---------------------------------------------------------------- the one-off probe


def _probe_path() -> Path:
    from ..env import cache_dir as zoo_home

    key = json.dumps([PROBE_VERSION, torch.__version__, platform.machine(), platform.processor(),
                      os.cpu_count()])
    return zoo_home() / "probe" / f"cpu-bf16-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _time_steps(dtype: torch.dtype | None, channels_last: bool, steps: int = 4) -> float:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4))
    x = torch.randn(16, 8, 64, 64)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            loss = net(x).float().square().mean()
        loss.backward()
        best = min(best, time.perf_counter() - start)
    return best


def probe_bf16_pays() -> bool:
    """Time fp32/NCHW against bf16/channels_last once per machine and torch; cache the answer."""
    path = _probe_path()
    try:
        return bool(json.loads(path.read_text())["bf16_pays"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        fp32, bf16 = _time_steps(None, False), _time_steps(torch.bfloat16, True)
    except RuntimeError:  # bf16 kernels missing on this CPU
        fp32, bf16 = 1.0, float("inf")
    pays = bf16 < 0.8 * fp32
    try:
        from ..storage.files import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"bf16_pays": pays, "fp32_s": fp32, "bf16_cl_s": bf16}))
    except OSError:
        pass  # a read-only ZOO_HOME only costs a probe next time
    return pays
