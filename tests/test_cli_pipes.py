"""`zoo list | head`: a reader that leaves early is not an error."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_pipe_ends_quietly_with_exit_0():
    zoo = subprocess.Popen([sys.executable, "-m", "zoo", "list"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    zoo.stdout.close()  # the reader is gone before zoo prints anything (`| head -0`)
    stderr = zoo.stderr.read()
    assert zoo.wait(timeout=120) == 0, stderr
    assert b"Broken pipe" not in stderr and b"Traceback" not in stderr, stderr
