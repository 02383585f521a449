"""The fast path: precision and memory format chosen by capability, and data that keeps up."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from zoo import UsageError
from zoo.experiment import assemble, resolve
from zoo.training import runtime
from zoo.training.data import BatchLoader
from zoo.training.loop import Trainer

CONV = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())
MLP = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
CPU = torch.device("cpu")
TINY_CLOCKS = {"data.train_size": 48, "data.val_size": 8, "data.test_size": 8,
               "train.batch_size": 8, "train.epochs": 1, "train.log_every": 1}


@pytest.fixture
def no_probe(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the probe ran although the capability was known")

    monkeypatch.setattr(runtime, "_time_steps", refuse)


def test_auto_is_fp32_nchw_where_cpu_bf16_is_not_native(monkeypatch, no_probe):
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    chosen = runtime.pick_precision("auto", CPU, CONV)
    assert (chosen.dtype, chosen.channels_last) == (None, False)
    assert "no native bf16" in chosen.describe()


def test_auto_is_bf16_channels_last_for_conv_nets_where_bf16_is_native(monkeypatch, no_probe):
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    conv = runtime.pick_precision("auto", CPU, CONV)
    assert (conv.dtype, conv.channels_last) == (torch.bfloat16, True)
    mlp = runtime.pick_precision("auto", CPU, MLP)  # channels_last changes nothing without convs
    assert (mlp.dtype, mlp.channels_last) == (torch.bfloat16, False)
    kept = runtime.pick_precision("auto", CPU, CONV, channels_last=False)
    assert (kept.dtype, kept.channels_last) == (torch.bfloat16, False)


def test_explicit_precision_wins_and_bf16_never_comes_without_channels_last(monkeypatch, no_probe):
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    assert runtime.pick_precision("fp32", CPU, CONV).dtype is None
    assert not runtime.pick_precision("fp32", CPU, CONV).channels_last
    forced = runtime.pick_precision("bf16", CPU, CONV)  # bf16 NCHW is the 3× slower trap
    assert (forced.dtype, forced.channels_last) == (torch.bfloat16, True)
    with pytest.raises(UsageError, match="bad precision"):
        runtime.pick_precision("fp64", CPU, CONV)


def test_unknown_capability_is_probed_once_and_cached_in_zoo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: None)
    timings = {(None, False): 1.0, (torch.bfloat16, True): 0.5}
    calls = []

    def fake(dtype, channels_last, steps=4):
        calls.append((dtype, channels_last))
        return timings[(dtype, channels_last)]

    monkeypatch.setattr(runtime, "_time_steps", fake)
    first = runtime.pick_precision("auto", CPU, CONV)
    assert first.dtype == torch.bfloat16 and first.channels_last and "measured" in first.reason
    assert len(calls) == 2
    (cached,) = (tmp_path / "probe").glob("cpu-bf16-*.json")
    assert json.loads(cached.read_text())["bf16_pays"] is True
    second = runtime.pick_precision("auto", CPU, CONV)
    assert second == first and len(calls) == 2  # read from the cache, not timed again

    cached.write_text(json.dumps({"bf16_pays": False}))
    assert runtime.pick_precision("auto", CPU, CONV).dtype is None


def test_a_machine_without_cuda_never_picks_a_cuda_setting(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.pick_device("auto") == CPU
    with pytest.raises(UsageError, match="CUDA is not available"):
        runtime.pick_device("cuda")
    for precision in ("auto", "fp32", "bf16", "fp16"):
        chosen = runtime.pick_precision(precision, runtime.pick_device("auto"), CONV)
        assert "CUDA" not in chosen.reason


def _run(tmp_path, name: str, resume: bool = False, **sets: object) -> Trainer:
    config = resolve("clock.multihead", {**TINY_CLOCKS, "train.precision": "bf16", **sets})
    return Trainer(config, tmp_path / name, resume=resume, progress=False)


def test_bf16_channels_last_resume_is_bitwise_equal(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    whole = _run(tmp_path, "whole", **{"train.max_steps": 5})
    assert whole.precision.dtype == torch.bfloat16 and whole.precision.channels_last
    conv = next(m for m in whole.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    whole.fit()

    _run(tmp_path, "split", **{"train.max_steps": 2}).fit()
    resumed = _run(tmp_path, "split", resume=True, **{"train.max_steps": 5})
    assert resumed.global_step == 2 and resumed.precision == whole.precision
    resumed.fit()
    want, got = (load_file(tmp_path / run / "model.safetensors") for run in ("whole", "split"))
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key


def test_cached_clocks_are_the_rendered_clocks_and_are_rendered_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    cached = assemble(resolve("clock.multihead", TINY_CLOCKS)).dataset
    fly = assemble(resolve("clock.multihead", {**TINY_CLOCKS, "data.cache": False})).dataset
    split, reference = cached.split("val", 3), fly.split("val", 3)
    x, y = split.get_batch(torch.tensor([5, 0, 7]))
    for row, i in enumerate((5, 0, 7)):
        assert torch.equal(x[row], reference[i][0]) and torch.equal(y[row], reference[i][1])

    import zoo_clock.cache as cache

    def refuse(*args):
        raise AssertionError("rendered again")

    folders = [p for p in (tmp_path / "cache").glob("*/*") if p.is_dir()]
    for folder in folders:
        os.utime(folder, (0, 0))
    monkeypatch.setattr(cache, "_render_all", refuse)
    again = assemble(resolve("clock.multihead", TINY_CLOCKS)).dataset.split("val", 3)
    assert torch.equal(again.get_batch(torch.arange(8))[0], split.get_batch(torch.arange(8))[0])
    used = [p for p in folders if p.stat().st_mtime > time.time() - 60]
    assert len(used) == 1  # opening the val split is a use, for `zoo cache clear --older-than`


def test_in_memory_splits_skip_dataloader_workers_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    trainer = _run(tmp_path, "run", **{"train.max_steps": 1})
    assert isinstance(trainer.loader, BatchLoader)
    workers = _run(tmp_path, "run2", **{"train.max_steps": 1, "train.num_workers": 1})
    assert isinstance(workers.loader, torch.utils.data.DataLoader)


def test_single_items_of_an_uncached_split_render_only_themselves(tmp_path, monkeypatch):
    """The plugin kit and workers touch a few samples of 60,000: that must not render 60,000."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    import zoo_clock.cache as cache

    def refuse(*args):
        raise AssertionError("the whole split was rendered for one item")

    monkeypatch.setattr(cache, "_render_all", refuse)
    dataset = assemble(resolve("clock.multihead", {"data.train_size": 60000})).dataset
    split = dataset.split("train", 0)
    x, y = split[59999]
    assert len(split) == 60000 and x.shape == (1, 150, 150) and y.shape == (2,)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npy"))
