"""Every short ``zoo …`` command shown in README.md and docs/*.md runs as written.

Commands are taken from fenced code blocks. Those that take seconds run here, in-process: list,
info, plugins, data list, cache list, --help, pull, and eval/predict/sample/interpolate with ``--pretrained``
(eval on one batch: ``--limit-batches 1`` is appended, the rest is as written). Synopses
(``NAME``, ``[…]``, ``A|B``), trainings, publishing, pulls of data, and commands naming the
reader's folders (``--data``) or files from a past run are not run here.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import cli

from conftest import assert_no_crash

ROOT = Path(__file__).resolve().parents[1]
# MNIST for the generative commands: the copy the suite is started with (ZOO_DATA, see .ci/run);
# the per-test isolation removes ZOO_DATA, so it is read here, at collection.
SHARED = os.environ.get("ZOO_DATA") or str(ROOT.parent / "shared" / "data")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FAST = {"list", "info", "plugins", "data", "pull", "eval", "predict", "sample", "interpolate", "cache"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{1,}\b|[\[\]|<>*]|~|\.\.\.|…")


def doc_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every ``zoo`` line in a fenced block, comments and ``\\`` joined."""
    found = []
    for path in DOCS:
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(), flags=re.S | re.M):
            text = re.sub(r"\\\n\s*", " ", block)
            for line in text.splitlines():
                line = line.strip().removeprefix("$ ")
                line = re.split(r"\s+#\s", line)[0].strip()
                if re.match(r"^(ZOO_\w+=\S+\s+)*zoo\s+[a-z-]", line) and parses(line):
                    found.append((path.name, line))
    return found


def parses(line: str) -> bool:
    """A shell command line (prose that happens to start with "zoo" does not split)."""
    try:
        return shlex.split(line)[1] in cli.list_commands(None)  # type: ignore[arg-type]
    except ValueError:
        return False


def runnable(command: str) -> bool:
    """Fast, and complete as written (no placeholders, no files from someone's past run)."""
    words = shlex.split(command)
    env = [w for w in words if re.match(r"^ZOO_\w+=", w)]
    args = words[len(env) + 1:]
    if env or not args or args[0] not in FAST or PLACEHOLDER.search(command.split("zoo", 1)[1]):
        return False
    if re.search(r"\S\s{3,}\S", command):
        return False  # a synopsis line with its description in a second column
    if args[0] in {"eval", "predict", "sample", "interpolate"} and "--pretrained" not in args:
        return False
    if "--data" in args:
        return False  # the reader's own folder
    if args[0] == "data" and args[1:2] != ["list"]:
        return False  # pulls are tested against local copies in test_data_pull.py
    if args[0] == "cache" and args[1:2] != ["list"]:
        return False  # clearing is tested in test_caches.py
    return True


COMMANDS = [c for c in doc_commands() if runnable(c[1])]


def test_docs_commands_were_found() -> None:
    everything = doc_commands()
    assert len(everything) > 30 and len(COMMANDS) >= 8, COMMANDS
    kinds = {shlex.split(c)[1] for _, c in COMMANDS}
    assert {"list", "info", "predict", "interpolate", "data"} <= kinds


def clock_photo(path: Path) -> None:
    """A clock image to predict on, drawn by the clock plugin's own renderer."""
    from PIL import Image

    from zoo_clock.render import render

    Image.fromarray(render(seed=1, index=0, hour=10, minute=10).image).save(path)


@pytest.mark.parametrize("where,command", [
    pytest.param(w, c, id=f"{w}: {c}", marks=[pytest.mark.slow] if " eval " in c else [])
    for w, c in COMMANDS])  # eval scores a batch: seconds, up to ~15 s for the VAE's bounds
def test_doc_command_runs_as_written(where: str, command: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_DATA", SHARED)
    args = shlex.split(command)[1:]
    if args[0] == "eval":
        args += ["--limit-batches", "1"]
    if args[0] == "predict":
        for image in args[2:]:
            if not image.startswith("-") and Path(image).suffix in {".jpg", ".png", ".jpeg"}:
                clock_photo(tmp_path / image)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{where}: `{command}` failed:\n{result.output}"
    assert_no_crash(result)
