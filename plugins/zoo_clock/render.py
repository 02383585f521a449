"""Procedural analog clocks: 150×150 grayscale, sample ``i`` of seed ``s`` identical everywhere.

Pure numpy + PIL (no torch, no fonts): numerals are drawn from a built-in stroke font so the
pixels do not depend on which TrueType files a machine has. Every random choice comes from
``numpy.random.default_rng([seed, stream, index])`` (PCG64, platform independent).

Difficulty (a float, 0–2; 1 is the default):
  0  upright, centred-ish clocks on a plain background, no blur, noise or clutter;
  1  rotation up to ±4°, mild perspective, shift and scale, blur up to 1 px, noise σ≤8, some clutter;
  2  rotation up to ±8°, strong perspective, blur up to 1.6 px, noise σ≤16, more clutter.
Style variety (dial shape, border, ticks, numerals, hand shapes, second hand) is the same at
every difficulty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 150

# Stroke font: each glyph is a list of polylines in a box of height 1 (x grows right, y down).
_DIGITS: dict[str, tuple[float, list[list[tuple[float, float]]]]] = {
    "0": (0.6, [[(0.3, 0), (0.6, 0.25), (0.6, 0.75), (0.3, 1), (0, 0.75), (0, 0.25), (0.3, 0)]]),
    "1": (0.4, [[(0.05, 0.2), (0.3, 0), (0.3, 1)]]),
    "2": (0.6, [[(0, 0.2), (0.15, 0), (0.45, 0), (0.6, 0.2), (0.6, 0.35), (0, 1), (0.6, 1)]]),
    "3": (0.6, [[(0, 0), (0.6, 0), (0.25, 0.4), (0.5, 0.45), (0.6, 0.7), (0.45, 1), (0, 0.95)]]),
    "4": (0.6, [[(0.45, 1), (0.45, 0), (0, 0.7), (0.6, 0.7)]]),
    "5": (0.6, [[(0.6, 0), (0.05, 0), (0, 0.45), (0.4, 0.4), (0.6, 0.6), (0.55, 0.9),
                 (0.3, 1), (0, 0.95)]]),
    "6": (0.6, [[(0.55, 0), (0.1, 0.4), (0, 0.75), (0.15, 1), (0.45, 1), (0.6, 0.8), (0.5, 0.55),
                 (0.2, 0.5), (0.05, 0.65)]]),
    "7": (0.6, [[(0, 0), (0.6, 0), (0.2, 1)]]),
    "8": (0.6, [[(0.3, 0.45), (0.05, 0.25), (0.3, 0), (0.55, 0.25), (0.3, 0.45), (0, 0.72),
                 (0.3, 1), (0.6, 0.72), (0.3, 0.45)]]),
    "9": (0.6, [[(0.55, 0.35), (0.3, 0.5), (0.05, 0.35), (0.1, 0.05), (0.45, 0), (0.6, 0.25),
                 (0.5, 0.7), (0.1, 1)]]),
    "I": (0.15, [[(0.075, 0), (0.075, 1)]]),
    "V": (0.5, [[(0, 0), (0.25, 1), (0.5, 0)]]),
    "X": (0.5, [[(0, 0), (0.5, 1)], [(0.5, 0), (0, 1)]]),
}
_ROMAN = ["XII", "I", "II", "III", "IIII", "V", "VI", "VII", "VIII", "IX", "X", "XI"]
_ARABIC = ["12"] + [str(i) for i in range(1, 12)]


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (150, 150) uint8
    hour: int  # 0–11
    minute: int  # 0–59


def _text(draw: ImageDraw.ImageDraw, text: str, cx: float, cy: float, height: float,
          width: int, ink: int) -> None:
    """Draw ``text`` centred at (cx, cy) with the stroke font."""
    gap = 0.12
    total = sum(_DIGITS[c][0] for c in text) + gap * (len(text) - 1)
    x0 = cx - total * height / 2
    y0 = cy - height / 2
    for c in text:
        w, strokes = _DIGITS[c]
        for line in strokes:
            pts = [(x0 + x * height, y0 + y * height) for x, y in line]
            draw.line(pts, fill=ink, width=width, joint="curve")
        x0 += (w + gap) * height


def _hand(draw: ImageDraw.ImageDraw, cx: float, cy: float, angle: float, length: float,
          width: float, tail: float, shape: int, ink: int) -> None:
    """A hand at ``angle`` (radians clockwise from 12): 0 bar, 1 tapered, 2 arrow, 3 spade."""
    dx, dy = math.sin(angle), -math.cos(angle)
    px, py = -dy, dx  # perpendicular
    tip = (cx + dx * length, cy + dy * length)
    back = (cx - dx * tail, cy - dy * tail)
    if shape == 0:
        draw.line([back, tip], fill=ink, width=max(1, round(width)))
    elif shape == 1:
        hw = width * 0.8
        draw.polygon([(back[0] + px * hw, back[1] + py * hw), tip,
                      (back[0] - px * hw, back[1] - py * hw)], fill=ink)
    else:
        draw.line([back, (cx + dx * length * 0.8, cy + dy * length * 0.8)], fill=ink,
                  width=max(1, round(width * 0.7)))
        hw = width * (1.4 if shape == 2 else 1.1)
        base = (cx + dx * length * (0.72 if shape == 2 else 0.6),
                cy + dy * length * (0.72 if shape == 2 else 0.6))
        if shape == 2:
            draw.polygon([(base[0] + px * hw, base[1] + py * hw), tip,
                          (base[0] - px * hw, base[1] - py * hw)], fill=ink)
        else:
            mid = (cx + dx * length * 0.8, cy + dy * length * 0.8)
            draw.polygon([base, (mid[0] + px * hw, mid[1] + py * hw), tip,
                          (mid[0] - px * hw, mid[1] - py * hw)], fill=ink)


def _homography(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """PIL PERSPECTIVE coefficients mapping output points ``dst`` to input points ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float)).tolist())


def render(seed: int, index: int, difficulty: float = 1.0, stream: int = 0,
           hour: int | None = None, minute: int | None = None, supersample: int = 2) -> Sample:
    """Render clock ``index`` of ``(seed, stream)``; ``hour``/``minute`` force the time shown."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream), int(index)])
    d = float(difficulty)
    h = int(rng.integers(12)) if hour is None else int(hour)
    m = int(rng.integers(60)) if minute is None else int(minute)
    ss = supersample
    big = SIZE * ss

    # colours: usually dark ink on a light face, sometimes inverted
    dark_face = rng.random() < 0.15
    face = int(rng.integers(10, 70)) if dark_face else int(rng.integers(170, 256))
    ink = int(rng.integers(200, 256)) if dark_face else int(rng.integers(0, 70))
    bg = int(rng.integers(0, 256))

    img = Image.new("L", (big, big), bg)
    draw = ImageDraw.Draw(img)

    # background clutter (hidden where the dial covers it)
    for _ in range(int(rng.integers(0, 1 + round(4 * d)))):
        x0, y0, x1, y1 = (rng.random(4) * big).tolist()
        col = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            draw.line([(x0, y0), (x1, y1)], fill=col, width=int(rng.integers(1, 4 * ss)))
        else:
            draw.ellipse([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
                         outline=col, width=int(rng.integers(1, 3 * ss)))

    # dial geometry
    r = big * rng.uniform(0.36, 0.47)
    cx = big / 2 + rng.uniform(-1, 1) * (0.47 * big - r) * min(d, 1.0)
    cy = big / 2 + rng.uniform(-1, 1) * (0.47 * big - r) * min(d, 1.0)
    square = rng.random() < 0.3
    border = int(rng.integers(0, 5)) * ss
    box = [cx - r, cy - r, cx + r, cy + r]
    if square:
        draw.rounded_rectangle(box, radius=int(r * rng.uniform(0, 0.3)), fill=face,
                               outline=ink, width=border)
    else:
        draw.ellipse(box, fill=face, outline=ink, width=border)
    inner = r - border - 2 * ss

    # ticks: 0 none, 1 hour lines, 2 hour + minute lines, 3 dots
    ticks = int(rng.integers(0, 4))
    numerals = int(rng.integers(0, 3))  # 0 none, 1 arabic, 2 roman
    if numerals == 0 and ticks == 0:
        ticks = 1 + int(rng.integers(0, 3))
    tick_len = inner * rng.uniform(0.06, 0.14)
    tick_w = max(1, round(ss * rng.uniform(1, 3)))
    for k in range(60 if ticks == 2 else 12):
        is_hour = ticks != 2 or k % 5 == 0
        a = 2 * math.pi * k / (60 if ticks == 2 else 12)
        sa, ca = math.sin(a), -math.cos(a)
        if ticks in (1, 2):
            length = tick_len if is_hour else tick_len * 0.45
            w = tick_w if is_hour else max(1, tick_w // 2)
            r0 = inner * 0.97
            draw.line([(cx + sa * r0, cy + ca * r0), (cx + sa * (r0 - length), cy + ca * (r0 - length))],
                      fill=ink, width=w)
        elif ticks == 3:
            rad = tick_w * 1.3
            px, py = cx + sa * inner * 0.92, cy + ca * inner * 0.92
            draw.ellipse([px - rad, py - rad, px + rad, py + rad], fill=ink)
    if numerals:
        labels = _ARABIC if numerals == 1 else _ROMAN
        height = inner * rng.uniform(0.13, 0.2)
        nr = inner * (0.72 if ticks else 0.82)
        nw = max(1, round(ss * rng.uniform(0.8, 2.2)))
        step = 3 if rng.random() < 0.3 else 1  # sometimes only 12, 3, 6, 9
        for k in range(0, 12, step):
            a = 2 * math.pi * k / 12
            _text(draw, labels[k], cx + math.sin(a) * nr, cy - math.cos(a) * nr, height, nw, ink)

    # hands: the hour hand advances with the minutes, as on a real clock
    hour_angle = 2 * math.pi * (h * 60 + m) / 720
    minute_angle = 2 * math.pi * m / 60
    shape = int(rng.integers(0, 4))
    hour_len = inner * rng.uniform(0.42, 0.58)
    min_len = inner * rng.uniform(0.72, 0.92)
    hour_w = ss * rng.uniform(2.5, 5.0)
    min_w = hour_w * rng.uniform(0.5, 0.85)
    tail = inner * rng.uniform(0, 0.15)
    _hand(draw, cx, cy, hour_angle, hour_len, hour_w, tail, shape, ink)
    _hand(draw, cx, cy, minute_angle, min_len, min_w, tail, shape, ink)
    if rng.random() < 0.4:  # second hand: thin, anywhere, often a different shade
        sec_ink = int(rng.integers(0, 256)) if rng.random() < 0.5 else ink
        _hand(draw, cx, cy, rng.uniform(0, 2 * math.pi), inner * rng.uniform(0.8, 0.95),
              ss * 0.8, inner * 0.2, 0, sec_ink)
    cap = ss * rng.uniform(1.5, 4.5)
    draw.ellipse([cx - cap, cy - cap, cx + cap, cy + cap], fill=ink)

    # foreground clutter on top of the clock (hard only)
    for _ in range(int(rng.integers(0, 1 + round(max(0.0, d - 1) * 2)))):
        x0, y0, x1, y1 = (rng.random(4) * big).tolist()
        draw.line([(x0, y0), (x1, y1)], fill=int(rng.integers(0, 256)), width=ss)

    # one perspective warp: rotation, corner jitter, supersampled → 150×150
    rot = math.radians(rng.uniform(-4, 4) * d)
    c, s = math.cos(rot), math.sin(rot)
    half = big / 2
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    src = corners @ np.array([[c, s], [-s, c]]) + half
    src = src + rng.uniform(-1, 1, size=(4, 2)) * big * 0.05 * d
    dst = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], float)
    coeffs = _homography(src, dst)
    out = img.transform((SIZE, SIZE), Image.Transform.PERSPECTIVE, coeffs,
                        resample=Image.Resampling.BILINEAR, fillcolor=bg)
    blur = rng.uniform(0, 0.8 * d)
    if blur > 0.3:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(out)
    sigma = rng.uniform(0, 8 * d)
    if sigma > 0.5:
        noise = rng.standard_normal((SIZE, SIZE), dtype=np.float32) * sigma
        arr = np.clip(arr + noise, 0, 255).astype(np.uint8)
    return Sample(np.array(arr, dtype=np.uint8), h, m)  # a writable copy


# Bump when the pixels of ``render`` change: it is part of the render cache's key.
RENDER_VERSION = 1


def render_range(seed: int, stream: int, difficulty: float, supersample: int, start: int,
                 stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Clocks ``start``…``stop - 1`` as (images (n,150,150) uint8, labels (n,2) int16)."""
    return stack_samples([render(seed, i, difficulty, stream, supersample=supersample)
                          for i in range(start, stop)])


def stack_samples(samples: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rendered clocks as (images (n,150,150) uint8, labels (n,2) int16): the render cache's arrays."""
    return np.stack([s.image for s in samples]), np.array([[s.hour, s.minute] for s in samples],
                                                          dtype=np.int16)
