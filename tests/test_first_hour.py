"""What a new user sees: a run they can watch, a finish that says what next, data that arrives."""

from __future__ import annotations

import io
import json
import os
import re
import sys

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.config import RunConfig
from zoo.experiment import resolve
from zoo.training.progress import Progress, duration, finish_block, planned_epochs, total_steps


class FakeTTY(io.StringIO):
    """A terminal as far as ``isatty`` goes; its width is whatever ``os.get_terminal_size`` says."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2


def toy_config(**train: object) -> RunConfig:
    sets = {"train.batch_size": 32, "train.seed": 0, **{f"train.{k}": v for k, v in train.items()}}
    return resolve("toy.regression", sets)


def train_to(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch, tmp_path, **train: object) -> dict:
    from zoo.training.loop import Trainer

    monkeypatch.setattr(sys, "stderr", stream)
    return Trainer(toy_config(**train), tmp_path / "run").fit()


# ---------------------------------------------------------------- watchable runs


def test_plain_lines_off_a_terminal_honour_max_steps(toy, tmp_path, monkeypatch):
    stream = io.StringIO()  # a pipe or a log file: no bar, kept lines
    train_to(stream, monkeypatch, tmp_path, epochs=5, max_steps=10)  # 8 batches per epoch
    text = stream.getvalue()
    assert "10 steps (--max-steps) in 2 epoch(s) of 8 batches of 32" in text
    epochs = re.findall(r"^epoch (\d+)/(\d+) step (\d+)/(\d+) val mse=", text, flags=re.M)
    assert epochs == [("1", "2", "8", "10"), ("2", "2", "10", "10")]
    assert "/5" not in text and "\r" not in text


def test_zero_column_terminal_falls_back_to_plain_lines(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=0: os.terminal_size((0, 0)))
    stream = FakeTTY()
    train_to(stream, monkeypatch, tmp_path, epochs=2)
    text = stream.getvalue()
    assert re.findall(r"^epoch (\d)/2 step \d+/16 val mse=\S+", text, flags=re.M)
    assert len(re.findall(r"^epoch \d/2 ", text, flags=re.M)) == 2
    assert "\r" not in text  # no bar drawn into a terminal of unknown width


def test_terminal_shows_one_bar_for_the_run_and_keeps_epoch_lines(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=0: os.terminal_size((100, 30)))
    stream = FakeTTY()
    train_to(stream, monkeypatch, tmp_path, epochs=2)
    text = stream.getvalue()
    lines = [line for chunk in text.split("\r") for line in chunk.splitlines()]
    assert any(re.match(r"epoch 2/2 +100%\|.*\| 16/16", line) for line in lines), text
    kept = [line for line in text.replace("\r", "\n").splitlines() if re.match(r"epoch \d/2 step", line)]
    assert [k.split(" step")[0] for k in kept] == ["epoch 1/2", "epoch 2/2"] and "val mse=" in kept[0]


def test_plain_progress_lines_carry_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(3, stream, interval=0)
    progress.start(total=30)
    progress.update(1, {"loss": 0.5}, 1000.0, epoch=0)  # the first batch: no rate to judge by yet
    progress.update(5, {"loss": 0.25}, 1234.0, epoch=0)
    progress.epoch_end(1, {"acc": 0.5}, 61)
    progress.close()
    zeroth, first, second = stream.getvalue().splitlines()
    assert zeroth == "epoch 1/3 step 1/30 loss=0.5 1000 img/s"
    assert first.startswith("epoch 1/3 step 5/30 loss=0.25 1234 img/s eta ")
    assert second == "epoch 1/3 step 5/30 val acc=0.5 (1m01s)"


def test_step_arithmetic():
    assert total_steps(5, 156, 100) == 100 and total_steps(5, 156, 0) == 780
    assert planned_epochs(5, 156, 100) == 1 and planned_epochs(5, 156, 0) == 5
    assert planned_epochs(5, 156, 10_000) == 5
    assert duration(3725) == "1h02m" and duration(65) == "1m05s" and duration(4) == "4s"


# ---------------------------------------------------------------- the finish


def test_run_ends_with_a_block_that_says_what_next(toy, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "toy.regression", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    weights = out / "model.safetensors"
    assert "test mse:" in result.stdout
    err = result.stderr
    assert re.search(r"^result: test mse \S+$", err, flags=re.M)  # the toy has nothing published
    assert f"weights: {weights}" in err
    assert f"zoo predict toy.regression photo.jpg --weights {weights}" in err
    assert f"zoo eval toy.regression --weights {weights}" in err
    assert f"zoo publish {out}" in err


def test_finish_names_the_published_reference_and_the_best_of_the_family():
    summary = {"experiment": "clock.multihead", "main_metric": "error_mean",
               "test": {"error_mean": 54.18, "samples": 2000.0},
               "weights": "runs/clock.multihead/1/model.safetensors",
               "figures": ["runs/clock.multihead/1/figures/error_histogram.png"]}
    text = finish_block(summary)
    head = text.splitlines()[0]
    assert head.startswith("result: test error_mean 54.18, 2000 samples   published: ")
    index = json.loads((__import__("pathlib").Path(__file__).parents[1] / "registry" / "index.json").read_text())
    own = index["weights"]["clock.multihead:default"]["metrics"]["error_mean"]
    best = index["weights"]["clock.angles:default"]["metrics"]["error_mean"]
    assert f"clock.multihead:default {own:.4g}" in head and f"best clock.*: clock.angles:default {best:.4g}" in head
    assert "figures: runs/clock.multihead/1/figures/ (error_histogram.png)" in text


def test_finish_skips_the_reference_when_no_index_can_be_read(monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", "https://example.invalid/index.json")  # offline, nothing cached
    summary = {"experiment": "clock.multihead", "main_metric": "error_mean", "test": {"error_mean": 50.0},
               "weights": "r/model.safetensors", "figures": []}
    text = finish_block(summary, decodes=False)
    assert text.splitlines()[0] == "result: test error_mean 50"
    assert "zoo predict" not in text and "zoo eval clock.multihead --weights r/model.safetensors" in text


# ---------------------------------------------------------------- consistent numbers


def test_list_descriptions_are_cut_on_a_word_with_an_ellipsis():
    result = CliRunner().invoke(cli, ["list", "--kind", "models"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("clock-fig1 "))
    assert row.endswith(" …") and row.split()[-2] == "Conv(32)-Pool-Conv(64,"  # a whole word, then the ellipsis
    assert "Pool-Conv(128)" not in row


def test_figures_cover_the_split_the_metrics_cover(toy, tmp_path, monkeypatch):
    seen: list[int] = []

    def figures(self, model, batches, out_dir):
        seen.append(sum(len(b[0]) for b in batches))
        return []

    import zoo_toy

    monkeypatch.setattr(zoo_toy.Regression, "figures", figures)
    summary = train_to(io.StringIO(), monkeypatch, tmp_path, epochs=1, batch_size=8)
    assert seen == [64] and summary["figures"] == []  # Blobs' test split: all 64, not 4 batches of 8


def test_sample_scale_makes_bigger_tiles(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    args = ["sample", "gan.mnist", "--pretrained", "-n", "4", "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert Image.open(out).size == (2 * (28 + 2) + 2,) * 2
    assert CliRunner().invoke(cli, [*args, "--scale", "3"]).exit_code == 0
    assert Image.open(out).size == (2 * (84 + 2) + 2,) * 2
    bad = CliRunner().invoke(cli, [*args, "--scale", "0"])
    assert bad.exit_code == 2 and "--scale" in bad.output
