"""One path to a run configuration: run, --resume, weights (eval/predict/sample) and the kit all
resolve (source, --data, --set) the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo import UsageError
from zoo.cli import cli
from zoo.experiment import from_dict, resolve


def npy_folder(root: Path, n: int = 8) -> Path:
    root.mkdir()
    np.save(root / "images.npy", np.zeros((n, 150, 150), np.uint8))
    np.save(root / "labels.npy", np.zeros((n, 2), np.int64))
    return root


def test_a_saved_configuration_takes_data_and_set_like_a_name(tmp_path: Path) -> None:
    saved = resolve("clock.angles", {"model.width": 8}).to_dict()
    folder = npy_folder(tmp_path / "npy")
    from_name = resolve("clock.angles", {"model.width": 8, "train.lr": 0.01}, data_path=str(folder))
    from_saved = resolve(saved, {"train.lr": 0.01}, data_path=str(folder))
    assert from_saved == from_name
    assert (from_saved.data, from_saved.data_config.root) == ("clock-npy", str(folder))
    assert resolve(from_dict(saved)) == from_dict(saved)


def test_a_saved_configuration_fixes_its_components() -> None:
    saved = resolve("clock.angles").to_dict()
    with pytest.raises(UsageError, match="cannot swap model here: a saved configuration"):
        resolve(saved, {"model": "clock-fig1"})


def test_set_wins_over_data(tmp_path: Path) -> None:
    folder = npy_folder(tmp_path / "npy")
    config = resolve("clock.angles", {"data.root": str(tmp_path / "other")}, data_path=str(folder))
    assert config.data == "clock-npy" and config.data_config.root == str(tmp_path / "other")


def test_resume_honours_data(tmp_path: Path) -> None:
    """``--resume RUN --data DIR`` reads DIR (it used to be ignored without a word)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(resolve("clock.angles").to_dict()))
    result = CliRunner().invoke(cli, ["run", "clock.angles", "--resume", str(run),
                                      "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2, result.output
    assert "--data" in result.output and "nowhere" in result.output and "no such folder" in result.output


def test_the_kit_reads_data_for_the_dataset_data_switches_to(tmp_path: Path) -> None:
    """``--zoo-data clock-npy=DIR`` reaches clock.angles, whose own dataset is clock-synthetic: the
    kit resolves it the way ``zoo run clock.angles --data DIR`` does (it used to be ignored)."""
    from zoo.testing.contract import config_for

    folder = npy_folder(tmp_path / "npy")
    config = config_for("clock.angles", {"clock-npy": str(folder)})
    assert config == resolve("clock.angles", data_path=str(folder))
    assert (config.data, config.data_config.root) == ("clock-npy", str(folder))
    assert config_for("clock.angles", {}).data == "clock-synthetic"
