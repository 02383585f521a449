"""How fast the CLI answers: ``zoo list`` against ``python -c "import torch"`` (goal: ratio ≤ 0.3).

Listing never imports torch, so it should cost a fraction of one torch import.
Prints the medians and ends with ``cli_startup ratio=<zoo list / import torch>``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(repeats: int = 7) -> None:
    zoo = [shutil.which("zoo") or sys.executable, *([] if shutil.which("zoo") else ["-m", "zoo"]), "list"]
    torch_import = [sys.executable, "-c", "import torch"]
    wall(zoo), wall(torch_import)  # warm the file cache for both
    zoo_times, torch_times = [], []
    for _ in range(repeats):  # alternate so drift hits both alike
        zoo_times.append(wall(zoo))
        torch_times.append(wall(torch_import))
    z, t = statistics.median(zoo_times), statistics.median(torch_times)
    print(f"zoo list      median {z * 1000:7.1f} ms  (min {min(zoo_times) * 1000:.1f})")
    print(f"import torch  median {t * 1000:7.1f} ms  (min {min(torch_times) * 1000:.1f})")
    print(f"cli_startup ratio={z / t:.3f}")


if __name__ == "__main__":
    main()
