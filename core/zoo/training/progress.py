"""What a run shows while it trains: one bar for the whole run, one kept line per epoch.

The trainer only reports events (``start``, ``update``, ``epoch_end``, ``close``); this module
decides how they look. On a terminal: one persistent tqdm bar (epoch, step, loss, img/s, ETA of
the run) with each epoch's validation line written above it. Elsewhere (a log file, CI, a pipe)
or on a terminal that reports no width (tqdm would print nothing there): plain lines, one per
epoch and one every ``interval`` seconds. Imports no torch.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from typing import IO, Any


def terminal_columns(stream: IO[str]) -> int:
    """The width of the terminal behind ``stream``; 0 when it reports none or is no terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return 0


def duration(seconds: float) -> str:
    """``3h02m``, ``4m05s``, ``12s``: short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def planned_epochs(epochs: int, updates_per_epoch: int, max_steps: int) -> int:
    """Epochs the run will actually enter: ``--max-steps`` can end it before ``epochs``."""
    if max_steps and updates_per_epoch:
        return max(1, min(epochs, math.ceil(max_steps / updates_per_epoch)))
    return epochs


def total_steps(epochs: int, updates_per_epoch: int, max_steps: int) -> int:
    """Optimizer updates of the whole run: min(epochs × updates per epoch, max_steps)."""
    total = epochs * updates_per_epoch
    return min(total, max_steps) if max_steps else total


class Progress:
    """Shows a run's progress on ``stream`` (stderr); ``bar=None`` picks the bar on a wide tty."""

    def __init__(self, epochs: int, stream: IO[str] | None = None, bar: bool | None = None,
                 interval: float = 30.0, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.epochs, self.interval, self.enabled = epochs, interval, enabled
        columns = terminal_columns(self.stream) if self.stream.isatty() else 0
        self.columns = columns
        self.use_bar = enabled and (columns > 0 if bar is None else bar and columns > 0)
        self.bar: Any = None
        self.total = self.initial = self.step = 0
        self.epoch = 0
        self.loss: str = ""
        self.rate: float | None = None
        self.started = self.last_line = time.perf_counter()
        self.timed: tuple[float, int] | None = None  # (time, step) of the first update: ETA origin

    # ------------------------------------------------------------ events

    def start(self, total: int, initial: int = 0, epoch: int = 0) -> None:
        """The run has ``total`` optimizer updates; ``initial`` are already done (a resume)."""
        self.total, self.initial, self.step, self.epoch = total, initial, initial, epoch
        self.started = self.last_line = time.perf_counter()
        self.timed = None
        if not self.use_bar:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, file=self.stream, ncols=self.columns,
                        mininterval=0.5, unit="step", desc=self._where(), leave=True,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                   "[{elapsed}<{remaining}{postfix}]")

    def update(self, step: int, loss: dict[str, float] | None = None, rate: float | None = None,
               epoch: int | None = None) -> None:
        """After a batch: the global step, and (when known) the running loss and images/second."""
        if not self.enabled:
            return
        if epoch is not None:
            self.epoch = epoch
        if loss:
            self.loss = " ".join(f"{k}={v:.4g}" for k, v in list(loss.items())[:2])
        if rate is not None:
            self.rate = rate
        advanced, self.step = step - self.step, step
        if self.timed is None:  # the first batch pays one-off costs (cache rendering, kernel
            self.timed = (time.perf_counter(), step)  # choice, compile): the ETA starts after it
        if self.bar is not None:
            self.bar.set_description_str(self._where(), refresh=False)
            self.bar.set_postfix_str(self._status(), refresh=False)
            self.bar.update(advanced)
        elif time.perf_counter() - self.last_line >= self.interval:
            eta = self.eta()
            self._line(f"{self._where()} step {self.step}/{self.total} {self._status()}"
                       + (f" eta {duration(eta)}" if eta is not None else ""))

    def epoch_end(self, epoch: int, metrics: dict[str, float], seconds: float | None = None) -> None:
        """Epoch ``epoch`` (1-based) ended, or the run stopped in it: one kept line, val metrics."""
        if not self.enabled:
            return
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        took = f" ({duration(seconds)})" if seconds is not None else ""
        self._line(f"epoch {epoch}/{self.epochs} step {self.step}/{self.total}" + (f" val {shown}" if shown else "") + took)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ------------------------------------------------------------ helpers

    def eta(self) -> float | None:
        """Seconds left for the run at the rate seen since the first update; None before a rate
        can be seen (a first line saying "eta 30h" while a cache renders helps nobody)."""
        if self.timed is None or self.step <= self.timed[1]:
            return None
        since, first = self.timed
        return (time.perf_counter() - since) / (self.step - first) * max(0, self.total - self.step)

    def _where(self) -> str:
        return f"epoch {min(self.epoch + 1, self.epochs)}/{self.epochs}"

    def _status(self) -> str:
        parts = [self.loss] if self.loss else []
        if self.rate is not None:
            parts.append(f"{self.rate:.0f} img/s")
        return " ".join(parts)

    def _line(self, text: str) -> None:
        """A line that stays: above the bar on a terminal, plain elsewhere."""
        self.last_line = time.perf_counter()
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


# ---------------------------------------------------------------- the finish


def published_references(experiment: str, metric: str) -> list[tuple[str, float]]:
    """``(NAME:TAG, value)`` of ``metric``: the experiment's own published weights, then the best
    published one of its family (``clock.*``) judged on the same metric, when that is another.

    Empty when no index can be read (offline, unreachable, a wheel without ``registry/``).
    """
    from ..storage import hub

    try:
        index = hub.load_index(max_age=hub.LIST_INDEX_MAX_AGE)
    except Exception:  # a reference is a courtesy: never fail a finished run over it
        return []
    family = experiment.split(".")[0] + "."
    own: tuple[str, float] | None = None
    best: tuple[str, float, bool] | None = None
    for key, entry in sorted(index.weights.items()):
        if not isinstance(entry, dict) or entry.get("main_metric") != metric:
            continue
        value = (entry.get("metrics") or {}).get(metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        name, _, tag = key.partition(":")
        if name == experiment and tag == hub.DEFAULT_TAG:
            own = (key, float(value))
        higher = bool(entry.get("higher_is_better"))
        if name.startswith(family) and (best is None or (value > best[1] if higher else value < best[1])):
            best = (key, float(value), higher)
    refs = [own] if own else []
    if best is not None and (own is None or best[0] != own[0]):
        refs.append(best[:2])
    return refs


def finish_block(summary: dict[str, Any], decodes: bool = True) -> str:
    """What a finished ``zoo run`` tells: the result beside the published numbers, where the
    files are, and the commands that come next."""
    name, metric = summary["experiment"], summary["main_metric"]
    weights = summary["weights"]
    run_dir = os.path.dirname(weights)
    value = summary.get("test", {}).get(metric)
    shown = f"{value:.4g}" if isinstance(value, (int, float)) else "?"
    samples = summary.get("test", {}).get("samples")
    size = f", {int(samples)} samples" if isinstance(samples, (int, float)) else ""
    lines = [f"result: test {metric} {shown}{size}"]
    refs = published_references(name, metric)
    if refs:
        family = name.split(".")[0]
        parts = [f"{key} {v:.4g}" if key.startswith(name + ":") else f"best {family}.*: {key} {v:.4g}"
                 for key, v in refs]
        lines[0] += "   published: " + ", ".join(parts)
    lines.append(f"weights: {weights}")
    figures = summary.get("figures") or []
    if figures:
        lines.append(f"figures: {os.path.dirname(figures[0])}/ "
                     f"({', '.join(os.path.basename(f) for f in figures)})")
    lines.append("next:")
    if decodes:
        lines.append(f"  zoo predict {name} photo.jpg --weights {weights}")
    lines.append(f"  zoo eval {name} --weights {weights}")
    lines.append(f"  zoo publish {run_dir}")
    return "\n".join(lines)


class Meter:
    """The logged values summed since the last report (on the device: no sync per batch), and
    how many images went by in how long."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Any] = {}
        self.batches, self.images, self.start = 0, 0, time.perf_counter()

    def add(self, logs: dict[str, Any], prefix: str = "") -> None:
        for key, value in logs.items():
            self.sums[prefix + key] = self.sums.get(prefix + key, 0) + value.detach().float()

    def count(self, images: int) -> None:
        self.batches += 1
        self.images += images

    def means(self) -> dict[str, Any]:
        return {k: v / self.batches for k, v in self.sums.items()}

    def rate(self, world: int = 1) -> float:
        return self.images * world / max(1e-9, time.perf_counter() - self.start)
