"""Is ``zoo run`` with default settings as fast as the best hand-written loop on this CPU?

For each built-in model, a hand-written training step (forward, backward, AdamW) on in-memory
batches, in the four configurations {fp32, bf16 autocast} × {NCHW, channels_last}, then ``zoo
run``'s own trainer with default precision and memory format on the same data (the clock
datasets' render cache, MNIST in memory), its rate read from its steady-state ``img_per_s``
lines. Hand-written and zoo measurements alternate round by round, so a busy machine slows both
alike; medians are printed. Ends with ``cpu_fastpath ratio=<zoo default / best hand-written>``
for the clock ResNet (``clock.angles``); the goal is ≥ 0.95.

    python benchmarks/cpu_fastpath.py [--rounds 3] [--steps 12] [--only clock.angles]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zoo.experiment import assemble, resolve
from zoo.training.loop import Trainer

MODELS = ("clock.angles", "clock.multihead", "clock.regression", "cae.mnist", "vae.mnist",
          "gan.mnist")
CONFIGS = {"fp32 NCHW": (None, False), "fp32 CL": (None, True), "bf16 NCHW": (torch.bfloat16, False),
           "bf16 CL": (torch.bfloat16, True)}
BATCH = 64
SMALL = {"data.train_size": 1024, "data.val_size": 64, "data.test_size": 64}


def settings(name: str) -> dict[str, object]:
    return {"train.batch_size": BATCH, **(SMALL if name.startswith("clock.") else {})}


def hand_written(name: str, dtype: torch.dtype | None, channels_last: bool, steps: int,
                 compile_: bool = False) -> float:
    """img/s of the loop a user writes by hand, on one in-memory batch (``torch.compile``d when
    ``compile_``: its first steps, which compile, are not timed)."""
    parts = assemble(resolve(name, settings(name)))
    data = parts.dataset.split("train", 0)
    batch = torch.utils.data.default_collate([data[i] for i in range(BATCH)])
    torch.manual_seed(0)
    model = parts.build_model().train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = [b.contiguous(memory_format=torch.channels_last) if b.dim() == 4 else b for b in batch]
    forward = torch.compile(model) if compile_ else model
    phases = parts.task.phases
    optimizers = {p: torch.optim.AdamW(list(parts.task.parameters(model, p)), lr=1e-4) for p in phases}
    for i in range(steps + 2):
        if i == 2:  # the first steps pay for oneDNN's kernel selection
            start = time.perf_counter()
        for phase in phases:
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                loss, _ = parts.task.loss(forward, batch, phase)
            optimizers[phase].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[phase].step()
    return steps * BATCH / (time.perf_counter() - start)


def zoo_default(name: str, steps: int, out: Path) -> tuple[float, str]:
    """img/s that the real trainer logs in steady state, with default precision and layout."""
    log_every = max(2, steps // 3)
    config = resolve(name, {**settings(name), "train.max_steps": 2 + 3 * log_every,
                            "train.log_every": log_every, "train.eval_every": 0})
    run = out / f"{name}-{time.time_ns()}"
    trainer = Trainer(config, run, progress=False)
    trainer.fit()
    rates = [r["img_per_s"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r.get("split") == "train" and "img_per_s" in r]
    return statistics.median(rates[1:] or rates), trainer.precision.describe()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--only", nargs="*", default=list(MODELS))
    ap.add_argument("--compile", action="store_true",
                    help="only compare eager and torch.compile on the fast path (bf16 CL)")
    args = ap.parse_args()
    if args.compile:
        for name in args.only:
            eager, compiled = [], []
            for _ in range(args.rounds):
                eager.append(hand_written(name, torch.bfloat16, True, args.steps))
                compiled.append(hand_written(name, torch.bfloat16, True, args.steps, True))
            e, c = statistics.median(eager), statistics.median(compiled)
            print(f"{name:18s} bf16 CL eager {e:8.1f} img/s   compiled {c:8.1f} img/s   ×{c / e:.2f}")
        print(f"cpu_fastpath compile_speedup={c / e:.3f}")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{args.steps} steps × {args.rounds} rounds (medians)")
    print(f"{'model':18s}" + "".join(f"{c:>11s}" for c in CONFIGS) + f"{'zoo run':>11s}  zoo chose")
    ratio = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            rates: dict[str, list[float]] = {c: [] for c in (*CONFIGS, "zoo run")}
            chose = ""
            for _ in range(args.rounds):
                for label, (dtype, cl) in CONFIGS.items():
                    rates[label].append(hand_written(name, dtype, cl, args.steps))
                rate, chose = zoo_default(name, args.steps, Path(tmp))
                rates["zoo run"].append(rate)
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"{name:18s}" + "".join(f"{med[c]:11.1f}" for c in (*CONFIGS, "zoo run")) + f"  {chose}")
            if name == "clock.angles":
                ratio = med["zoo run"] / max(med[c] for c in CONFIGS)
    if ratio is not None:
        print(f"cpu_fastpath ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
