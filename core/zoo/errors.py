"""Errors the CLI turns into one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# ESC-introduced sequences (CSI ``ESC [ … final``, OSC ``ESC ] … BEL|ST``, two-byte escapes), then
# any other C0/C1 control character except newline and tab.
_TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` without terminal control sequences: card, index and plugin strings are data from
    someone else, and echoing an ESC sequence lets them recolour, retitle or rewrite the terminal."""
    return _TERMINAL_CONTROL.sub("", str(text))


class ZooError(Exception):
    """A problem the user can fix; ``exit_code`` 2 means bad input, 1 a failed operation."""

    exit_code = 1


class UsageError(ZooError):
    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal after checkpointing; the CLI exits 128 + signal (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum, self.exit_code = signum, 128 + signum


class UnknownName(UsageError):
    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = list(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        if not close and known and len(known) <= 12:
            hint = f"; known: {', '.join(sorted(known))}"
        super().__init__(f"unknown {kind} '{name}'{hint}")
        self.name, self.close = name, close
