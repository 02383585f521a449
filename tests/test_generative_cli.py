"""Generative plugin end to end: ``zoo run`` on tiny IDX files, then ``zoo sample``/``interpolate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from test_generative import write_folder, write_idx

from zoo.cli import cli

from conftest import assert_no_crash


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def train_tiny(name: str, tmp_path: Path) -> Path:
    """A two-step run through the real trainer; returns the weight file it wrote."""
    if name.endswith("mnist"):
        root = write_idx(tmp_path / "data", 40, 24)
        sets = ["data.val_size=8"]
    else:
        root = write_folder(tmp_path / "images", 30, bad=1, splits=True)
        sets = []
    out = tmp_path / "runs" / name
    sets += ["model.width=4", "num_workers=0"]
    if name in ("vae.mnist", "gan.mnist"):
        sets += ["task.extractor=test_generative:pooled_pixels"]
    if name.startswith("vae"):
        sets += ["task.iw_samples=4"]
    args = ["run", name, "--data", str(root), "--max-steps", "2", "--batch-size", "8", "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["main_metric"] in summary["test"]
    expected = {"cae": {"reconstructions.png"}, "vae": {"reconstructions.png", "samples.png"},
                "gan": {"samples.png"}}[name.split(".")[0]]
    assert {Path(f).name for f in summary["figures"]} == expected
    return out / "model.safetensors"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("gen")
    return {name: train_tiny(name, base / name) for name in ("vae.mnist", "gan.mnist")}


def test_run_writes_reconstructions(trained: dict[str, Path]) -> None:
    figures = trained["vae.mnist"].parent / "figures"
    with Image.open(figures / "reconstructions.png") as im:
        assert im.size[0] == 8 * 30 + 2  # 8 tiles of 28 px + 2 px padding
        assert im.size[1] == 6 * 30 + 2  # 24 test images: 3 original rows + 3 reconstruction rows


@pytest.mark.parametrize("name", ["vae.mnist", "gan.mnist"])
def test_sample_writes_a_grid(trained: dict[str, Path], tmp_path: Path, name: str) -> None:
    out = tmp_path / "grid.png"
    result = invoke("sample", name, "--weights", str(trained[name]), "-n", "16", "--out", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (4 * 30 + 2, 4 * 30 + 2)


@pytest.mark.parametrize("name,dims,size", [("vae.mnist", "10", (8, 1)), ("vae.mnist", "10,27", (8, 8)),
                                            ("gan.mnist", "200,255", (5, 5))])
def test_interpolate_row_or_grid(trained: dict[str, Path], tmp_path: Path, name: str, dims: str,
                                 size: tuple[int, int]) -> None:
    out = tmp_path / "interp.png"
    steps = str(size[0])
    result = invoke("interpolate", name, "--weights", str(trained[name]), "--dims", dims, "--steps", steps,
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (size[0] * 30 + 2, size[1] * 30 + 2)


@pytest.mark.parametrize("args,message", [
    (["--dims", "32"], "out of range"),
    (["--dims", "a,b"], "integers"),
    (["--dims", "1,2,3"], "one or two"),
])
def test_interpolate_errors_are_one_line(trained: dict[str, Path], tmp_path: Path, args: list[str],
                                         message: str) -> None:
    result = invoke("interpolate", "vae.mnist", "--weights", str(trained["vae.mnist"]), *args,
                    "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and message in result.output
    assert_no_crash(result)
    assert len(result.output.strip().splitlines()) == 1


def test_sample_usage_errors(trained: dict[str, Path], tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    both = invoke("sample", "vae.mnist", "--weights", str(trained["vae.mnist"]), "--pretrained", "--out", out)
    assert both.exit_code == 2 and "not both" in both.output  # the core commands' own message
    short = invoke("sample", "vae.mnist", "-w", str(trained["vae.mnist"]), "--out", "x.jpg")
    assert short.exit_code == 2 and ".png" in short.output  # -w works as in zoo eval/predict
    wrong = invoke("sample", "gan.mnist", "--weights", str(trained["vae.mnist"]), "--out", out)
    assert wrong.exit_code == 2 and "vae.mnist" in wrong.output
    missing = invoke("sample", "vae.mnist", "--weights", str(tmp_path / "none.safetensors"), "--out", out)
    assert missing.exit_code == 2
    not_png = invoke("sample", "vae.mnist", "--weights", str(trained["vae.mnist"]), "--out", "x.jpg")
    assert not_png.exit_code == 2 and ".png" in not_png.output


def test_autoencoder_has_no_prior(tmp_path: Path) -> None:
    weights = train_tiny("cae.mnist", tmp_path)
    result = invoke("sample", "cae.mnist", "--weights", str(weights), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "no prior" in result.output


def test_gan_on_an_image_folder_end_to_end(tmp_path: Path) -> None:
    """64×64 RGB DCGAN through the trainer, default (pixel) FD extractor, then a 2-D interpolation."""
    weights = train_tiny("gan.butterfly", tmp_path)
    out = tmp_path / "grid.png"
    result = invoke("interpolate", "gan.butterfly", "--weights", str(weights), "--dims", "0,255",
                    "--steps", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (3 * 66 + 2, 3 * 66 + 2) and im.mode == "RGB"
