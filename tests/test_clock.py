"""The clock plugin: exact seed architectures, the common-sense error, data, decoding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from zoo import UsageError
from zoo.experiment import assemble, count_parameters, resolve
from zoo_clock import metrics
from zoo_clock.data import NpyClocks, NpyConfig, SyntheticClocks, SyntheticConfig, load_image
from zoo_clock.render import render
from zoo_clock.tasks import ClockAngles, ClockClasses, ClockMultiHead, ClockRegression

from conftest import SUBPROCESS_TIMEOUT

EXPERIMENTS = ["clock.regression", "clock.cls24", "clock.cls72", "clock.cls720",
               "clock.multihead", "clock.angles"]
TINY = {"data.train_size": 8, "data.val_size": 4, "data.test_size": 4}


# --- the seed's architectures, exactly -------------------------------------------------------

@pytest.mark.parametrize("name,params", [("clock.regression", 2_206_593), ("clock.cls24", 287_064)])
def test_seed_parameter_counts(name: str, params: int) -> None:
    assert count_parameters(assemble(resolve(name)).build_model()) == params


def test_cls_variants_differ_only_in_the_last_layer() -> None:
    counts = {n: count_parameters(assemble(resolve(n)).build_model())
              for n in ("clock.cls24", "clock.cls72", "clock.cls720")}
    assert counts["clock.cls72"] - counts["clock.cls24"] == 48 * 65
    assert counts["clock.cls720"] - counts["clock.cls24"] == 696 * 65


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_forward_backward_and_evaluate_on_a_tiny_batch(name: str) -> None:
    torch.manual_seed(0)
    parts = assemble(resolve(name, {**TINY, "model.width": 8} if name == "clock.angles" else TINY))
    model = parts.build_model()
    data = parts.dataset.split("train", seed=0)
    batch = torch.utils.data.default_collate([data[i] for i in range(3)])
    loss, logs = parts.task.loss(model, batch, "main")
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    result = parts.task.evaluate(model, [batch])
    assert parts.task.main_metric in result and 0 <= result["error_mean"] <= 360
    texts = parts.task.decode(parts.task.forward(model, (batch[0][:2],)))
    assert len(texts) == 2 and all(len(t) == 5 and t[2] == ":" for t in texts)


def test_timm_backbone_reader() -> None:
    parts = assemble(resolve("clock.angles", {"model.backbone": "resnet10t"}))
    out = parts.build_model()(torch.rand(2, 1, 150, 150))
    assert out["angles"].shape == (2, 4)


# --- the common-sense error -----------------------------------------------------------------

times = st.integers(0, 719)


@given(times, times)
def test_error_is_symmetric_bounded_and_zero_only_when_equal(a: int, b: int) -> None:
    e = metrics.common_sense_error(a, b)
    assert e == metrics.common_sense_error(b, a)
    assert 0 <= e <= 360
    assert (e == 0) == (a == b)


@given(times, times, st.integers(-3, 3))
def test_error_ignores_whole_turns(a: int, b: int, turns: int) -> None:
    assert metrics.common_sense_error(a + 720 * turns, b) == metrics.common_sense_error(a, b)


def test_error_wraps_around_twelve() -> None:
    assert metrics.common_sense_error(metrics.to_minutes(11, 55), metrics.to_minutes(0, 5)) == 10
    assert metrics.common_sense_error(0, 360) == 360


def test_summary_metrics() -> None:
    true = np.array([0, 60, 125, 715])
    pred = np.array([0, 61, 130, 5])  # errors 0, 1, 5, 10
    s = metrics.summarize(pred, true)
    assert s["error_mean"] == 4.0 and s["error_median"] == 3.0
    assert s["within_1min"] == 0.5 and s["within_5min"] == 0.75
    assert s["hour_acc"] == 0.75  # 11:55 read as 0:05 gets the hour wrong
    assert s["minute_mae"] == 4.0


def test_format_time() -> None:
    assert metrics.format_time(metrics.to_minutes(11, 55)) == "11:55"
    assert metrics.format_time(5) == "12:05"
    assert metrics.format_time(725) == "12:05"


# --- decoding ---------------------------------------------------------------------------------

ALL_TIMES = torch.stack([torch.arange(720) // 60, torch.arange(720) % 60], 1)


def test_angles_decode_exact_targets_and_hand_consistency() -> None:
    task = ClockAngles()
    assert torch.equal(task.minutes({"angles": task.target(ALL_TIMES)}).round().long(),
                       torch.arange(720))
    # hour hand slightly early at 2:59 (reads ~2:55) must not turn it into 2:59 - 1 h
    a = task.target(torch.tensor([[2, 59]]))
    early = ClockAngles().target(torch.tensor([[2, 55]]))
    a[:, :2] = early[:, :2]
    assert task.decode({"angles": a}) == ["02:59"]


def test_classes_decode_to_bin_centres() -> None:
    task = ClockClasses(ClockClasses.Config(classes=24))
    target = task.target(ALL_TIMES)
    assert target.min() == 0 and target.max() == 23
    logits = torch.nn.functional.one_hot(target, 24).float()
    err = metrics.common_sense_error(task.minutes({"logits": logits}).numpy(), np.arange(720))
    assert err.max() <= 15
    exact = ClockClasses(ClockClasses.Config(classes=720))
    onehot = torch.nn.functional.one_hot(exact.target(ALL_TIMES), 720).float()
    assert torch.equal(exact.minutes({"logits": onehot}).long(), torch.arange(720))
    with pytest.raises(UsageError):
        ClockClasses(ClockClasses.Config(classes=1))


def test_regression_and_multihead_decode() -> None:
    assert ClockRegression().decode({"hours": torch.tensor([[11 + 55 / 60], [12.05]])}) == \
        ["11:55", "12:03"]
    hour = torch.nn.functional.one_hot(torch.tensor([11, 0]), 12).float()
    minute = torch.tensor([[55 / 60], [1.2]])
    assert ClockMultiHead().decode({"hour": hour, "minute": minute}) == ["11:55", "12:59"]


# --- synthetic data ---------------------------------------------------------------------------

def test_render_is_deterministic_and_labelled() -> None:
    a, b = render(5, 17), render(5, 17)
    assert np.array_equal(a.image, b.image) and (a.hour, a.minute) == (b.hour, b.minute)
    assert a.image.shape == (150, 150) and a.image.dtype == np.uint8
    assert not np.array_equal(a.image, render(5, 18).image)
    assert 0 <= a.hour <= 11 and 0 <= a.minute <= 59
    forced = render(5, 17, hour=3, minute=7)
    assert (forced.hour, forced.minute) == (3, 7)


@pytest.mark.parametrize("difficulty", [0.0, 1.0, 2.0])
def test_render_difficulties_look_like_images(difficulty: float) -> None:
    img = render(1, 2, difficulty).image
    assert img.std() > 10  # something is drawn


def test_synthetic_splits() -> None:
    ds = SyntheticClocks(SyntheticConfig(train_size=5, val_size=3, test_size=4))
    assert ds.input_shape() == (1, 150, 150)
    train0, train0b, train1 = ds.split("train", 0), ds.split("train", 0), ds.split("train", 1)
    assert len(train0) == 5 and len(ds.split("val", 0)) == 3
    x, y = train0[2]
    assert x.shape == (1, 150, 150) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.dtype == torch.long and y.shape == (2,)
    assert torch.equal(x, train0b[2][0]) and not torch.equal(x, train1[2][0])
    # the test set is fixed whatever the run's seed, and differs from train
    assert torch.equal(ds.split("test", 0)[1][0], ds.split("test", 99)[1][0])
    assert not torch.equal(ds.split("test", 0)[1][0], train0[1][0])
    with pytest.raises(IndexError):
        train0[5]
    with pytest.raises(UsageError):
        ds.split("holdout", 0)


def test_rendering_is_identical_in_another_process() -> None:
    code = ("import hashlib; from zoo_clock.render import render; "
            "print(hashlib.sha256(render(3, 9).image.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=SUBPROCESS_TIMEOUT)
    import hashlib

    assert out.stdout.strip() == hashlib.sha256(render(3, 9).image.tobytes()).hexdigest()


def test_plugin_import_does_not_import_torch() -> None:
    code = "import sys, zoo_clock; from zoo.plugins import catalog; catalog(); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.stdout.strip() == "False"


# --- the assignment's .npy files -------------------------------------------------------------

def write_npy(root, n=50, images=None, labels=None):
    rng = np.random.default_rng(0)
    np.save(root / "images.npy", rng.integers(0, 256, (n, 150, 150), dtype=np.uint8)
            if images is None else images)
    np.save(root / "labels.npy", np.stack([rng.integers(0, 12, n), rng.integers(0, 60, n)], 1)
            if labels is None else labels)


def test_npy_splits_are_80_10_10_disjoint_and_seeded(tmp_path) -> None:
    write_npy(tmp_path)
    ds = NpyClocks(NpyConfig(root=str(tmp_path)))
    idx = {s: set(ds.indices(s, 0, 50).tolist()) for s in ("train", "val", "test")}
    assert [len(idx[s]) for s in ("train", "val", "test")] == [40, 5, 5]
    assert set.union(*idx.values()) == set(range(50))
    assert set(ds.indices("test", 0, 50).tolist()) == idx["test"]
    assert set(ds.indices("test", 1, 50).tolist()) != idx["test"]
    x, y = ds.split("val", 0)[0]
    labels = np.load(tmp_path / "labels.npy")
    i = sorted(idx["val"])[0]
    assert x.shape == (1, 150, 150) and y.tolist() == labels[i].tolist()
    assert torch.equal(x[0], torch.from_numpy(np.load(tmp_path / "images.npy")[i]).float() / 255)


@pytest.mark.parametrize("case,message", [
    ("missing", "no labels.npy"),
    ("shape", "images.npy has shape (50, 64, 64)"),
    ("dtype", "dtype float32"),
    ("labels", "labels.npy has shape (50, 3)"),
    ("range", "expected hour 0-11, minute 0-59"),
    ("count", "50 images but labels.npy 49"),
])
def test_npy_errors_are_one_line(tmp_path, case: str, message: str) -> None:
    n = 50
    if case == "missing":
        np.save(tmp_path / "images.npy", np.zeros((n, 150, 150), np.uint8))
    elif case == "shape":
        write_npy(tmp_path, images=np.zeros((n, 64, 64), np.uint8))
    elif case == "dtype":
        write_npy(tmp_path, images=np.zeros((n, 150, 150), np.float32))
    elif case == "labels":
        write_npy(tmp_path, labels=np.zeros((n, 3), np.int64))
    elif case == "range":
        write_npy(tmp_path, labels=np.full((n, 2), 12, np.int64))
    else:
        write_npy(tmp_path, labels=np.zeros((n - 1, 2), np.int64))
    with pytest.raises(UsageError) as err:
        NpyClocks(NpyConfig(root=str(tmp_path))).split("train", 0)
    text = str(err.value)
    assert message in text and "\n" not in text and "expected" in text


def test_data_flag_switches_to_npy(tmp_path) -> None:
    write_npy(tmp_path)  # --data picks the dataset by what the folder holds (test_clock_photos)
    config = resolve("clock.multihead", data_path=str(tmp_path))
    assert config.data == "clock-npy" and config.data_config.root == str(tmp_path)


# --- images from disk -------------------------------------------------------------------------

def test_load_image_converts_any_image(tmp_path) -> None:
    rgba = Image.new("RGBA", (300, 200), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x.shape == (1, 150, 150) and x.dtype == torch.float32
    assert torch.allclose(x, torch.ones_like(x))  # transparent → white
    sample = render(0, 0)
    Image.fromarray(sample.image).save(tmp_path / "c.png")
    assert torch.equal(load_image(tmp_path / "c.png")[0],
                       torch.from_numpy(sample.image).float() / 255)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(UsageError):
        load_image(tmp_path / "bad.png")


def test_figures_write_a_histogram(tmp_path) -> None:
    parts = assemble(resolve("clock.cls24", TINY))
    model = parts.build_model().eval()
    data = parts.dataset.split("test", 0)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    paths = parts.task.figures(model, [batch], tmp_path)
    assert paths and all(p.suffix == ".png" and p.stat().st_size > 0 for p in paths)


# --- end to end through the CLI ---------------------------------------------------------------

@pytest.mark.slow
def test_run_eval_predict_end_to_end(tmp_path) -> None:
    small = ["--set", "data.train_size=8", "--set", "data.val_size=4", "--set",
             "data.test_size=4", "--set", "train.num_workers=0"]
    run = subprocess.run(["zoo", "run", "clock.cls24", "--max-steps", "2", "--batch-size", "4",
                          "--out", str(tmp_path / "run"), *small],
                         capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert run.returncode == 0, run.stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["params"] == 287_064 and "error_mean" in summary["test"]
    assert (tmp_path / "run" / "figures" / "error_histogram.png").is_file()
    weights = str(tmp_path / "run" / "model.safetensors")
    Image.fromarray(render(0, 1).image).save(tmp_path / "clock.png")
    out = subprocess.run(["zoo", "predict", "clock.cls24", str(tmp_path / "clock.png"),
                          "--weights", weights], capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0].endswith("clock.png") and out.stdout.split()[1][2] == ":"
    assert "(confidence " in out.stdout
    ev = subprocess.run(["zoo", "eval", "clock.cls24", "--weights", weights, "--json",
                         "--set", "data.test_size=4"], capture_output=True, text=True,
                        timeout=SUBPROCESS_TIMEOUT)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout)["samples"] == 4


def test_npy_data_error_through_the_cli(tmp_path) -> None:
    out = subprocess.run(["zoo", "run", "clock.cls24", "--data", str(tmp_path), "--max-steps",
                          "1"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 2
    assert "images.npy" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
