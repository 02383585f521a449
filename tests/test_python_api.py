"""The Python API (``zoo.list/create/load/predict/train``) and docs/python.md, run as doctests."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo import UsageError, python_api

ROOT = Path(__file__).resolve().parents[1]


def test_docs_python_md_examples_run() -> None:
    """Every example of docs/python.md, as doctest runs it (offline, built-in registry)."""
    result = doctest.testfile(str(ROOT / "docs" / "python.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 20 and result.failed == 0, result


def test_import_and_listing_import_no_torch() -> None:
    code = ("import sys, zoo\n"
            "names = zoo.list(); pretrained = zoo.list(pretrained=True); keys = zoo.list_pretrained()\n"
            "assert 'clock.angles' in names and 'clock.angles' in pretrained, (names, pretrained)\n"
            "assert 'clock.angles:default' in keys, keys\n"
            "assert zoo.list('cls7', kind='experiments') == ['clock.cls72', 'clock.cls720']\n"
            "assert 'torch' not in sys.modules, 'listing imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr


def test_list_follows_zoo_list(toy) -> None:
    assert zoo.list("toy.*") == ["toy.gan", "toy.regression"]
    assert zoo.list("toy", kind="models") == ["toy-gan", "toy-mlp"]
    assert zoo.list("toy.*", pretrained=True) == []  # nothing published for the toy
    with pytest.raises(UsageError, match="unknown kind 'widgets'"):
        zoo.list(kind="widgets")


def test_keyword_settings_map_to_set_keys() -> None:
    assert python_api.settings({"width": 8, "data__difficulty": 0.5, "model": "clock-cnn",
                                "dataset": "clock-npy"}, "model") == {
        "model.width": 8, "data.difficulty": 0.5, "model": "clock-cnn", "data": "clock-npy"}
    assert python_api.settings({"epochs": 2}, "train") == {"train.epochs": 2}


def test_create_builds_the_resolved_model_ready_to_train(toy) -> None:
    model = zoo.create("toy.regression")
    assert model.training and any(p.requires_grad for p in model.parameters())
    wide = zoo.create("toy.regression", hidden=64)
    assert wide[1].out_features == 64 != model[1].out_features
    assert zoo.create("toy.regression", model__hidden="7")[1].out_features == 7  # converted as --set
    with pytest.raises(UsageError, match="model.nope"):
        zoo.create("toy.regression", nope=1)
    with pytest.raises(UsageError, match="unknown experiment 'toy.regresion'"):
        zoo.create("toy.regresion")


def _train_toy(tmp_path: Path) -> python_api.Run:
    return zoo.train("toy.regression", max_steps=2, limit_batches=1, device="cpu",
                     out=tmp_path / "run")


def test_train_returns_the_run_and_load_predict_use_its_weights(toy, tmp_path: Path) -> None:
    run = _train_toy(tmp_path)
    assert run.dir == tmp_path / "run" and run.weights.is_file()
    assert run.summary == json.loads((run.dir / "summary.json").read_text())
    assert run.summary["steps"] == 2 and "mse" in run.test
    with pytest.raises(UsageError, match="already holds a finished run"):
        _train_toy(tmp_path)

    loaded = zoo.load(run.weights)
    assert not loaded.model.training and loaded.path == run.weights
    assert loaded.card["experiment"] == "toy.regression" and loaded.card["plugin"] == "toy"
    assert loaded.config.experiment == "toy.regression" and loaded.name == "toy.regression"
    from PIL import Image

    image = tmp_path / "blob.png"
    Image.new("L", (8, 8), 200).save(image)
    one = loaded.predict(image)
    assert len(one) == 1 and one == loaded.predict([loaded.load_image(image)])
    batch = loaded.load_image(image)[None].repeat(3, 1, 1, 1)
    assert loaded.predict(batch) == one * 3
    assert zoo.predict("toy.regression", [image], weights=str(run.weights)) == one
    assert zoo.predict(loaded, [image, image]) == one * 2
    with pytest.raises(UsageError, match="no such image"):
        loaded.predict([tmp_path / "missing.png"])
    with pytest.raises(UsageError, match="holds weights of toy.regression, not toy.gan"):
        zoo.predict("toy.gan", [image], weights=str(run.weights))


def test_predict_errors_are_the_cli_errors(toy, tmp_path: Path) -> None:
    """The same checks as ``zoo predict``: a model with no per-image answer, an unreadable file."""
    with pytest.raises(UsageError, match="toy.gan cannot predict"):
        zoo.load("toy.gan", pretrained=False).predict([tmp_path / "x.png"])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(UsageError, match=r"plugin 'toy' \(dataset toy-blobs\) cannot read .*junk.png"):
        zoo.load("toy.regression", pretrained=False).predict([junk])


def test_load_untrained_and_create_from_weights(toy, tmp_path: Path) -> None:
    run = _train_toy(tmp_path)
    untrained = zoo.load("toy.regression", pretrained=False)
    assert not untrained.model.training and untrained.card == {} and untrained.path is None
    started = zoo.create("toy.regression", pretrained=str(run.weights))
    trained = zoo.load(run.weights).model
    assert started.training
    for (key, a), b in zip(started.state_dict().items(), trained.state_dict().values()):
        assert (a == b).all(), key
    again = zoo.train("toy.regression", max_steps=1, limit_batches=1, device="cpu",
                      out=run.dir, overwrite=True)  # --overwrite: replace the finished run
    assert again.dir == run.dir and again.summary["steps"] == 1


def test_load_a_card_less_pt_file_needs_the_experiment(toy, tmp_path: Path) -> None:
    import torch

    run = _train_toy(tmp_path)
    pt = tmp_path / "plain.pt"
    torch.save(zoo.load(run.weights).model.state_dict(), pt)
    with pytest.raises(UsageError, match="no zoo card: name the experiment"):
        zoo.load(pt)
    assert zoo.load(pt, experiment="toy.regression").config.experiment == "toy.regression"


def test_load_published_weights_by_name_and_tag() -> None:
    loaded = zoo.load("clock.angles:default")
    assert loaded.config.model == "clock-resnet" and not loaded.model.training
    assert loaded.card["metrics"]["error_mean"] < 2
    with pytest.raises(UsageError, match="no tag 'v9' for clock.angles"):
        zoo.load("clock.angles:v9")
