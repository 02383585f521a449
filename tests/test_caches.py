"""``zoo cache``: only what zoo itself named is listed or removed, whatever else ZOO_HOME holds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import cli

HEX16 = "0123456789abcdef"
OLD = time.time() - 3 * 3600  # older than the hour a partial is left to its live process


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def put(path: Path, size: int = 10, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home


@pytest.fixture
def outside(tmp_path) -> Path:
    return put(tmp_path / "elsewhere" / "precious.txt")


@pytest.fixture
def filled(home, outside) -> dict[str, Path]:
    """One entry of each kind, and beside them things zoo did not write."""
    render = home / "cache" / "SyntheticClocks" / "a761273a5936ac72ab3a"
    put(render / "images.npy", 2000)
    os.utime(render, (OLD, OLD))
    half = home / "cache" / "SyntheticClocks" / ".part-k2j3"
    put(half / "images.npy", 5)
    os.utime(half, (OLD, OLD))
    fresh_part = put(home / "weights" / "m.x" / ".default-aaaa.safetensors.x1.part", 3)  # a live download
    (home / "cache" / "Group").mkdir(parents=True)
    (home / "cache" / "Group" / "abcdef0123").symlink_to(outside.parent)  # never followed
    return {
        "weights": put(home / "weights" / "m.x" / f"default-{HEX16}.safetensors", 100),
        "index": put(home / "registry" / f"{HEX16}.json", 50),
        "data": render,
        "partial": half,
        "fresh partial": fresh_part,
        # not zoo's: wrong shapes of name, or plain user files in a shared folder
        "notes": put(home / "notes.txt"),
        "user weights": put(home / "weights" / "m.x" / "mine.safetensors"),
        "user data": put(home / "cache" / "Group" / "my-data" / "file.bin"),
        "user json": put(home / "registry" / "index.json"),
    }


def test_list_names_each_kind_and_the_total(filled, home):
    result = invoke("cache", "list")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[0] == f"ZOO_HOME: {home}" and rows[1].split() == ["KIND", "SIZE", "LAST", "USED", "PATH"]
    listed = sorted((row.split()[0], row.split()[-1]) for row in rows[2:-1])
    assert listed == [("data", "cache/SyntheticClocks/a761273a5936ac72ab3a"),
                      ("index", f"registry/{HEX16}.json"),
                      ("partial", "cache/SyntheticClocks/.part-k2j3"),
                      ("partial", "weights/m.x/.default-aaaa.safetensors.x1.part"),
                      ("weights", f"weights/m.x/default-{HEX16}.safetensors")], rows
    assert rows[-1] == "total: 5 entries, 2.2 KB"  # 100 + 50 + 2000 + 5 + 3 bytes
    only = invoke("cache", "list", "--kind", "data").output.splitlines()
    assert len(only) == 4 and only[2].startswith("data ") and only[3] == "total: 1 entries, 2.0 KB"


def test_clear_removes_zoos_entries_and_nothing_else(filled, outside):
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output
    for key in ("weights", "index", "data", "partial"):
        assert not filled[key].exists(), key
    assert filled["fresh partial"].is_file()  # may be a download in progress: left for an hour
    for key in ("notes", "user weights", "user data", "user json"):
        assert filled[key].is_file(), key
    assert outside.is_file() and outside.parent.is_dir()
    assert result.output.splitlines()[-1] == "4 entries, freed 2.2 KB"


def test_older_than_keeps_what_was_used_recently(filled):
    month_ago = time.time() - 30 * 86400
    os.utime(filled["weights"], (month_ago, month_ago))
    result = invoke("cache", "clear", "--older-than", "7")
    assert result.exit_code == 0, result.output
    assert not filled["weights"].exists()
    assert filled["index"].is_file() and filled["data"].is_dir()  # touched today (the index) / 3 h ago


def test_dry_run_removes_nothing(filled):
    result = invoke("cache", "clear", "--dry-run")
    assert result.exit_code == 0 and "would free" in result.output, result.output
    assert all(path.exists() for path in filled.values())


@pytest.mark.parametrize("days", ["-1", "nan", "inf", "soon"])
def test_bad_age_is_one_line_exit_2(filled, days):
    result = invoke("cache", "clear", "--older-than", days)
    assert result.exit_code == 2, result.output
    assert "--older-than" in result.output.strip().splitlines()[-1]  # ours, or click's last line
    assert all(path.exists() for path in filled.values())


def test_empty_or_missing_home_lists_nothing(home):
    result = invoke("cache", "list")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "total: 0 entries, 0 B"


def test_an_unreadable_folder_is_skipped_not_a_traceback(filled, home, monkeypatch):
    """Permissions or a folder removed meanwhile: ``iterdir`` fails there, the rest is listed."""
    locked = home / "cache" / "SyntheticClocks"
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    result = invoke("cache", "list")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "weights/m.x/default-" in result.output and "SyntheticClocks" not in result.output
