"""The common-sense error: how far apart two times are on a 12-hour dial, in minutes.

Torch-free (numpy only) so the metric can be tested and reused anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIAL = 720  # minutes on a 12-hour dial


def to_minutes(hour: np.ndarray | int, minute: np.ndarray | int) -> np.ndarray:
    """(hour 0–11, minute 0–59) → minutes after 12:00 on the dial."""
    return (np.asarray(hour) * 60 + np.asarray(minute)) % DIAL


def common_sense_error(t1: np.ndarray | float, t2: np.ndarray | float) -> np.ndarray:
    """``d = |t1 - t2| mod 720; min(d, 720 - d)``: 11:55 vs 0:05 is 10 minutes, not 710."""
    d = np.abs(np.asarray(t1, dtype=np.float64) - np.asarray(t2, dtype=np.float64)) % DIAL
    return np.minimum(d, DIAL - d)


def summarize(pred_minutes: Sequence[float] | np.ndarray,
              true_minutes: Sequence[float] | np.ndarray) -> dict[str, float]:
    """All clock metrics for integer-minute predictions vs labels (both minutes on the dial)."""
    pred = np.rint(np.asarray(pred_minutes, dtype=np.float64)).astype(np.int64) % DIAL
    true = np.asarray(true_minutes, dtype=np.int64) % DIAL
    if pred.size == 0:
        raise ValueError("no samples to evaluate")
    err = common_sense_error(pred, true)
    minute_err = np.abs(pred % 60 - true % 60)
    minute_err = np.minimum(minute_err, 60 - minute_err)
    return {
        "error_mean": float(err.mean()),
        "error_median": float(np.median(err)),
        "error_p90": float(np.percentile(err, 90)),
        "within_1min": float((err <= 1).mean()),
        "within_5min": float((err <= 5).mean()),
        "hour_acc": float((pred // 60 == true // 60).mean()),
        "minute_mae": float(minute_err.mean()),
        "samples": float(err.size),
    }


def format_time(minutes: int) -> str:
    """Minutes on the dial → ``HH:MM`` as a clock face shows it (hour 0 reads 12)."""
    minutes = int(minutes) % DIAL
    h, m = divmod(minutes, 60)
    return f"{h or 12:02d}:{m:02d}"


def histogram_png(errors: np.ndarray, path: str, title: str = "") -> None:
    """A bar chart of common-sense errors (0–360 min, log-scaled counts) drawn with PIL."""
    from PIL import Image, ImageDraw

    edges = np.array([0, 1, 2, 3, 5, 10, 15, 30, 60, 120, 240, 361])
    counts, _ = np.histogram(np.asarray(errors), bins=edges)
    w, h, left, bottom, top = 640, 360, 50, 60, 40
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    n = len(counts)
    bw = (w - left - 20) / n
    peak = max(1, int(counts.max()))
    for i, c in enumerate(counts):
        bh = (h - top - bottom) * (np.log1p(c) / np.log1p(peak))
        x0 = left + i * bw + 3
        draw.rectangle([x0, h - bottom - bh, x0 + bw - 6, h - bottom], fill=(60, 110, 200))
        draw.text((x0, h - bottom - bh - 12), str(int(c)), fill="black")
        lo, hi = edges[i], edges[i + 1] - 1
        draw.text((x0, h - bottom + 6), f"{lo}-{hi}" if hi > lo else f"{lo}", fill="black")
    draw.line([left, h - bottom, w - 10, h - bottom], fill="black")
    draw.text((left, h - bottom + 24), "common-sense error (minutes); bar height log(1+count)",
              fill="black")
    err = np.asarray(errors)
    draw.text((left, 12), f"{title}  n={err.size}  mean={err.mean():.2f}  "
              f"median={np.median(err):.1f} min", fill="black")
    img.save(path)
