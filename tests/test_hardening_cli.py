"""Hostile CLI input: bad values refused at parse time, no clobbered runs, SIGTERM checkpoints,
predict and plugin errors in one line. Every failure: one line, exit 2 (bad input) or 1 (I/O)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo import config as cfg
from zoo import plugins
from zoo.cli import cli
from zoo.errors import UsageError

from conftest import run_zoo, zoo_env


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, code: int) -> str:
    """The run failed with ``code``, no exception escaped, and stderr says why in one line."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("zoo: error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if a run gets as far as training: bad values must stop at parse time."""
    import zoo.training.loop

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(zoo.training.loop, "train", refuse)


# ------------------------------------------------------------------ ranges at parse time


BAD_RUN_VALUES = [
    (["--batch-size", "0"], "train.batch_size: 0 (expected value >= 1)"),
    (["--batch-size", "-4"], "train.batch_size: -4 (expected value >= 1)"),
    (["--set", "train.accum_steps=0"], "train.accum_steps: 0 (expected value >= 1)"),
    (["--set", "train.log_every=0"], "train.log_every: 0 (expected value >= 1)"),
    (["--limit-batches", "-1"], "train.limit_batches: -1 (expected value >= 0)"),
    (["--seed", str(2**70)], f"train.seed: {2**70} (expected 0 <= value <= {2**32 - 1})"),
    (["--seed", "-1"], "train.seed: -1"),
    (["--epochs", "0"], "train.epochs: 0 (expected value >= 1)"),
    (["--max-steps", "-1"], "train.max_steps: -1 (expected value >= 0)"),
    (["--set", "train.grad_clip=-1"], "train.grad_clip: -1.0 (expected value >= 0)"),
    (["--set", "train.ema_decay=2"], "train.ema_decay: 2.0 (expected 0 < value < 1)"),
    (["--set", "train.ema_decay=0"], "train.ema_decay: 0.0 (expected 0 < value < 1)"),
    (["--lr", "0"], "train.lr: 0.0 (expected value > 0)"),
    (["--lr", "nan"], "train.lr: nan (expected a finite number)"),
    (["--set", "train.lr=inf"], "train.lr: inf (expected a finite number)"),
    (["--set", "train.lr=1e400"], "train.lr: inf (expected a finite number)"),
    (["--set", "train.warmup_epochs=-1"], "train.warmup_epochs: -1.0 (expected value >= 0)"),
    (["--set", "train.betas=0.9,1.0"], "train.betas: 1.0 (expected 0 <= value < 1)"),
    (["--set", "train.weight_decay=-0.1"], "train.weight_decay: -0.1"),
    (["--set", "train.num_workers=-2"], "train.num_workers: -2 (expected value >= -1)"),
    (["--set", "train.checkpoint_every=-5"], "train.checkpoint_every: -5"),
    (["--set", f"model.hidden={2**70}"], f"model.hidden: {2**70} (expected an int between"),  # no range: int64
    (["--set", "model.dropout=nan"], "model.dropout: nan (expected a finite number)"),
]


@pytest.mark.parametrize("args,message", BAD_RUN_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_run_values_are_refused_before_training(toy, no_training, tmp_path, args, message):
    line = one_line_error(invoke("run", "toy.regression", *args, "--out", str(tmp_path / "r")), 2)
    assert f"bad value for {message}" in line
    assert not (tmp_path / "r").exists()


BAD_CLOCK_VALUES = [
    ("clock.cls24", ["--set", "data.train_size=-5"], "data.train_size: -5 (expected value >= 1)"),
    ("clock.angles", ["--set", "model.width=0"], "model.width: 0 (expected value >= 1)"),
    ("clock.cls24", ["--set", "data.difficulty=nan"], "data.difficulty: nan"),
    ("vae.mnist", ["--set", "model.width=0"], "model.width: 0 (expected value >= 1)"),
    ("vae.mnist", ["--set", "task.sigma=0"], "task.sigma: 0.0 (expected value > 0)"),
    ("gan.mnist", ["--set", "model.latent_dim=-1"], "model.latent_dim: -1"),
]


@pytest.mark.parametrize("name,args,message", BAD_CLOCK_VALUES)
def test_plugin_settings_have_ranges_too(no_training, tmp_path, name, args, message):
    line = one_line_error(invoke("run", name, *args, "--out", str(tmp_path / "r")), 2)
    assert f"bad value for {message}" in line


@pytest.mark.parametrize("value", ["nan", "5", "-1", "1", "inf"])
def test_test_fraction_is_a_fraction(no_training, tmp_path, value):
    result = invoke("run", "clock.cls24", "--set", "data=clock-npy", "--set", f"data.test_fraction={value}",
                    "--out", str(tmp_path / "r"))
    assert "bad value for data.test_fraction" in one_line_error(result, 2)


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--limit-batches", "-1"]])
def test_eval_refuses_bad_numbers_before_loading_anything(toy, args):
    result = invoke("eval", "toy.regression", "--weights", "nowhere.safetensors", *args)
    assert result.exit_code == 2 and isinstance(result.exception, (SystemExit, type(None)))
    assert "Invalid value" in result.output


@pytest.mark.parametrize("command", ["info", "run"])
@pytest.mark.parametrize("hidden", ["-1", str(2**40)])  # negative; 256 TB of weights
def test_a_model_that_cannot_be_built_from_unranged_settings_is_one_line(toy, tmp_path, command, hidden):
    """The toy MLP declares no range for ``hidden``: its build fails in torch, reported by name."""
    extra = ["--out", str(tmp_path / "r")] if command == "run" else []
    line = one_line_error(invoke(command, "toy.regression", "--set", f"model.hidden={hidden}", *extra), 2)
    assert "model 'toy-mlp' (plugin toy) cannot be built with hidden=" in line


def test_a_plugin_config_declares_ranges_with_plain_dataclass_metadata():
    @dataclasses.dataclass
    class Config:
        width: int = dataclasses.field(default=8, metadata={"range": (1, 512)})
        temperature: float = dataclasses.field(default=1.0, metadata={"finite": False})
        scale: float = cfg.ranged(1.0, 0, lo_open=True)

    assert cfg.apply(Config(), "width", "512", "model").width == 512
    assert cfg.apply(Config(), "temperature", "inf", "model").temperature == float("inf")
    for key, value, expected in [("width", "0", "1 <= value <= 512"), ("width", "513", "1 <= value <= 512"),
                                 ("scale", "0", "value > 0"), ("scale", "nan", "a finite number")]:
        with pytest.raises(UsageError, match=f"bad value for model.{key}: .* \\(expected {expected}\\)"):
            cfg.apply(Config(), key, value, "model")


def test_every_experiment_and_shipped_weight_card_is_within_the_ranges():
    """The ranges must not refuse what the zoo itself ships (settings and published configs)."""
    from zoo.experiment import from_dict, resolve
    from zoo.storage.weights import read_card

    names = plugins.catalog().names("experiments")
    assert len(names) >= 10
    for name in names:
        resolve(name)
    cards = sorted((Path(__file__).parents[1] / "registry").rglob("*.safetensors"))
    assert cards
    for path in cards:
        from_dict(read_card(path)["config"])


# ------------------------------------------------------------------ the run folder


def _quick_run(out: Path, *extra: str):
    return invoke("run", "toy.regression", "--max-steps", "4", "--limit-batches", "4", "--out", str(out),
                  *extra)


def test_out_over_a_finished_run_is_refused_unless_overwrite(toy, tmp_path):
    out = tmp_path / "run"
    assert _quick_run(out).exit_code == 0
    weights, metrics = (out / "model.safetensors").read_bytes(), (out / "metrics.jsonl").read_text()
    line = one_line_error(_quick_run(out, "--seed", "7"), 2)
    assert "finished run" in line and f"--resume {out}" in line and "--overwrite" in line
    assert (out / "model.safetensors").read_bytes() == weights
    assert (out / "metrics.jsonl").read_text() == metrics
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 0

    replaced = _quick_run(out, "--seed", "7", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 7
    assert (out / "model.safetensors").read_bytes() != weights
    # a fresh log, not the old one with the new run appended
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(metrics.splitlines())


def test_out_over_an_unfinished_run_points_at_resume(toy, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.safetensors").write_bytes(b"x")
    line = one_line_error(_quick_run(out), 2)
    assert "unfinished run" in line and f"--resume {out}" in line
    assert (out / "checkpoint.safetensors").read_bytes() == b"x"


def test_out_that_is_a_file(toy, tmp_path):
    (tmp_path / "file").write_text("keep me")
    result = _quick_run(tmp_path / "file")
    assert result.exit_code == 2 and "is a file" in result.output, result.output
    assert (tmp_path / "file").read_text() == "keep me"


def test_out_with_a_name_longer_than_255_bytes(toy, tmp_path):
    line = one_line_error(_quick_run(tmp_path / ("é" * 200)), 1)
    assert "File name too long" in line


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("where", ["checkpoint", "metrics", "mkdir"])
def test_write_failures_are_one_line_exit_1(toy, tmp_path, monkeypatch, code, where):
    """Disk full / read-only / no permission while writing the run (root ignores chmod, so the
    OS errors are raised where the trainer writes)."""
    import zoo.training.loop

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "run" / where))

    target = {"checkpoint": (zoo.training.loop.checkpoint, "save"), "metrics": (zoo.training.loop.Trainer, "log"),
              "mkdir": (zoo.training.loop, "prepare_run_dir")}[where]
    monkeypatch.setattr(*target, fail)
    line = one_line_error(_quick_run(tmp_path / "run"), 1)
    assert os.strerror(code) in line and where in line


def test_unwritable_zoo_home_and_out_are_one_line(toy, tmp_path, monkeypatch):
    """Folders that cannot be created (under a regular file: what root meets instead of EACCES)."""
    (tmp_path / "file").write_text("")
    line = one_line_error(_quick_run(tmp_path / "file" / "run"), 1)
    assert "Not a directory" in line and "file" in line
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "file" / "home"))
    (tmp_path / "digit.png").write_text("")
    line = one_line_error(invoke("predict", "lenet.mnist", str(tmp_path / "digit.png"), "--pretrained"), 1)
    assert "Not a directory" in line and "home" in line


def test_resume_with_a_corrupt_config_json(toy, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{not json")
    (out / "checkpoint.safetensors").write_bytes(b"x")
    line = one_line_error(invoke("run", "toy.regression", "--resume", str(out)), 2)
    assert "not valid JSON" in line


# ------------------------------------------------------------------ SIGTERM


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "run ended before its first checkpoint"
        if path.is_file():
            return
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143)])  # SIGINT (130): test_trainer.py
def test_sigterm_checkpoints_and_resume_finishes(toy_site, tmp_path, signum, code):
    env = zoo_env(toy_site)
    out = tmp_path / "run"
    slow = ["--set", "task.delay=0.03", "--set", "train.num_workers=0", "--max-steps", "40", "--epochs", "3",
            "--checkpoint-every", "5"]
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "run", "toy.regression", *slow, "--out", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(out / "checkpoint.safetensors", proc)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert f"zoo run toy.regression --resume {out}" in err and "Traceback" not in err
    from zoo.storage.checkpoint import load

    stopped_at = load(out / "checkpoint.safetensors")["position"]["global_step"]
    assert 5 <= stopped_at < 40 and not (out / "model.safetensors").exists()
    resumed = run_zoo(["run", "toy.regression", "--resume", str(out)], env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 40


def test_a_second_sigterm_stops_at_once_without_a_half_done_checkpoint(toy_site, tmp_path):
    out = tmp_path / "run"
    slow = ["--set", "task.delay=0.4", "--set", "train.num_workers=0", "--max-steps", "40",
            "--checkpoint-every", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "run", "toy.regression", *slow, "--out", str(out)],
                            env=zoo_env(toy_site), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(out / "checkpoint.safetensors", proc)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)  # the batch takes 0.4 s: the second signal lands inside it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    from zoo.storage.checkpoint import load

    position = load(out / "checkpoint.safetensors")["position"]
    assert position["global_step"] % 2 == 0  # the last periodic checkpoint, not one saved mid-batch
    assert position["micro_step"] == position["global_step"]


# ------------------------------------------------------------------ predict


@pytest.fixture
def toy_weights(toy, tmp_path):
    out = tmp_path / "weights-run"
    assert _quick_run(out).exit_code == 0
    return str(out / "model.safetensors")


def _predict(weights: str, *images: Path):
    return invoke("predict", "toy.regression", *map(str, images), "--weights", weights)


def test_predict_names_the_plugin_when_its_load_image_raises(toy, toy_weights, tmp_path, monkeypatch):
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "ok.png")

    def broken(self, path):
        raise KeyError("boom")

    monkeypatch.setattr(toy.Blobs, "load_image", broken)
    line = one_line_error(_predict(toy_weights, tmp_path / "ok.png"), 1)
    assert "plugin 'toy'" in line and "ok.png" in line and "boom" in line


def test_predict_refuses_what_load_image_returns_in_the_wrong_shape(toy, toy_weights, tmp_path, monkeypatch):
    import torch
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "ok.png")
    monkeypatch.setattr(toy.Blobs, "load_image", lambda self, path: torch.zeros(3, 5))
    line = one_line_error(_predict(toy_weights, tmp_path / "ok.png"), 1)
    assert "returned shape (3, 5)" in line and "expected (1, 8, 8)" in line


@pytest.mark.parametrize("content", [b"", b"hello, not an image\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_predict_on_files_that_are_not_images(toy_weights, tmp_path, content):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    line = one_line_error(_predict(toy_weights, bad), 2)
    assert "cannot read" in line and "bad.png" in line


def test_predict_on_a_folder_says_so_before_loading_any_weights(toy, tmp_path):
    folder = tmp_path / "photos.png"
    folder.mkdir()
    line = one_line_error(invoke("predict", "toy.regression", str(folder), "--weights", "nowhere.safetensors"), 2)
    assert line.endswith(f"{folder} is a directory; expected an image"), line
    line = one_line_error(invoke("predict", "toy.regression", str(tmp_path / "gone.png"), "--weights", "x"), 2)
    assert line.endswith(f"no such image: {tmp_path / 'gone.png'}"), line


@pytest.mark.parametrize("side", [40, 50])  # 1600 px: PIL only warns; 2500 px: PIL raises
def test_predict_refuses_decompression_bombs(toy_weights, tmp_path, monkeypatch, side):
    from PIL import Image

    Image.new("L", (side, side)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    line = one_line_error(_predict(toy_weights, tmp_path / "bomb.png"), 2)
    assert "bomb.png" in line and "exceeds limit" in line


def test_mnist_predict_on_a_text_file(tmp_path):
    (tmp_path / "digit.png").write_text("not a digit")
    line = one_line_error(invoke("predict", "lenet.mnist", str(tmp_path / "digit.png"), "--pretrained"), 2)
    assert "plugin 'generative'" in line and "digit.png" in line


@pytest.mark.parametrize("name", ["vae.mnist", "gan.mnist", "cae.mnist"])
def test_predict_on_generative_models_says_what_to_use(name, tmp_path):
    line = one_line_error(invoke("predict", name, str(tmp_path / "x.png"), "--weights", "w.safetensors"), 2)
    assert f"{name} cannot predict" in line and "zoo sample" in line and "zoo eval" in line


@pytest.mark.parametrize("args,message", [
    (["sample", "vae.mnist", "--seed", str(2**70)], "--seed"),
    (["sample", "vae.mnist", "--nrow", "-1"], "--nrow"),
    (["sample", "vae.mnist", "-n", "0"], "-n"),
    (["interpolate", "vae.mnist", "--dims", "1", "--steps", "100000"], "--steps"),
    (["interpolate", "vae.mnist", "--dims", "1", "--range", "nan"], "--range must be a number"),
    (["interpolate", "vae.mnist", "--dims", "1", "--range", "-3"], "--range must be a number"),
])
def test_sample_and_interpolate_refuse_bad_numbers(tmp_path, args, message):
    result = invoke(*args, "--pretrained", "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and isinstance(result.exception, (SystemExit, type(None))), result.output
    assert message in result.output and not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ plugins and data messages


@pytest.fixture
def twice(toy):
    from zoo import hookimpl

    class Plugin:
        @hookimpl
        def zoo_register_models(self, register):
            register("twice-mlp", toy.MLP)
            register("twice-mlp", toy.MLP)

    plugins.register_plugin(Plugin(), "twice")
    yield
    plugins.unregister_plugin("twice")


def test_a_name_registered_twice_in_one_plugin_is_reported(twice, monkeypatch):
    result = invoke("list", "--kind", "models")
    assert result.exit_code == 0, result.output
    assert "zoo: plugin 'twice' registers model 'twice-mlp' twice" in result.output
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    plugins._catalog = None  # rebuilt: strict mode now applies
    line = one_line_error(invoke("list", "--kind", "models"), 1)
    assert "plugin 'twice' registers model 'twice-mlp' twice" in line


@pytest.mark.parametrize("wanted", ["nosuch", "clock,nosuch"])
def test_unknown_zoo_load_plugins_names_are_reported(wanted):
    result = run_zoo(["list"], zoo_env(ZOO_LOAD_PLUGINS=wanted), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ZOO_LOAD_PLUGINS names nosuch: not installed; installed: clock" in result.stderr
    assert ("clock.cls24" in result.stdout) == ("clock" in wanted)
    strict = run_zoo(["list"], zoo_env(ZOO_LOAD_PLUGINS=wanted, ZOO_STRICT_PLUGINS="1"), timeout=60)
    assert strict.returncode == 1 and "zoo: error: ZOO_LOAD_PLUGINS names nosuch" in strict.stderr


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_npy_clocks_that_are_not_files_are_named_as_such(tmp_path, kind):
    from zoo_clock.data import NpyClocks, NpyConfig

    (tmp_path / "labels.npy").write_bytes(b"")
    if kind == "dir":
        (tmp_path / "images.npy").mkdir()
    else:
        os.mkfifo(tmp_path / "images.npy")
    signal.alarm(10)  # np.load on a FIFO would block forever
    try:
        with pytest.raises(UsageError) as info:
            NpyClocks(NpyConfig(root=str(tmp_path))).arrays()
    finally:
        signal.alarm(0)
    assert "images.npy is not a regular file" in str(info.value)
    assert "no images.npy" not in str(info.value)


# ------------------------------------------------------------------ fuzz


def test_fuzzed_cli_values_end_in_a_clean_exit(toy, tmp_path, monkeypatch):
    """Random values for the options of run/eval/list/info and random ``--set`` pairs (keys from
    the real config fields): exit 0, 1 or 2, no exception, nothing written outside this test's
    folder. Training and evaluation themselves are cut out; everything before them runs."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    import zoo.training.loop

    weights = tmp_path / "w" / "model.safetensors"
    assert _quick_run(weights.parent).exit_code == 0
    monkeypatch.setattr(zoo.training.loop.Trainer, "fit", lambda self: {})
    monkeypatch.setattr(zoo.training.loop, "evaluate", lambda *args, **kwargs: {"mse": 0.5})

    from zoo.experiment import resolve

    config = resolve("toy.regression")
    keys = [f"{section}.{f.name}" for section in ("train", "task", "data", "model")
            for f in dataclasses.fields(config.section(section))]
    keys += ["epochs", "model", "data", "task", "nosuch.key", "train.nosuch", ""]
    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
    value = st.one_of(
        st.sampled_from(["0", "-1", "1", "nan", "inf", "-inf", "1e400", str(2**70), "", "true", "none",
                         "0.5", "2", "cpu", "cuda:7", "adamw", "step", "x" * 300, "a,b", "1,2,3"]),
        st.integers(-(2**80), 2**80).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        text)
    out = st.sampled_from(["o1", "o2", str(weights.parent), "a/b/c", "é" * 140, str(weights)])

    def option(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
        return st.tuples(st.just(name), values).map(list)

    count = st.one_of(st.integers(0, 3).map(str), value)  # mostly valid, so deeper paths are reached
    run_options = st.one_of(
        *(option(o, count) for o in ("--epochs", "--max-steps", "--batch-size", "--limit-batches", "--seed",
                                     "--checkpoint-every")),
        option("--lr", st.one_of(st.sampled_from(["0.1", "1e-3"]), value)),
        option("--device", st.one_of(st.sampled_from(["cpu", "auto", "cuda", "cuda:7", "mps", "tpu"]), value)),
        *(option(o, st.one_of(out, value)) for o in ("--weights", "--data", "--resume")),
        option("--precision", st.sampled_from(["fp32", "bf16", "fp16", "fp8"])),
        option("--out", out), option("--out", out),
        st.sampled_from([["--compile"], ["--deterministic"], ["--overwrite"], ["--pretrained"]]),
        option("--set", st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}={kv[1]}")),
        option("--set", value))
    eval_options = st.one_of(
        *(option(o, count) for o in ("--batch-size", "--limit-batches")),
        *(option(o, st.one_of(st.sampled_from(["test", "val", "cpu"]), value)) for o in ("--split", "--device")),
        option("--data", value),
        st.sampled_from([["--json"], ["--pretrained"]]),
        option("--set", st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}={kv[1]}")))
    name = st.one_of(st.just("toy.regression"), st.sampled_from(["toy.gan", "nosuch.exp", "toy-mlp", ""]))
    weights_option = option("--weights", st.sampled_from([str(weights), "nowhere.safetensors", "toy.regression:x"]))
    set_option = option("--set", st.tuples(st.sampled_from(keys), value).map("=".join))
    by_command = {
        "run": st.tuples(st.just(["run"]), name, st.lists(run_options, max_size=3)),
        "eval": st.tuples(st.just(["eval"]), name, st.tuples(weights_option, st.lists(eval_options, max_size=3))
                          .map(lambda wo: [wo[0], *wo[1]])),
        "info": st.tuples(st.just(["info"]), st.one_of(name, text, st.just(str(weights)), st.just("clock.cls24")),
                          st.lists(set_option, max_size=3)),
        "list": st.tuples(st.just(["list"]), st.one_of(text, st.just("*")),
                          st.lists(st.one_of(option("--kind", text), st.just(["--pretrained"])), max_size=2)),
    }
    commands = st.sampled_from(["run"] * 4 + ["eval"] * 2 + ["info", "list"]).flatmap(by_command.get)

    project = Path(__file__).parents[1]
    before = sorted(p.name for p in project.iterdir())
    registry_before = sorted(p.name for p in (project / "registry").iterdir())

    @settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(commands)
    @example((["run"], "toy.regression", [["--out", "é" * 140]]))  # always tried: the I/O paths
    @example((["run"], "toy.regression", [["--out", str(weights)]]))
    @example((["run"], "toy.regression", [["--out", str(weights.parent)]]))
    @example((["run"], "toy.regression", [["--out", "o3"], ["--set", "train.lr=nan"]]))
    @example((["eval"], "toy.regression", [["--weights", str(weights)], ["--split", "nosuch"]]))
    def check(command):
        head, arg, options = command
        args = [*head, arg, *(token for opt in options for token in opt)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        if result.exit_code:
            assert sum(line.startswith(("zoo: error: ", "Error: ")) for line in result.output.splitlines()) == 1, \
                (args, result.output)

    check()
    # runs and caches went to this test's folder (the working directory and ZOO_HOME), not the project
    assert sorted(p.name for p in project.iterdir()) == before
    assert sorted(p.name for p in (project / "registry").iterdir()) == registry_before
    assert (tmp_path / "runs" / "toy.regression").is_dir()  # the fuzz did reach the trainer


def test_eval_takes_precision_like_run(toy, toy_weights):
    """``zoo eval --precision fp32`` scores in full precision; bf16 scores the same weights close
    to it; a precision the choice does not know is a usage error."""
    scores = {}
    for precision in ("fp32", "bf16"):
        result = invoke("eval", "toy.regression", "--weights", toy_weights, "--precision", precision,
                        "--json")
        assert result.exit_code == 0, result.output
        scores[precision] = json.loads(result.stdout.strip().splitlines()[-1])["mse"]
    assert abs(scores["bf16"] - scores["fp32"]) <= 0.05 * scores["fp32"] + 1e-3
    assert invoke("eval", "toy.regression", "--weights", toy_weights, "--precision", "fp8").exit_code == 2


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_predict_and_zoo_load_take_every_device_the_option_offers(toy, toy_weights, tmp_path, device):
    """``--device auto`` (the option's own choice) resolves; it used to reach torch raw."""
    from PIL import Image

    import zoo

    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    result = invoke("predict", "toy.regression", str(tmp_path / "x.png"), "--weights", toy_weights,
                    "--device", device)
    assert result.exit_code == 0, result.output
    assert str(zoo.load(toy_weights, device=device).model.parameters().__next__().device) == "cpu"


def test_a_bad_device_is_one_line_everywhere(toy, toy_weights, tmp_path):
    from PIL import Image

    import zoo

    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    line = one_line_error(invoke("predict", "toy.regression", str(tmp_path / "x.png"), "--weights",
                                 toy_weights, "--device", "foo"), 2)
    assert "bad device 'foo'" in line
    with pytest.raises(zoo.UsageError, match="bad device 'foo'"):
        zoo.load(toy_weights, device="foo")
