"""A second clock drawer, written apart from the zoo's generators, as a stand-in for foreign clocks.

Nothing here is used in training: it shares no code with ``render.py`` / ``_wilddraw.py`` (other
font, other hand shapes, other ways to warp, light and degrade), so a reader's error on it says
something about clocks the zoo did not draw. Writes DIR/images.npy + labels.npy, which any clock
reader evaluates with ``zoo eval NAME --weights W --data DIR --split all --json``.

    python benchmarks/clock_foreign.py /tmp/foreign --n 600 --seed 7 [--hard]
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 300  # drawn at 2× then reduced to the readers' 150×150
ROMAN = ["XII", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"]


def polar(cx: float, cy: float, r: float, turn: float) -> tuple[float, float]:
    """The point at radius ``r`` and ``turn`` (0 = 12 o'clock, clockwise, 1 = a full turn)."""
    return cx + r * math.sin(2 * math.pi * turn), cy - r * math.cos(2 * math.pi * turn)


def hand(draw: ImageDraw.ImageDraw, cx: float, cy: float, turn: float, length: float, width: float,
         style: str, fill: int) -> None:
    tip = polar(cx, cy, length, turn)
    tail = polar(cx, cy, -0.18 * length, turn)
    side = lambda r, w: (polar(cx, cy, r, turn)[0] + w * math.cos(2 * math.pi * turn),  # noqa: E731
                         polar(cx, cy, r, turn)[1] + w * math.sin(2 * math.pi * turn))
    if style == "line":
        draw.line([tail, tip], fill=fill, width=max(1, int(width)))
    elif style == "taper":
        draw.polygon([side(-0.18 * length, width), tip, side(-0.18 * length, -width)], fill=fill)
    elif style == "leaf":
        draw.polygon([tail, side(0.45 * length, width * 1.4), tip, side(0.45 * length, -width * 1.4)],
                     fill=fill)
    else:  # "arrow": a bar with a triangular head
        draw.line([tail, polar(cx, cy, 0.8 * length, turn)], fill=fill, width=max(1, int(width * 0.8)))
        draw.polygon([side(0.75 * length, width * 1.6), tip, side(0.75 * length, -width * 1.6)], fill=fill)


def perspective(img: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """A random 4-corner warp (PIL's own PERSPECTIVE transform), corners moved ≤ ``amount``·size."""
    src = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], float)
    dst = src + rng.uniform(-amount, amount, src.shape) * SIZE
    a = []
    for (x, y), (u, v) in zip(src, dst):  # coefficients mapping output (u, v) → input (x, y)
        a.append([u, v, 1, 0, 0, 0, -x * u, -x * v])
        a.append([0, 0, 0, u, v, 1, -y * u, -y * v])
    coeffs = np.linalg.solve(np.array(a), src.reshape(-1))
    return img.transform((SIZE, SIZE), Image.Transform.PERSPECTIVE, tuple(coeffs),
                         Image.Resampling.BICUBIC, fillcolor=int(rng.integers(40, 220)))


def draw_clock(rng: np.random.Generator, hour: int, minute: int, hard: bool = False) -> np.ndarray:
    """One clock showing ``hour:minute``; ``hard`` adds strong perspective, hand shadows, an alarm
    hand and stray lines across the picture."""
    bg = int(rng.integers(30, 230))
    img = Image.new("L", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 6))):  # background stripes and blobs
        x, y = rng.uniform(0, SIZE, 2)
        draw.ellipse([x - 40, y - 40, x + 40, y + 40] if rng.random() < 0.5 else [x, 0, x + 15, SIZE],
                     fill=int(rng.integers(0, 256)))
    cx, cy = SIZE / 2 + rng.uniform(-25, 25, 2)
    r = rng.uniform(0.28, 0.46) * SIZE
    face, ink = (int(rng.integers(200, 256)), int(rng.integers(0, 70)))
    if rng.random() < 0.25:
        face, ink = ink + 20, face  # a dark face with light marks
    bezel = int(rng.integers(2, 16))
    box = [cx - r, cy - r, cx + r, cy + r]
    if rng.random() < 0.7:
        draw.ellipse(box, fill=face, outline=int(rng.integers(0, 256)), width=bezel)
    else:
        draw.rounded_rectangle(box, radius=r * rng.uniform(0.1, 0.5), fill=face,
                               outline=int(rng.integers(0, 256)), width=bezel)
    numerals = rng.choice(["arabic", "roman", "quarters", "none"])
    font = ImageFont.load_default(size=int(r * rng.uniform(0.16, 0.26)))
    for k in range(12):
        turn = k / 12
        if numerals == "none" or (numerals == "quarters" and k % 3):
            draw.line([polar(cx, cy, 0.78 * r, turn), polar(cx, cy, 0.9 * r, turn)], fill=ink,
                      width=int(rng.integers(2, 6)) if k % 3 == 0 else 2)
            continue
        text = ROMAN[k] if numerals == "roman" else str(12 if k == 0 else k)
        draw.text(polar(cx, cy, 0.76 * r, turn), text, fill=ink, font=font, anchor="mm")
    for m in range(60) if rng.random() < 0.5 else ():
        draw.line([polar(cx, cy, 0.93 * r, m / 60), polar(cx, cy, 0.97 * r, m / 60)], fill=ink, width=1)
    style = rng.choice(["line", "taper", "leaf", "arrow"])
    hand_ink = ink if rng.random() < 0.8 else int(rng.integers(0, 256))
    if hard:  # hand shadows: the same hands, offset and softer, drawn first
        dx, dy = rng.uniform(3, 9, 2)
        shadow = int(face * 0.6)
        hand(draw, cx + dx, cy + dy, (hour % 12 + minute / 60) / 12, r * 0.5, r * 0.06, style, shadow)
        hand(draw, cx + dx, cy + dy, minute / 60, r * 0.8, r * 0.04, style, shadow)
        hand(draw, cx, cy, rng.random(), r * 0.35, r * 0.03, "arrow", int(rng.integers(80, 200)))  # alarm
    hand(draw, cx, cy, (hour % 12 + minute / 60) / 12, r * rng.uniform(0.45, 0.6), r * rng.uniform(0.04, 0.08),
         style, hand_ink)
    hand(draw, cx, cy, minute / 60, r * rng.uniform(0.72, 0.9), r * rng.uniform(0.025, 0.05), style, hand_ink)
    if rng.random() < 0.4:  # a second hand
        hand(draw, cx, cy, rng.random(), r * 0.88, 2, "line", int(rng.integers(60, 200)))
    draw.ellipse([cx - r * 0.05, cy - r * 0.05, cx + r * 0.05, cy + r * 0.05], fill=hand_ink)
    if hard:  # stray lines across everything (cables, frames, reflections)
        for _ in range(int(rng.integers(1, 4))):
            draw.line([tuple(rng.uniform(0, SIZE, 2)), tuple(rng.uniform(0, SIZE, 2))],
                      fill=int(rng.integers(0, 256)), width=int(rng.integers(1, 5)))
    img = img.rotate(rng.uniform(-20, 20), Image.Resampling.BICUBIC, center=(cx, cy), fillcolor=bg)
    img = perspective(img, rng, rng.uniform(0.05, 0.22) if hard else rng.uniform(0.0, 0.12))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2.0)))
    light = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), SIZE)[None, :]
    pixels = np.asarray(img, float) * light + rng.normal(0, rng.uniform(0, 12), (SIZE, SIZE))
    img = Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).resize((150, 150), Image.Resampling.LANCZOS)
    if rng.random() < 0.4:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=int(rng.integers(15, 60)))
        img = Image.open(buffer)
    return np.asarray(img.convert("L"), np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hard", action="store_true",
                        help="strong perspective, hand shadows, an alarm hand, stray lines")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    labels = np.stack([rng.integers(0, 12, args.n), rng.integers(0, 60, args.n)], 1)
    images = np.stack([draw_clock(rng, int(h), int(m), args.hard) for h, m in labels])
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "images.npy", images)
    np.save(args.out / "labels.npy", labels.astype(np.int64))
    print(f"wrote {args.n} clocks to {args.out}; score a reader with "
          f"zoo eval NAME --pretrained --data {args.out} --split all --json")
    print(f"clock_foreign clocks={args.n} hard={str(args.hard).lower()} seed={args.seed}")


if __name__ == "__main__":
    main()
