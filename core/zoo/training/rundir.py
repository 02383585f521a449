"""Run directories: where a run writes, which one ``--resume`` continues, and never clobbering one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..errors import UsageError

CHECKPOINT = "checkpoint.safetensors"
RUN_FILES = ("summary.json", "model.safetensors", CHECKPOINT, "metrics.jsonl")  # what a run leaves


def default_run_dir(name: str) -> Path:
    return Path("runs") / name / datetime.now().strftime("%Y%m%d-%H%M%S")


def latest_run_dir(name: str) -> Path:
    runs = sorted(p.parent for p in (Path("runs") / name).glob(f"*/{CHECKPOINT}"))
    if not runs:
        raise UsageError(f"no run of {name} with a checkpoint under runs/{name}/ to resume")
    return runs[-1]


def check_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Refuse to start a new run in a folder that holds one: its weights would be replaced and its
    metrics appended to. ``overwrite`` allows it (``prepare_run_dir`` then clears those files)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not overwrite:
        finished = "summary.json" in found or "model.safetensors" in found
        what = "a finished run" if finished else "an unfinished run"
        raise UsageError(f"{run_dir} already holds {what} ({', '.join(found)}); continue it with "
                         f"--resume {run_dir}, pick another --out, or pass --overwrite to replace it")


def prepare_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Create the run folder for a fresh run; with ``overwrite``, remove the old run's files."""
    check_run_dir(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (*RUN_FILES, "best.safetensors", "config.json"):
        (run_dir / name).unlink(missing_ok=True)
