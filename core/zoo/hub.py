"""Where weights come from: local paths now; the registry index and downloads land with issue 6."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def fetch(spec: str) -> Path:
    """A local file for ``spec`` (a path, a URL, or ``NAME[:TAG]`` from the registry index)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    raise UsageError(f"no weights found for '{spec}'")


def pretrained_summary() -> dict[str, str]:
    """Experiment name → headline metric of its published weights (filled by the registry index)."""
    return {}
