"""Real photos in, real answers out: the photo-folder dataset, ``--data`` dispatch, ``--split all``
and what ``zoo eval`` / ``zoo predict`` say about them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from zoo import UsageError
from zoo.cli import cli
from zoo.experiment import assemble, resolve
from zoo.storage.weights import make_card, save_weights
from zoo_clock.data import load_image
from zoo_clock.photos import ClockPhotos, PhotosConfig, load_photo
from zoo_clock.render import render
from zoo_clock.tasks import ClockAngles, ClockClasses, ClockMultiHead, ClockRegression

from conftest import run_zoo

CLOCK = render(4, 2)  # a drawn clock: (hour, minute) known
REFERENCE = torch.from_numpy(CLOCK.image).float()[None] / 255


def tensor_close(x: torch.Tensor, mean_abs: float) -> bool:
    return x.shape == (1, 150, 150) and float((x - REFERENCE).abs().mean()) < mean_abs


# --- one image file → the reader's input ----------------------------------------------------

def test_modes_and_formats_read_as_the_same_clock(tmp_path) -> None:
    gray = Image.fromarray(CLOCK.image)
    gray.convert("RGB").save(tmp_path / "rgb.png")
    (gray.convert("RGBA")).save(tmp_path / "rgba.png")
    gray.convert("P").save(tmp_path / "p.png")
    Image.fromarray(CLOCK.image.astype(np.uint16) * 257).save(tmp_path / "16bit.png")
    gray.convert("RGB").convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "16bit.png").mode.startswith("I")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    for name in ("rgb.png", "rgba.png", "p.png", "16bit.png"):
        assert torch.equal(load_image(tmp_path / name), REFERENCE), name  # lossless: exact
    assert tensor_close(load_image(tmp_path / "cmyk.jpg"), 0.01)


def test_sixteen_bit_uses_the_full_range(tmp_path) -> None:
    """A 16-bit mid-grey is mid-grey, not clipped to white at 255/65535."""
    Image.fromarray(np.full((40, 40), 32768, np.uint16)).save(tmp_path / "mid.png")
    assert load_photo(tmp_path / "mid.png", 150).mean().item() == pytest.approx(0.5, abs=1e-3)


def test_transparency_is_white_and_exif_rotation_is_applied(tmp_path) -> None:
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert torch.allclose(load_photo(tmp_path / "clear.png"), torch.ones(1, 150, 150))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    Image.fromarray(CLOCK.image).rotate(90, expand=True).save(tmp_path / "rot.jpg", exif=exif,
                                                              quality=95)
    Image.fromarray(CLOCK.image).rotate(90, expand=True).save(tmp_path / "plain.jpg", quality=95)
    assert tensor_close(load_photo(tmp_path / "rot.jpg"), 0.01)
    assert not tensor_close(load_photo(tmp_path / "plain.jpg"), 0.05)


def test_wide_photos_lose_their_sides_not_their_dial(tmp_path) -> None:
    wide = Image.new("L", (450, 150), 0)
    wide.paste(Image.fromarray(CLOCK.image), (150, 0))
    wide.save(tmp_path / "wide.png")
    assert torch.equal(load_photo(tmp_path / "wide.png"), REFERENCE)
    assert load_photo(tmp_path / "wide.png", 64).shape == (1, 64, 64)


# --- a folder of photos ----------------------------------------------------------------------

GOOD = ["rgb.png", "rgba.png", "deep/16bit.png", "rot.jpg", "noon.png"]
BAD = {  # row → a word of the one line that reports it
    ("missing.png", "3", "4"): "no such file",
    ("notimage.png", "1", "2"): "cannot read image",
    ("rgb.png", "13", "0"): "hour '13'",
    ("rgb.png", "3", "x"): "minute 'x'",
    ("../outside.png", "1", "1"): "outside",
    ("/etc/hostname", "1", "1"): "outside",
    ("deep/../../outside.png", "1", "1"): "outside",
}


def make_folder(root: Path, bad: bool = True) -> Path:
    """GOOD images (labelled with CLOCK's time; noon.png says 12) plus, if asked, the BAD rows."""
    (root / "deep").mkdir(parents=True)
    gray = Image.fromarray(CLOCK.image)
    gray.convert("RGB").save(root / "rgb.png")
    gray.convert("RGBA").save(root / "rgba.png")
    Image.fromarray(CLOCK.image.astype(np.uint16) * 257).save(root / "deep" / "16bit.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    gray.rotate(90, expand=True).save(root / "rot.jpg", exif=exif, quality=95)
    gray.save(root / "noon.png")
    (root / "notimage.png").write_text("not an image")
    (root.parent / "outside.png").write_bytes((root / "rgb.png").read_bytes())
    rows = [["file", "hour", "minute"]]
    rows += [[name, str(CLOCK.hour), str(CLOCK.minute)] for name in GOOD[:-1]]
    rows.append(["noon.png", "12", "5"])
    if bad:
        rows += [list(row) for row in BAD]
        rows.append(["only-two-fields.png", "3"])
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def test_folder_reads_every_good_row_and_reports_each_bad_one(tmp_path, capsys) -> None:
    root = make_folder(tmp_path / "photos")
    ds = ClockPhotos(PhotosConfig(root=str(root)))
    data = ds.split("all", 0)
    assert len(data) == len(GOOD) and ds.skipped("all", 0) == len(BAD) + 1
    labels = [data[i][1].tolist() for i in range(len(data))]
    assert labels[:-1] == [[CLOCK.hour, CLOCK.minute]] * 4 and labels[-1] == [0, 5]  # 12 → 0
    assert torch.equal(data[0][0], REFERENCE) and torch.equal(data[2][0], REFERENCE)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(BAD) + 1
    for line, word in zip(lines, [*BAD.values(), "2 fields"]):
        assert line.startswith("zoo: skipped ") and "labels.csv line" in line and word in line
    ds.split("all", 0)
    ds.split("test", 0)
    assert capsys.readouterr().err == ""  # each row reported once


def test_decompression_bombs_are_skipped_rows(tmp_path, monkeypatch, capsys) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("L", (20, 20)).save(root / "small.png")  # 400 px: fine
    Image.new("L", (40, 40)).save(root / "large.png")  # 1600 px: over the limit (PIL warns)
    Image.new("L", (60, 60)).save(root / "bomb.png")  # 3600 px: over twice the limit (PIL raises)
    (root / "labels.csv").write_text("file,hour,minute\nsmall.png,1,1\nlarge.png,1,1\n"
                                     "bomb.png,1,1\n")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    ds = ClockPhotos(PhotosConfig(root=str(root), size=16))
    assert len(ds.split("all", 0)) == 1 and ds.skipped("all", 0) == 2
    err = capsys.readouterr().err
    assert err.count("exceeds limit") == 2 and "large.png" in err and "bomb.png" in err


def test_header_and_folder_errors_are_one_line(tmp_path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    (root / "labels.csv").write_text("a.png,3,15\n")
    with pytest.raises(UsageError, match="header file,hour,minute"):
        ClockPhotos(PhotosConfig(root=str(root))).split("all", 0)
    (root / "labels.csv").write_text("file,hour,minute\nmissing.png,1,2\n")
    with pytest.raises(UsageError, match="no readable photos") as err:
        ClockPhotos(PhotosConfig(root=str(root))).split("all", 0)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="no labels.csv"):
        ClockPhotos(PhotosConfig(root=str(tmp_path))).split("all", 0)


def test_train_val_test_partition_the_rows_by_seed(tmp_path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(CLOCK.image).save(root / "c.png")
    (root / "labels.csv").write_text("file,hour,minute\n" + "c.png,1,2\n" * 30)
    ds = ClockPhotos(PhotosConfig(root=str(root)))
    parts = {s: set(ds.row_indices(s, 0)) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [24, 3, 3]
    assert set.union(*parts.values()) == set(ds.row_indices("all", 0)) == set(range(30))
    assert set(ds.row_indices("test", 0)) == parts["test"] != set(ds.row_indices("test", 1))


# --- --data dispatch ---------------------------------------------------------------------------

def write_npy(root: Path, n: int = 12) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "images.npy", np.stack([render(2, i).image for i in range(n)]))
    np.save(root / "labels.npy", np.array([[render(2, i).hour, render(2, i).minute]
                                           for i in range(n)]))
    return root


def test_data_picks_the_dataset_by_what_the_folder_holds(tmp_path) -> None:
    photos = make_folder(tmp_path / "photos", bad=False)
    npy = write_npy(tmp_path / "npy")
    assert resolve("clock.angles", data_path=str(photos)).data == "clock-photos"
    assert resolve("clock.angles", data_path=str(npy)).data == "clock-npy"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as err:
        resolve("clock.angles", data_path=str(tmp_path / "empty"))
    text = str(err.value)
    assert "images.npy" in text and "labels.csv" in text and "empty" in text and "\n" not in text


# --- zoo eval / zoo predict --------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    """Freshly initialised weights of three readers (what is read does not matter here)."""
    out = tmp_path_factory.mktemp("weights")
    files = {}
    for name, sets in (("clock.cls24", {}), ("clock.angles", {"model.width": 8}),
                       ("clock.regression", {})):
        config = resolve(name, sets)
        torch.manual_seed(0)
        model = assemble(config).build_model()
        files[name] = str(out / f"{name}.safetensors")
        save_weights(Path(files[name]), model.state_dict(), make_card(name, config.to_dict()))
    return files


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_eval_all_scores_every_photo_and_says_so(tmp_path, weights) -> None:
    root = make_folder(tmp_path / "photos")
    result = invoke("eval", "clock.cls24", "-w", weights["clock.cls24"], "--data", str(root),
                    "--split", "all", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "all" and metrics["samples"] == len(GOOD)
    assert metrics["skipped"] == len(BAD) + 1 and "error_mean" in metrics
    assert (f"zoo: scored {len(GOOD)} samples (split all of clock-photos at {root}; "
            f"{len(BAD) + 1} unreadable skipped)") in result.stderr


def test_eval_all_on_npy_and_synthetic_counts_every_sample(tmp_path, weights) -> None:
    npy = write_npy(tmp_path / "npy", n=12)
    result = invoke("eval", "clock.cls24", "-w", weights["clock.cls24"], "--data", str(npy),
                    "--split", "all", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 12
    assert f"zoo: scored 12 samples (split all of clock-npy at {npy})" in result.stderr
    result = invoke("eval", "clock.cls24", "-w", weights["clock.cls24"], "--data", str(npy),
                    "--device", "cpu")  # default: test, and says how little that is
    assert result.exit_code == 0, result.output
    assert "split: test" in result.stdout and "samples: 1\n" in result.stdout
    assert "zoo: scored 1 sample (split test of clock-npy" in result.stderr
    # a dataset without its own `all` gets its splits concatenated (here: made on the device)
    result = invoke("eval", "clock.cls24", "-w", weights["clock.cls24"], "--split", "all",
                    "--json", "--device", "cpu", "--set", "data.train_size=5", "--set",
                    "data.val_size=3", "--set", "data.test_size=4")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 12
    assert "split all of clock-synthetic" in result.stderr


def test_unknown_split_names_all(tmp_path, weights) -> None:
    result = invoke("eval", "clock.cls24", "-w", weights["clock.cls24"], "--split", "holdout")
    assert result.exit_code == 2 and "train, val, test, all" in result.output


def test_eval_in_a_real_process_prints_one_json_object(tmp_path, weights) -> None:
    root = make_folder(tmp_path / "photos")
    out = run_zoo(["eval", "clock.angles", "--weights", weights["clock.angles"], "--data",
                   str(root), "--split", "all", "--json", "--device", "cpu"])
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads(out.stdout)  # the whole of stdout is one object
    assert metrics["samples"] == len(GOOD) and metrics["split"] == "all"
    assert "Traceback" not in out.stderr and "zoo: scored 5 samples" in out.stderr


LINE = re.compile(r"^(?P<path>\S+)  (?P<time>\d\d:\d\d)  \(confidence (?P<p>[01]\.\d\d)\)"
                  r"(?P<rest>(  \d\d:\d\d \([01]\.\d\d\))*)$")


@pytest.mark.parametrize("name", ["clock.cls24", "clock.angles"])
def test_predict_prints_time_confidence_and_top_k(tmp_path, weights, name: str) -> None:
    root = make_folder(tmp_path / "photos", bad=False)
    images = [str(root / "rgb.png"), str(root / "rot.jpg")]
    plain = invoke("predict", name, *images, "-w", weights[name])
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.strip().splitlines()
    assert len(lines) == 2 and all(LINE.match(line) for line in lines)
    assert [LINE.match(line)["path"] for line in lines] == images
    assert all(LINE.match(line)["rest"] == "" for line in lines)
    top = invoke("predict", name, *images, "-w", weights[name], "--top", "3")
    assert top.exit_code == 0, top.output
    for first, line in zip(lines, top.stdout.strip().splitlines()):
        match = LINE.match(line)
        assert match and line.startswith(first)  # the same answer, then two more
        others = re.findall(r"(\d\d:\d\d) \(([01]\.\d\d)\)", match["rest"])
        assert len(others) == 2 and len({match["time"], *(t for t, _ in others)}) == 3
        assert float(others[0][1]) >= float(others[1][1])
        assert float(match["p"]) + sum(float(p) for _, p in others) <= 1.02


def test_regression_reader_claims_no_confidence(tmp_path, weights) -> None:
    Image.fromarray(CLOCK.image).save(tmp_path / "c.png")
    result = invoke("predict", "clock.regression", str(tmp_path / "c.png"), "-w",
                    weights["clock.regression"], "--top", "3")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"\S+c\.png  \d\d:\d\d\n", result.stdout)
    assert invoke("predict", "clock.cls24", str(tmp_path / "c.png"), "-w",
                  weights["clock.cls24"], "--top", "0").exit_code == 2


# --- confidence per task -------------------------------------------------------------------------

TIMES = torch.tensor([[2, 59], [11, 55], [0, 0], [7, 13]])


def test_class_heads_give_softmax_probabilities() -> None:
    task = ClockClasses(ClockClasses.Config(classes=24))
    logits = torch.randn(4, 24)
    readings = task.predict({"logits": logits}, top=3)
    probs = logits.softmax(1)
    for row, sample, text in zip(probs, readings, task.decode({"logits": logits})):
        assert sample[0][0] == text and [p for _, p in sample] == pytest.approx(
            row.topk(3).values.tolist())
    hour = torch.nn.functional.one_hot(TIMES[:, 0], 12).float() * 5
    minute = TIMES[:, 1:].float() / 60
    multi = ClockMultiHead().predict({"hour": hour, "minute": minute}, top=2)
    assert [s[0][0] for s in multi] == ["02:59", "11:55", "12:00", "07:13"]
    assert all(s[0][1] == pytest.approx(hour[0].softmax(0).max().item()) for s in multi)
    assert all(s[1][0][3:] == s[0][0][3:] for s in multi)  # other hour, same minute
    assert ClockRegression().predict({"hours": torch.tensor([[2.5]])}, top=3) == [[("02:30", None)]]


def test_angle_confidence_follows_the_vector_length() -> None:
    task = ClockAngles()
    sure = task.target(TIMES)
    posterior = task.posterior({"angles": sure})
    assert torch.allclose(posterior.sum(1), torch.ones(4))
    readings = task.predict({"angles": sure}, top=3)
    assert [r[0][0] for r in readings] == task.decode({"angles": sure}) == \
        ["02:59", "11:55", "12:00", "07:13"]
    assert all(r[0][1] > 0.5 and r[0][1] >= r[1][1] for r in readings)
    hedged = task.predict({"angles": sure * 0.3}, top=1)  # short vectors: the net is unsure
    assert all(h[0][0] == r[0][0] and h[0][1] < 0.05 for h, r in zip(hedged, readings))


def test_all_of_an_on_device_dataset_puts_each_index_in_its_split(toy) -> None:
    from zoo.experiment import AllSplits

    blobs = toy.HashBlobs(toy.BlobsConfig(size=16))  # train 16, val 8, test 8
    whole = AllSplits(blobs)
    assert whole.on_device and len(whole.split("all", 0)) == 32
    indices = torch.tensor([30, 0, 17, 24, 5, 23])
    x, y = whole.device_batch("all", 0, indices)
    for row, (split, i) in enumerate([("test", 6), ("train", 0), ("val", 1), ("test", 0),
                                      ("train", 5), ("val", 7)]):
        expected = blobs.device_batch(split, 0, torch.tensor([i]))
        assert torch.equal(x[row], expected[0][0]) and torch.equal(y[row], expected[1][0])
