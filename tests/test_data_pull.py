"""``zoo data pull``: MNIST from a local copy or a (loopback) mirror, verified, atomic; the
Butterfly & Moth set through a stand-in kagglehub; every "data not found" names ZOO_DATA and the fix.

Nothing here reaches the network: the online path downloads from a server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import sys
import threading
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo import plugins
from zoo.cli import cli

from conftest import assert_no_crash, run_zoo

# The suite is started with ZOO_DATA pointing at the offline copy (.ci/run); the per-test isolation
# removes it from the environment, so it is read once, here, at collection.
SHARED = Path(os.environ.get("ZOO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
RAW = SHARED / "MNIST" / "raw"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")

needs_mnist = pytest.mark.skipif(not all((RAW / f).is_file() for f in FILES),
                                 reason=f"no MNIST copy in {RAW} (set ZOO_DATA as .ci/run does)")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def pull(*args: str):
    return CliRunner().invoke(cli, ["data", "pull", *args])


def one_line(result) -> str:
    """The error line: the last on stderr (a download's progress bar may stand above it)."""
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("zoo: error: "), result.stderr
    assert_no_crash(result)
    assert not any(ln.startswith("zoo: error") for ln in lines[:-1])
    return lines[-1]


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data-root" / "zoo"  # two levels that do not exist yet
    monkeypatch.setenv("ZOO_DATA", str(root))
    return root


@pytest.fixture(scope="module")
def gz_copy(tmp_path_factory) -> Path:
    """The four files gzipped, flat (the layout of the original release)."""
    folder = tmp_path_factory.mktemp("mnist-gz")
    for name in FILES:
        with open(RAW / name, "rb") as src, gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as out:
            shutil.copyfileobj(src, out)
    return folder


def use_gz_md5s(monkeypatch, folder: Path) -> None:
    """torchvision checks the .gz against its md5 list: list those of our re-compressed copy."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "resources", [(f"{n}.gz", md5(folder / f"{n}.gz")) for n in FILES])


# ---------------------------------------------------------------- MNIST from a local copy


@needs_mnist
def test_pull_from_a_torchvision_layout_copy(data_root):
    result = pull("mnist", "--from", str(SHARED))
    assert result.exit_code == 0, result.output
    raw = data_root / "MNIST" / "raw"
    assert result.stdout.strip() == str(raw)
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)
    assert all(md5(raw / f) == md5(RAW / f) for f in FILES)
    assert not [p for p in raw.parent.iterdir() if p.name.startswith(".")]  # no staging left
    again = pull("mnist", "--from", str(SHARED))
    assert again.exit_code == 0 and "already" in again.stderr


@needs_mnist
def test_pull_from_gz_files_then_the_dataset_reads_them(data_root, gz_copy, monkeypatch):
    use_gz_md5s(monkeypatch, gz_copy)
    assert pull("mnist", "--from", str(gz_copy)).exit_code == 0
    from zoo.experiment import assemble, resolve

    assert len(assemble(resolve("cae.mnist")).dataset.split("test", 0)) == 10_000


@needs_mnist
def test_checksum_mismatch_is_one_line_and_writes_nothing(data_root, tmp_path):
    bad = tmp_path / "bad" / "MNIST" / "raw"
    bad.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(RAW / name, bad / name)
    with open(bad / "t10k-labels-idx1-ubyte", "r+b") as f:
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([byte ^ 0xFF]))  # one flipped byte
    result = pull("mnist", "--from", str(tmp_path / "bad"))
    assert result.exit_code == 1
    line = one_line(result)
    assert "checksum mismatch" in line and "t10k-labels-idx1-ubyte" in line and "nothing was written" in line
    assert not data_root.parent.exists()  # not even the folders on the way


def test_a_copy_without_the_files_is_a_usage_error(data_root, tmp_path):
    (tmp_path / "empty").mkdir()
    result = pull("mnist", "--from", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "no train-images-idx3-ubyte" in one_line(result)
    assert not data_root.parent.exists()


def test_offline_without_a_copy_says_how(data_root):
    result = pull("mnist")
    assert result.exit_code == 2
    line = one_line(result)
    assert "ZOO_OFFLINE=1" in line and "--from DIR" in line and str(data_root) in line
    assert not data_root.parent.exists()


def test_unknown_source_offers_the_known_ones():
    result = pull("mnsit")
    assert result.exit_code == 2 and "did you mean mnist" in one_line(result)


# ---------------------------------------------------------------- MNIST from a mirror (loopback)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(gz_copy, monkeypatch):
    """A loopback HTTP server serving the .gz files; torchvision's mirror list points at it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(gz_copy)))
    server.handle_error = lambda request, address: None  # a client that hangs up early is fine
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from torchvision.datasets import MNIST

    dead = socket_that_refuses()
    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{dead}/", f"http://127.0.0.1:{server.server_port}/"])
    use_gz_md5s(monkeypatch, gz_copy)
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    yield MNIST
    server.shutdown()
    server.server_close()


def socket_that_refuses() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


@needs_mnist
def test_download_tries_the_mirrors_in_turn_and_verifies(data_root, mirror):
    result = pull("mnist")
    assert result.exit_code == 0, result.output
    raw = data_root / "MNIST" / "raw"
    assert all(md5(raw / f) == md5(RAW / f) for f in FILES)
    assert not list(raw.glob("*.gz"))


@needs_mnist
def test_the_dataset_fetches_mnist_itself_when_online(data_root, mirror):
    from zoo.experiment import assemble, resolve

    assert len(assemble(resolve("cae.mnist")).dataset.split("test", 0)) == 10_000
    assert (data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


@needs_mnist
def test_a_corrupt_download_is_refused_and_nothing_is_kept(data_root, mirror, monkeypatch):
    monkeypatch.setattr(mirror, "resources", [(f"{n}.gz", "0" * 32) for n in FILES])
    result = pull("mnist")
    assert result.exit_code == 1
    line = one_line(result)
    assert "could not download train-images-idx3-ubyte.gz" in line and "--from DIR" in line
    assert not data_root.parent.exists()


# ---------------------------------------------------------------- "data not found" names the fix


def test_missing_mnist_names_the_path_zoo_data_and_the_command(data_root):
    result = run_zoo(["run", "cae.mnist", "--max-steps", "1"], env={**os.environ, "ZOO_DATA": str(data_root)})
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert str(data_root / "MNIST" / "raw") in line and "ZOO_DATA" in line and "zoo data pull mnist" in line
    assert "download=True" not in result.stderr and "Traceback" not in result.stderr
    assert not data_root.parent.exists() and not Path("runs").exists()


def test_missing_image_folder_names_zoo_data_and_the_command(data_root):
    from zoo import UsageError
    from zoo.experiment import assemble, resolve

    with pytest.raises(UsageError) as err:
        assemble(resolve("gan.butterfly")).dataset.split("train", 0)
    message = str(err.value)
    assert str(data_root / "butterfly") in message and "ZOO_DATA" in message
    assert "zoo data pull butterfly" in message and "\n" not in message


# ---------------------------------------------------------------- Butterfly & Moth via kagglehub


def fake_kaggle_tree(root: Path) -> Path:
    """What kagglehub leaves: a versioned folder, the three splits one level down, extra files."""
    from PIL import Image

    top = root / "datasets" / "gpiosenka" / "butterfly-images40-species" / "versions" / "14"
    for split, per_class in (("train", 3), ("valid", 1), ("test", 1)):
        for species in ("ADONIS", "ATLAS MOTH"):
            folder = top / split / species
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (224, 224), (40 * i, 120, 200)).save(folder / f"{i + 1}.jpg")
    (top / "butterflies and moths.csv").write_text("filepaths,labels\n")
    (top / "EfficientNetB0-100-(224 X 224)- 97.59.h5").write_bytes(b"\0" * 16)
    return top


@pytest.fixture
def kagglehub(tmp_path, monkeypatch):
    """A stand-in for kagglehub (installed or not): dataset_download returns a local tree."""
    calls: list[str] = []
    tree = fake_kaggle_tree(tmp_path / "kaggle-cache")

    def dataset_download(handle: str, *args: object, **kwargs: object) -> str:
        calls.append(handle)
        return str(tree)

    module = types.ModuleType("kagglehub")
    module.dataset_download = dataset_download
    monkeypatch.setitem(sys.modules, "kagglehub", module)
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    return calls


def test_butterfly_is_laid_out_for_imagefolder(data_root, kagglehub):
    result = pull("butterfly")
    assert result.exit_code == 0, result.output
    assert kagglehub == ["gpiosenka/butterfly-images40-species"]
    folder = data_root / "butterfly"
    assert sorted(p.name for p in folder.iterdir()) == ["test", "train", "valid"]
    assert len(list((folder / "train").rglob("*.jpg"))) == 6
    assert not list(folder.rglob("*.csv")) and not list(folder.rglob("*.h5"))
    assert "6 train, 2 valid, 2 test images" in result.stderr
    from zoo.experiment import assemble, resolve

    dataset = assemble(resolve("gan.butterfly")).dataset  # no --data: $ZOO_DATA/butterfly
    train = dataset.split("train", 0)
    assert len(train) == 6 and tuple(train[0][0].shape) == (3, 64, 64)


def test_butterfly_without_kagglehub_says_what_to_install(data_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import fails as if not installed
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    result = pull("butterfly")
    assert result.exit_code == 2 and 'pip install -e ".[kaggle]"' in one_line(result)
    assert not data_root.parent.exists()


def test_butterfly_from_a_local_copy(data_root, tmp_path):
    tree = fake_kaggle_tree(tmp_path / "copy")
    assert pull("butterfly", "--from", str(tree.parents[3])).exit_code == 2  # not the layout: says so
    result = pull("butterfly", "--from", str(tree))
    assert result.exit_code == 0, result.output
    assert (data_root / "butterfly" / "valid" / "ADONIS" / "1.jpg").is_file()


# ---------------------------------------------------------------- the hook


def test_hook_zoo_register_data():
    plugins.catalog()
    found: dict[str, object] = {}
    plugins.pm.hook.zoo_register_data(register=lambda name, pull, summary="": found.update({name: pull}))
    assert {"mnist", "butterfly"} <= set(found) and all(callable(f) for f in found.values())
    listed = CliRunner().invoke(cli, ["data", "list"])
    assert listed.exit_code == 0 and "mnist" in listed.stdout and "(plugin generative)" in listed.stdout
