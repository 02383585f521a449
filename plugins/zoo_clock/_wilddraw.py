"""The drawing behind ``wild.render_wild`` (numpy + PIL; imported only when clocks are drawn).

The dial is drawn once, upright, in *canonical* space (the face is the unit circle centred at 0,
12 o'clock at (0, -1), y down) at about ``detail`` canvas pixels per output pixel, then placed in
the 150×150 frame with ONE perspective warp (PIL) over a procedural background; photometry is
vectorised numpy on the 150×150 result.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .render import _ARABIC, _DIGITS, _ROMAN, SIZE
from .wild import FACTORS, WildConfig, WildSample, enabled_factors

_ROW = {name: k for k, name in enumerate(FACTORS)}
_DEGRADATIONS = ("contrast", "blur", "lowres", "noise", "jpeg", "glare", "reflections")

# Extra stroke glyphs (box of height 1) for brand names and dial text: only the look of writing
# matters, so a handful of capitals is enough.
_LETTERS: dict[str, tuple[float, list[list[tuple[float, float]]]]] = {
    "A": (0.6, [[(0, 1), (0.3, 0), (0.6, 1)], [(0.12, 0.62), (0.48, 0.62)]]),
    "C": (0.55, [[(0.55, 0.1), (0.3, 0), (0.05, 0.2), (0, 0.5), (0.05, 0.8), (0.3, 1),
                  (0.55, 0.9)]]),
    "E": (0.5, [[(0.5, 0), (0, 0), (0, 1), (0.5, 1)], [(0, 0.5), (0.4, 0.5)]]),
    "H": (0.55, [[(0, 0), (0, 1)], [(0.55, 0), (0.55, 1)], [(0, 0.5), (0.55, 0.5)]]),
    "L": (0.45, [[(0, 0), (0, 1), (0.45, 1)]]),
    "M": (0.7, [[(0, 1), (0, 0), (0.35, 0.6), (0.7, 0), (0.7, 1)]]),
    "N": (0.55, [[(0, 1), (0, 0), (0.55, 1), (0.55, 0)]]),
    "O": (0.6, [[(0.3, 0), (0.6, 0.25), (0.6, 0.75), (0.3, 1), (0, 0.75), (0, 0.25), (0.3, 0)]]),
    "R": (0.55, [[(0, 1), (0, 0), (0.45, 0), (0.55, 0.25), (0.45, 0.5), (0, 0.5)],
                 [(0.25, 0.5), (0.55, 1)]]),
    "S": (0.55, [[(0.55, 0.1), (0.3, 0), (0.02, 0.15), (0.1, 0.42), (0.45, 0.58), (0.55, 0.85),
                  (0.25, 1), (0, 0.9)]]),
    "T": (0.6, [[(0, 0), (0.6, 0)], [(0.3, 0), (0.3, 1)]]),
    "U": (0.55, [[(0, 0), (0, 0.8), (0.25, 1), (0.55, 0.8), (0.55, 0)]]),
    "W": (0.8, [[(0, 0), (0.2, 1), (0.4, 0.3), (0.6, 1), (0.8, 0)]]),
}
_GLYPHS = {**_DIGITS, **_LETTERS}
_WORD_CHARS = "ACEHLMNORSTUW"


# --- small helpers ---------------------------------------------------------------------------

def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through the homography ``h``."""
    p = pts @ h[:, :2].T + h[:, 2]
    return p[:, :2] / p[:, 2:3]


def _fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3×3 homography mapping the four points ``src`` to ``dst``."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)


def _convex(q: np.ndarray) -> bool:
    d = np.roll(q, -1, 0) - q
    cross = d[:, 0] * np.roll(d, -1, 0)[:, 1] - d[:, 1] * np.roll(d, -1, 0)[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


class _Factors:
    """Per-sample random numbers, one independent slice per factor."""

    def __init__(self, rng: np.random.Generator, on: frozenset[str], config: WildConfig) -> None:
        self.u = rng.random((len(FACTORS), 16))
        self.config = config
        drawn = {n for n in on if self.u[_ROW[n], 0] < getattr(config, f"{n}_p")}
        # a photo is rarely blurred AND noisy AND low-res AND washed out AND glared: keep the
        # `max_degradations` most likely of those that were drawn, so the time stays readable
        heavy = sorted((n for n in _DEGRADATIONS if n in drawn),
                       key=lambda n: self.u[_ROW[n], 0] / getattr(config, f"{n}_p"))
        self.on = drawn - set(heavy[config.max_degradations:])
        self._rngs: dict[str, np.random.Generator] = {}

    def active(self, name: str) -> bool:
        """Enabled in ``factors`` and drawn for this sample (with probability ``<name>_p``)."""
        return name in self.on

    def row(self, name: str) -> np.ndarray:
        return self.u[_ROW[name], 1:]

    def rng(self, name: str) -> np.random.Generator:
        """The factor's own generator (made once per sample, shared by its drawing steps)."""
        if name not in self._rngs:
            # seeded from this factor's row: 3× cheaper than default_rng([...]), same everywhere
            seed = int(self.u[_ROW[name], 15] * 2**53)
            self._rngs[name] = np.random.Generator(np.random.PCG64(seed))
        return self._rngs[name]


# --- geometry --------------------------------------------------------------------------------

def _geometry(f: _Factors, extent: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Canonical → output-pixel homography (``extent``: the clock's outer radius, face = 1) and
    the pixel offset at which the back of the case shows behind a tilted face ((0, 0): none)."""
    c = f.config
    frac = 0.85
    if f.active("scale"):
        lo, hi = sorted((c.scale_min, c.scale_max))
        frac = lo + (hi - lo) * f.row("scale")[0] ** 0.8
    r = frac * SIZE / 2 / extent  # pixels per canonical unit

    a = 0.0
    if f.active("rotation"):
        a = math.radians((2 * f.row("rotation")[0] - 1) * c.rotation)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])

    tilt = np.eye(3)
    jitter = np.zeros((4, 2))
    depth = (0.0, 0.0)
    if f.active("tilt"):
        t = f.row("tilt")
        tau = math.radians(c.tilt) * t[0] ** 0.7
        axis = 2 * math.pi * t[1]
        dist = 2.5 + 6 * t[2]  # camera distance in dial radii: small = strong convergence
        ax, ay = math.cos(axis), math.sin(axis)
        ct, st = math.cos(tau), math.sin(tau)
        # Rodrigues rotation about the in-plane axis (ax, ay, 0); the plane z=0 sits at z=dist.
        r3 = np.array([[ct + ax * ax * (1 - ct), ax * ay * (1 - ct), ay * st],
                       [ax * ay * (1 - ct), ct + ay * ay * (1 - ct), -ax * st],
                       [-ay * st, ax * st, ct]])
        tilt = np.diag([dist, dist, 1.0]) @ np.column_stack([r3[:, 0], r3[:, 1], [0, 0, dist]])
        tilt = tilt / tilt[2, 2]
        jitter = (t[3:11].reshape(4, 2) * 2 - 1) * c.jitter * (t[11] ** 0.5)
        if t[12] < 0.6:  # a case with depth: its side shows behind the tilted face
            d = r * (0.06 + 0.2 * t[13])
            depth = (-r3[0, 2] * d, -r3[1, 2] * d)
    h = np.diag([r, r, 1.0]) @ tilt @ rot
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    if jitter.any():
        for shrink in (1.0, 0.5, 0.0):
            dst = _apply(h, square) + jitter * r * shrink
            if _convex(dst):
                h = _fit_homography(square, dst)
                break
    # where the centre goes: the middle, or anywhere the clock fits (up to `crop` outside)
    reach = extent * r
    cx = cy = SIZE / 2
    if f.active("crop"):
        t = f.row("crop")
        out = c.crop * t[2] if t[3] < 0.5 else 0.0
        margin = max(reach - out * r, 0.65 * r)
        lo, hi = min(margin, SIZE / 2), max(SIZE - margin, SIZE / 2)
        cx, cy = lo + (hi - lo) * t[0], lo + (hi - lo) * t[1]
    centre = _apply(h, np.zeros((1, 2)))[0]
    h = np.array([[1, 0, cx - centre[0]], [0, 1, cy - centre[1]], [0, 0, 1]]) @ h
    return h / h[2, 2], depth


# --- the dial, drawn upright in canonical space ------------------------------------------------

@dataclass
class _Style:
    face: int = 238
    ink: int = 22
    hand_ink: int = 22
    shape: str = "round"  # round, square, rounded, octagon, ornate
    bezel: float = 0.0  # width outside the face, canonical units
    bezel_ink: int = 60
    border: float = 0.03
    case_rings: int = 0
    highlight: bool = False
    mount: str = "none"  # none, bells (a twin-bell alarm clock), strap (a wristwatch)
    mount_ink: int = 60

    def extent(self) -> float:
        """Half-size of a square around the whole clock (face = 1)."""
        return (1 + self.bezel) * {"none": 1.06, "bells": 1.5, "strap": 1.8}[self.mount]


class _Canvas:
    """A PIL canvas with canonical coordinates (face = unit circle) and a silhouette mask."""

    def __init__(self, scale: float, extent: float, style: _Style) -> None:
        half = math.ceil(scale * extent) + 2
        self.size = 2 * half
        self.scale, self.c0 = scale, float(half)
        # 0 outside the silhouette: the pair is warped as premultiplied "La" (see render)
        self.img = Image.new("L", (self.size, self.size), 0)
        self.mask = Image.new("L", (self.size, self.size), 0)
        self.draw = ImageDraw.Draw(self.img)
        self.mask_draw = ImageDraw.Draw(self.mask)

    def p(self, u: float, v: float) -> tuple[float, float]:
        """Canonical → PIL draw coordinates (pixel centres at integers)."""
        return self.c0 + self.scale * u - 0.5, self.c0 + self.scale * v - 0.5

    def w(self, width: float) -> int:
        return max(1, round(width * self.scale))

    def circle(self, u: float, v: float, rad: float, fill: int | None = None,
               outline: int | None = None, width: float = 0.0) -> None:
        x, y = self.p(u, v)
        rr = rad * self.scale
        self.draw.ellipse([x - rr, y - rr, x + rr, y + rr], fill=fill, outline=outline,
                          width=self.w(width) if outline is not None else 0)

    def poly(self, pts: list[tuple[float, float]], fill: int | None = None,
             outline: int | None = None, width: float = 0.0) -> None:
        xy = [self.p(u, v) for u, v in pts]
        if fill is not None:
            self.draw.polygon(xy, fill=fill)
        if outline is not None:
            self.draw.line(xy + [xy[0]], fill=outline, width=self.w(width), joint="curve")

    def line(self, pts: list[tuple[float, float]], ink: int, width: float) -> None:
        k, c = self.scale, self.c0 - 0.5
        xy = [(c + k * u, c + k * v) for u, v in pts]
        px = max(1, round(width * k))
        if len(pts) == 2 or px <= 4:  # no joints to round: PIL's core call, without its wrapper
            self.draw.draw.draw_lines(xy, ink, px)
        else:
            self.draw.line(xy, fill=ink, width=px, joint="curve")

    def text(self, text: str, u: float, v: float, height: float, width: float, ink: int,
             angle: float = 0.0, shear: float = 0.0) -> None:
        """Stroke-font ``text`` centred at (u, v), rotated by ``angle`` (radians, clockwise)."""
        gap = 0.12
        total = sum(_GLYPHS[ch][0] for ch in text) + gap * (len(text) - 1)
        ca, sa = math.cos(angle), math.sin(angle)
        x0 = -total / 2
        for ch in text:
            adv, strokes = _GLYPHS[ch]
            for stroke in strokes:
                pts = []
                for gx, gy in stroke:
                    lx, ly = (x0 + gx - shear * (gy - 0.5)) * height, (gy - 0.5) * height
                    pts.append((u + lx * ca - ly * sa, v + lx * sa + ly * ca))
                self.line(pts, ink, width)
            x0 += adv + gap


@lru_cache(maxsize=256)
def _outline(shape: str, rad: float, n_ornate: int = 24) -> list[tuple[float, float]] | None:
    """Polygon of a non-round dial shape of half-size ``rad`` (None: draw a circle)."""
    if shape == "octagon":
        k = rad / math.cos(math.pi / 8)
        return [(k * math.sin(math.pi / 8 + i * math.pi / 4), -k * math.cos(math.pi / 8 + i *
                 math.pi / 4)) for i in range(8)]
    if shape == "ornate":
        pts = []
        for i in range(n_ornate * 4):
            a = 2 * math.pi * i / (n_ornate * 4)
            rr = rad * (1 + 0.05 * abs(math.sin(a * n_ornate / 2)))
            pts.append((rr * math.sin(a), -rr * math.cos(a)))
        return pts
    return None


def _shape(cv: _Canvas, shape: str, rad: float, fill: int, mask: bool = False,
           dx: float = 0.0, dy: float = 0.0) -> None:
    """Fill the dial ``shape`` of half-size ``rad`` (and, for the silhouette, the mask)."""
    targets = [(cv.draw, fill)] + ([(cv.mask_draw, 255)] if mask else [])
    x0, y0 = cv.p(dx - rad, dy - rad)
    x1, y1 = cv.p(dx + rad, dy + rad)
    pts = _outline(shape, rad)
    for draw, ink in targets:
        if shape == "square":
            draw.rectangle([x0, y0, x1, y1], fill=ink)
        elif shape == "rounded":
            draw.rounded_rectangle([x0, y0, x1, y1], radius=rad * cv.scale * 0.35, fill=ink)
        elif pts is not None:
            draw.polygon([cv.p(u + dx, v + dy) for u, v in pts], fill=ink)
        else:
            draw.ellipse([x0, y0, x1, y1], fill=ink)


def _style(f: _Factors) -> _Style:
    """Shades and case: plain by default; varied by dial / contrast / invert."""
    s = _Style()
    g = f.rng("dial") if f.active("dial") else None
    if g is not None:
        s.face = int(g.integers(175, 256))
        s.ink = int(g.integers(0, 70))
        s.hand_ink = s.ink if g.random() < 0.6 else int(g.integers(0, 60))
        s.shape = str(g.choice(["round", "square", "rounded", "octagon", "ornate"],
                               p=[0.58, 0.1, 0.14, 0.08, 0.1]))
        s.bezel = float(g.choice([0.0, g.uniform(0.03, 0.1), g.uniform(0.1, 0.25)],
                                 p=[0.3, 0.4, 0.3]))
        s.bezel_ink = int(g.integers(0, 256))
        s.border = float(g.choice([0.0, g.uniform(0.01, 0.03), g.uniform(0.03, 0.08)]))
        s.case_rings = int(g.integers(0, 4)) if s.bezel > 0.05 else 0
        s.highlight = bool(g.random() < 0.4) and s.bezel > 0.05
        s.mount = str(g.choice(["none", "bells", "strap"], p=[0.8, 0.1, 0.1]))
        s.mount_ink = int(g.integers(0, 256))
    if f.active("invert"):
        s.face, s.ink = 255 - s.face, 255 - s.ink
        s.hand_ink = 255 - s.hand_ink
    if f.active("contrast"):
        # a coloured dial turned grey: face and ink end up close (but not equal) in level
        t = f.row("contrast")
        gap = 50 + 70 * t[0]
        mid = 60 + 135 * t[1]
        sign = 1 if s.face > s.ink else -1
        s.face = int(np.clip(mid + sign * gap / 2, 0, 255))
        s.ink = s.hand_ink = int(np.clip(mid - sign * gap / 2, 0, 255))
    return s


def _mount(cv: _Canvas, s: _Style, outer: float) -> None:
    """What holds the clock, drawn behind the case (and into the silhouette): two bells, a
    hammer and feet, or a watch strap with lugs."""
    ink = s.mount_ink
    targets = ((cv.draw, ink), (cv.mask_draw, 255))
    if s.mount == "bells":
        for side in (-1, 1):
            a = side * math.radians(38)
            u, v = math.sin(a) * (outer + 0.1), -math.cos(a) * (outer + 0.1)
            for draw, col in targets:
                x0, y0 = cv.p(u - 0.3, v - 0.26)
                x1, y1 = cv.p(u + 0.3, v + 0.26)
                draw.ellipse([x0, y0, x1, y1], fill=col)
            a = side * math.radians(145)
            foot = [(math.sin(a) * outer * 0.9, -math.cos(a) * outer * 0.9),
                    (math.sin(a) * (outer + 0.3), -math.cos(a) * (outer + 0.3))]
            for draw, col in targets:
                draw.line([cv.p(*q) for q in foot], fill=col, width=cv.w(0.1))
        for draw, col in targets:  # the hammer between the bells
            draw.line([cv.p(0, -outer * 0.95), cv.p(0, -outer - 0.3)], fill=col, width=cv.w(0.06))
    else:
        half = outer * 0.62
        for sign in (-1, 1):
            strap = [(-half, sign * outer * 0.7), (half, sign * outer * 0.7),
                     (half * 0.92, sign * s.extent()), (-half * 0.92, sign * s.extent())]
            for draw, col in targets:
                draw.polygon([cv.p(u, v) for u, v in strap], fill=col)
            for k in range(1, 4):  # stitching / links across the strap
                v = sign * (outer + 0.18 * k)
                cv.line([(-half * 0.85, v), (half * 0.85, v)], max(0, ink - 40) if ink > 128
                        else ink + 40, 0.015)


def _draw_dial(cv: _Canvas, f: _Factors, s: _Style) -> float:
    """Case, face, ticks, numerals and face marks; returns the radius free for the hands."""
    g = f.rng("dial") if f.active("dial") else None
    outer = 1 + s.bezel
    if s.mount != "none":
        _mount(cv, s, outer)
    _shape(cv, s.shape, outer, s.bezel_ink, mask=True)
    if s.bezel > 0:
        for k in range(s.case_rings):  # metallic turned rings
            rad = outer - s.bezel * (k + 1) / (s.case_rings + 1)
            shade = int(np.clip(s.bezel_ink + (40 if k % 2 == 0 else -40), 0, 255))
            cv.circle(0, 0, rad, outline=shade, width=0.012)
        if s.highlight:  # a bright arc on the case, where the light comes from
            x0, y0 = cv.p(-outer + s.bezel / 2, -outer + s.bezel / 2)
            x1, y1 = cv.p(outer - s.bezel / 2, outer - s.bezel / 2)
            start = float(g.uniform(180, 300)) if g is not None else 200.0
            cv.draw.arc([x0, y0, x1, y1], start, start + 50, fill=250,
                        width=cv.w(s.bezel * 0.4))
    if s.border > 0:
        _shape(cv, s.shape, 1 + min(s.border, s.bezel + s.border) * 0.999, s.ink)
    _shape(cv, s.shape, 1.0, s.face)
    if f.active("shadows") and s.bezel > 0.02:
        # the case shades a crescent of the face on the side away from the light
        t = f.row("shadows")
        d = 0.04 + 0.06 * t[4]
        a = 2 * math.pi * t[5]
        shade = int(s.face * (1 - 0.35 * f.config.shadows))
        _shape(cv, s.shape, 1.0, shade)
        _shape(cv, s.shape, 1.0 - d * 0.5, s.face, dx=math.cos(a) * d, dy=math.sin(a) * d)

    # ticks: 0 none, 1 twelve lines, 2 sixty lines, 3 dots, 4 bars, 5 railway minute track
    ticks, tick_len, tick_w = 1, 0.1, 0.035
    numerals = _numeral_style(f)
    if g is not None:
        ticks = int(g.choice(6, p=[0.15, 0.25, 0.25, 0.12, 0.13, 0.1]))
        tick_len = float(g.uniform(0.06, 0.16))
        tick_w = float(g.uniform(0.015, 0.05))
        if ticks == 0 and numerals.labels is None:  # a blank dial is not readable
            ticks = 1
    r0 = 0.95 if s.shape == "round" or s.border > 0 else 0.93
    if ticks == 5:
        cv.circle(0, 0, r0, outline=s.ink, width=0.012)
        cv.circle(0, 0, r0 - tick_len * 0.6, outline=s.ink, width=0.012)
    for k in range(60 if ticks in (2, 5) else 12):
        a = 2 * math.pi * k / (60 if ticks in (2, 5) else 12)
        sa, ca = math.sin(a), -math.cos(a)
        major = ticks not in (2, 5) or k % 5 == 0
        if ticks in (1, 2, 5):
            ln = tick_len if major else tick_len * 0.45
            if ticks == 5 and not major:
                ln = tick_len * 0.6
            wd = tick_w if major else tick_w * 0.45
            cv.line([(sa * r0, ca * r0), (sa * (r0 - ln), ca * (r0 - ln))], s.ink, wd)
        elif ticks == 3:
            rad = tick_w * (1.4 if k % 3 == 0 else 1.0)
            cv.circle(sa * (r0 - rad), ca * (r0 - rad), rad, fill=s.ink)
        elif ticks == 4:
            hw = tick_w * (1.2 if k % 3 == 0 else 0.8)
            px, py = -ca, sa
            a0, a1 = r0, r0 - tick_len * 1.3
            cv.poly([(sa * a0 + px * hw, ca * a0 + py * hw), (sa * a1 + px * hw, ca * a1 + py * hw),
                     (sa * a1 - px * hw, ca * a1 - py * hw),
                     (sa * a0 - px * hw, ca * a0 - py * hw)],
                    fill=s.ink)
    inner = r0 - (tick_len * (1.3 if ticks == 4 else 1.0) if ticks else 0.0)
    numeral_r = _draw_numerals(cv, numerals, s, inner)

    if g is not None:  # face marks: brand text, sub-dials, a date window
        if g.random() < 0.45:
            word = "".join(g.choice(list(_WORD_CHARS), int(g.integers(3, 8))))
            ht = float(g.uniform(0.06, 0.11))
            cv.text(word, 0, float(g.choice([-0.38, 0.36])), ht, ht * 0.14, s.ink)
            if g.random() < 0.4:
                word2 = "".join(g.choice(list(_WORD_CHARS), int(g.integers(4, 10))))
                cv.text(word2, 0, 0.5, ht * 0.6, ht * 0.1, s.ink)
        if g.random() < 0.15:
            for pos in g.choice([(0.0, 0.45), (-0.45, 0.0), (0.45, 0.0)], int(g.integers(1, 3)),
                                replace=False):
                u, v = float(pos[0]), float(pos[1])
                cv.circle(u, v, 0.2, outline=s.ink, width=0.012)
                for k in range(12):
                    a = 2 * math.pi * k / 12
                    cv.line([(u + 0.2 * math.sin(a), v - 0.2 * math.cos(a)),
                             (u + 0.16 * math.sin(a), v - 0.16 * math.cos(a))], s.ink, 0.01)
                b = float(g.uniform(0, 2 * math.pi))
                cv.line([(u, v), (u + 0.15 * math.sin(b), v - 0.15 * math.cos(b))], s.ink, 0.02)
        if g.random() < 0.15:
            u = min(0.62, numeral_r - 0.2)
            cv.poly([(u - 0.09, -0.06), (u + 0.09, -0.06), (u + 0.09, 0.06), (u - 0.09, 0.06)],
                    fill=255 - s.ink if abs(s.face - s.ink) > 60 else s.face, outline=s.ink,
                    width=0.012)
            cv.text(str(int(g.integers(10, 32))), u, 0, 0.08, 0.014, s.ink)
    return inner


@dataclass
class _Numerals:
    labels: list[str] | None = None  # None: no numerals
    step: int = 1  # 3: only 12, 3, 6, 9
    height: float = 0.18
    width: float = 0.035
    radial: bool = False  # glyph tops point outward instead of up
    outlined: bool = False
    shear: float = 0.0  # italic
    typeface: bool = False  # filled, antialiased glyphs of the font embedded in Pillow
    bold: int = 0  # typeface only: extra stroke width, pixels


def _numeral_style(f: _Factors) -> _Numerals:
    n = _Numerals(labels=list(_ARABIC))
    if f.active("numerals"):
        g = f.rng("numerals")
        kind = str(g.choice(["none", "arabic", "roman"], p=[0.22, 0.48, 0.3]))
        n.step = 3 if g.random() < 0.25 else 1
        n.height = float(g.uniform(0.12, 0.3 if n.step == 3 else 0.24))
        n.width = n.height * float(g.uniform(0.1, 0.28))
        n.radial = bool(g.random() < 0.2)
        n.outlined = bool(g.random() < 0.15)
        n.shear = float(g.choice([0.0, 0.2])) if g.random() < 0.3 else 0.0
        n.labels = None if kind == "none" else list(_ROMAN if kind == "roman" else _ARABIC)
        if kind == "roman" and g.random() < 0.4:
            n.labels[4] = "IV"
        n.typeface = bool(g.random() < 0.4)
        n.bold = int(g.choice([0, 0, 1, 2]))
    return n


def _draw_numerals(cv: _Canvas, n: _Numerals, s: _Style, inner: float) -> float:
    """Numerals inside the ticks; returns the radius they sit at (1.0 when there are none)."""
    if n.labels is None:
        return 1.0
    height, width, step, shear, labels = n.height, n.width, n.step, n.shear, n.labels
    outlined = n.outlined and width * cv.scale > 2.5
    nr = inner - height * 0.75
    px = round(height * cv.scale / 0.72)  # the font's digits are ~0.72 em tall
    for k in range(0, 12, step):
        a = 2 * math.pi * k / 12
        u, v = math.sin(a) * nr, -math.cos(a) * nr
        text = labels[k]
        rot = a if n.radial else 0.0
        if n.typeface and px >= 5 and not n.radial:  # typeface numerals stand upright
            glyph = _typeface_glyph(text, px, min(n.bold, px // 8))
            x, y = cv.p(u, v)
            cv.img.paste(s.ink, (round(x - glyph.width / 2), round(y - glyph.height / 2)), glyph)
        elif outlined:
            cv.text(text, u, v, height, width, s.ink, rot, shear)
            cv.text(text, u, v, height, width * 0.4, s.face, rot, shear)
        else:
            cv.text(text, u, v, height, width, s.ink, rot, shear)
    return nr


@lru_cache(maxsize=4096)  # 24 labels × ~40 sizes × 3 weights fit: each is made once
def _typeface_glyph(text: str, px: int, bold: int) -> Image.Image:
    """``text`` in Pillow's embedded font (no system fonts) as a mask."""
    font = ImageFont.load_default(size=px)
    left, top, right, bottom = font.getbbox(text, stroke_width=bold)
    im = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(im).text((1 - left, 1 - top), text, fill=255, font=font, stroke_width=bold,
                            stroke_fill=255)
    return im


# --- hands ---------------------------------------------------------------------------------------

_HAND_SHAPES = ("bar", "tapered", "sword", "dauphine", "arrow", "spade", "baroque", "breguet",
                "skeleton", "luminous")


def _hand(cv: _Canvas, angle: float, length: float, half: float, tail: float, shape: str,
          ink: int, face: int, weight: float = 0.0, dx: float = 0.0, dy: float = 0.0) -> None:
    """One hand pointing at ``angle`` (radians clockwise from 12), drawn with ``ink``."""
    du, dv = math.sin(angle), -math.cos(angle)
    pu, pv = -dv, du

    def at(t: float, n: float) -> tuple[float, float]:
        return dx + t * du + n * pu, dy + t * dv + n * pv

    def poly(pts: list[tuple[float, float]], **kw: Any) -> None:
        cv.poly([at(t, n) for t, n in pts], **kw)

    lw = max(half * 0.5, 0.012)
    if shape == "bar":
        poly([(-tail, -half), (length, -half), (length, half), (-tail, half)], fill=ink)
    elif shape == "tapered":
        poly([(-tail, -half), (length * 0.97, -half * 0.25), (length, 0),
              (length * 0.97, half * 0.25), (-tail, half)], fill=ink)
    elif shape in ("sword", "skeleton", "luminous"):
        pts = [(-tail, -half * 0.6), (length * 0.25, -half * 1.3), (length, 0),
               (length * 0.25, half * 1.3), (-tail, half * 0.6)]
        if shape == "sword":
            poly(pts, fill=ink)
        else:
            lume = face if shape == "skeleton" else (235 if face < 128 else min(255, face + 15))
            poly(pts, fill=ink)
            inner = [(length * 0.12, -half * 0.55), (length * 0.27, -half * 0.75),
                     (length * 0.85, 0), (length * 0.27, half * 0.75), (length * 0.12, half * 0.55)]
            poly(inner, fill=lume)
    elif shape == "dauphine":
        poly([(-tail, -half * 0.5), (0, -half * 1.2), (length, 0), (0, half * 1.2),
              (-tail, half * 0.5)], fill=ink)
    elif shape == "arrow":
        shaft = half * 0.55
        poly([(-tail, -shaft), (length * 0.75, -shaft), (length * 0.75, shaft), (-tail, shaft)],
             fill=ink)
        poly([(length * 0.68, -half * 2), (length, 0), (length * 0.68, half * 2)], fill=ink)
    elif shape in ("spade", "baroque"):
        shaft = half * 0.55
        poly([(-tail, -shaft), (length * 0.9, -shaft * 0.6), (length * 0.9, shaft * 0.6),
              (-tail, shaft)], fill=ink)
        if shape == "spade":
            poly([(length * 0.55, 0), (length * 0.66, -half * 2.2), (length * 0.8, -half * 1.1),
                  (length, 0), (length * 0.8, half * 1.1), (length * 0.66, half * 2.2)], fill=ink)
        else:
            cu, cvv = at(length * 0.6, 0)
            cv.circle(cu, cvv, half * 1.8, outline=ink, width=lw)
            poly([(length * 0.72, 0), (length * 0.8, -half * 1.4), (length, 0),
                  (length * 0.8, half * 1.4)], fill=ink)
            cu, cvv = at(length * 0.3, 0)
            cv.circle(cu, cvv, half * 1.1, fill=ink)
    elif shape == "breguet":
        cv.line([at(-tail, 0), at(length, 0)], ink, half * 1.2)
        cu, cvv = at(length * 0.74, 0)
        cv.circle(cu, cvv, half * 2.0, outline=ink, width=half * 0.9)
    if weight > 0:  # a counterweight on the tail
        cu, cvv = at(-tail, 0)
        cv.circle(cu, cvv, weight, fill=ink)


def _draw_hands(cv: _Canvas, f: _Factors, s: _Style, free: float, hour: int, minute: int) -> None:
    """Hour under minute (which hides it where they cross), then second/alarm hands and a cap."""
    ha = 2 * math.pi * (hour * 60 + minute) / 720
    ma = 2 * math.pi * minute / 60
    shape = "bar"
    hour_len, min_len = 0.5 * free, 0.85 * free
    hour_w, min_w, tail, weight, cap = 0.045, 0.03, 0.08, 0.0, 0.055
    ink = s.hand_ink
    if f.active("hands"):
        g = f.rng("hands")
        shape = str(g.choice(_HAND_SHAPES))
        min_len = free * float(g.uniform(0.72, 0.97))
        if g.random() < 0.15:  # hands of similar length: the hour hand is the thicker one
            hour_len = min_len * float(g.uniform(0.82, 0.95))
            hour_w = float(g.uniform(0.035, 0.07))
            min_w = hour_w * float(g.uniform(0.45, 0.7))
        else:
            hour_len = min_len * float(g.uniform(0.5, 0.75))
            hour_w = float(g.uniform(0.02, 0.07))
            min_w = hour_w * float(g.uniform(0.55, 1.0))
        tail = float(g.choice([0.0, g.uniform(0.05, 0.25)]))
        weight = float(g.uniform(0.04, 0.08)) if tail > 0.1 and g.random() < 0.3 else 0.0
        cap = float(g.uniform(0.0, 0.1))
    extra = []  # (angle, length, half-width, tail, shape, ink, weight)
    if f.active("second"):
        g = f.rng("second")
        face_far = 255 if s.face < 128 else 0
        sec_ink = int(g.choice([ink, int(g.integers(40, 160)), face_far]))
        if g.random() < 0.3:  # an alarm hand: short, thin, arrow-tipped, its own shade
            extra.append((float(g.uniform(0, 2 * math.pi)), hour_len * float(g.uniform(0.7, 1.0)),
                          min(0.014, hour_w * 0.4), 0.0, "arrow", int(g.integers(40, 200)), 0.0))
        if g.random() < 0.85:
            extra.append((float(g.uniform(0, 2 * math.pi)), free * float(g.uniform(0.85, 1.0)),
                          float(g.uniform(0.006, 0.014)), float(g.uniform(0.1, 0.3)), "bar",
                          sec_ink, float(g.choice([0.0, 0.035]))))
    hands = [(ha, hour_len, hour_w, tail * 0.7, shape, ink, weight * 0.8),
             (ma, min_len, min_w, tail, shape, ink, weight)]
    # alarm below the time hands, second hand above them
    order = [e for e in extra if e[4] == "arrow"] + hands + [e for e in extra if e[4] == "bar"]
    if f.active("shadows"):
        t = f.row("shadows")
        a = 2 * math.pi * t[6]
        d = 0.02 + 0.04 * t[7]
        shade = int(s.face * (1 - 0.45 * f.config.shadows)) if s.face > 90 else max(0, s.face - 25)
        for (an, ln, hw, tl, sh, _, wt) in order:
            _hand(cv, an, ln, hw, tl, sh, shade, shade, wt, math.cos(a) * d, math.sin(a) * d)
    for (an, ln, hw, tl, sh, col, wt) in order:
        _hand(cv, an, ln, hw, tl, sh, col, s.face, wt)
    if cap > 0.02:
        cv.circle(0, 0, cap, fill=ink)


# --- background, clutter, occluders (output space) --------------------------------------------

_X = np.arange(SIZE, dtype=np.float32) + 0.5  # pixel centres; fields built as outer sums
_LEVELS = np.arange(256, dtype=np.float32)
# Sensor noise comes from one fixed bank of N(0, 1) draws (the same on every machine), read at a
# random offset and orientation: drawing 22,500 normals per clock cost more than the rest of the
# photometry together.
_NOISE = np.random.default_rng(20240).standard_normal((4 * SIZE, 4 * SIZE), dtype=np.float32)


def _noise_patch(a: float, b: float, c: float) -> np.ndarray:
    x, y = int(a * 3 * SIZE), int(b * 3 * SIZE)
    patch = _NOISE[y:y + SIZE, x:x + SIZE]
    return patch.T if c < 0.5 else patch
_HALF = SIZE // 2
_X2 = (np.arange(_HALF, dtype=np.float32) + 0.5) * 2  # backgrounds: half resolution, upsampled
_YY2, _XX2 = _X2[:, None] + 0 * _X2[None, :], _X2[None, :] + 0 * _X2[:, None]


def _value_noise(g: np.random.Generator, cells: int) -> np.ndarray:
    small = Image.fromarray(g.random((cells, cells), dtype=np.float32), mode="F")
    return np.asarray(small.resize((_HALF, _HALF), Image.Resampling.BICUBIC), dtype=np.float32)


def _background(f: _Factors) -> np.ndarray:
    """A wall, a shelf, wood, wallpaper, a gradient, or plain grey."""
    if not f.active("background"):
        return np.full((SIZE, SIZE), 90 + 100 * f.row("background")[0], np.float32)
    g = f.rng("background")
    kind = int(g.choice(7))
    base = float(g.uniform(20, 235))
    amp = float(g.uniform(10, 70))
    a = float(g.uniform(0, math.pi))
    along = (_X2 * math.cos(a))[None, :] + (_X2 * math.sin(a))[:, None]
    if kind == 0:  # gradient
        bg = base + amp * (along / SIZE - 0.5) * 2
    elif kind == 1:  # noise field (plaster, foliage, carpet)
        bg = base + amp * (_value_noise(g, int(g.integers(3, 12))) - 0.5) * 2
        bg += amp * 0.5 * (_value_noise(g, int(g.integers(20, 50))) - 0.5)
    elif kind == 2:  # stripes (wallpaper, blinds)
        period = float(g.uniform(6, 40))
        wave = np.sin(2 * np.pi * along / period)
        bg = base + amp * (np.sign(wave) if g.random() < 0.5 else wave)
    elif kind == 3:  # wood grain
        across = (-_X2 * math.sin(a))[None, :] + (_X2 * math.cos(a))[:, None]
        warp = _value_noise(g, 4) * float(g.uniform(10, 40))
        bg = base + amp * np.sin(2 * np.pi * (across + warp) / float(g.uniform(4, 14))) ** 2
        bg += amp * 0.3 * (_value_noise(g, 30) - 0.5)
    elif kind == 4:  # bricks or tiles
        hgt = float(g.uniform(8, 30))
        wid = hgt * float(g.uniform(1.0, 3.0))
        row = np.floor(_YY2 / hgt)
        xs = _XX2 + (row % 2) * wid / 2 * (g.random() < 0.7)
        col = np.floor(xs / wid)
        shade = g.random((64, 64)).astype(np.float32)[row.astype(int) % 64, col.astype(int) % 64]
        mortar = ((_YY2 % hgt) < 2.5) | ((xs % wid) < 2.5)
        bg = np.where(mortar, base + amp, base + (shade - 0.5) * amp * 0.6)
    elif kind == 5:  # dotted / checked wallpaper
        period = float(g.uniform(8, 24))
        if g.random() < 0.5:
            bg = base + amp * (((_XX2 // period) + (_YY2 // period)) % 2)
        else:
            d2 = ((_XX2 % period) - period / 2) ** 2 + ((_YY2 % period) - period / 2) ** 2
            bg = base + amp * (d2 < (period * 0.2) ** 2)
    else:
        return np.full((SIZE, SIZE), base, np.float32)
    half = Image.fromarray(bg.astype(np.float32), mode="F")
    return np.asarray(half.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float32)


def _clutter(f: _Factors, bg: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Distractors behind the clock (frames, rings, lines, digits) and a few stray lines over it."""
    if not f.active("clutter"):
        return bg, []
    g = f.rng("clutter")
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(g.integers(1, f.config.clutter + 1))):
        kind = int(g.choice(5))
        x0, y0, x1, y1 = (g.random(4) * SIZE * 1.2 - SIZE * 0.1).tolist()
        box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        ink = int(g.integers(0, 256))
        wd = int(g.integers(1, 6))
        if kind == 0:
            draw.rectangle(box, outline=ink, width=wd, fill=ink if g.random() < 0.4 else None)
        elif kind == 1:
            draw.ellipse(box, outline=ink, width=wd, fill=ink if g.random() < 0.3 else None)
        elif kind == 2:
            draw.line([(x0, y0), (x1, y1)], fill=ink, width=wd)
        elif kind == 3:
            pts = [tuple(p) for p in (g.random((int(g.integers(3, 6)), 2)) * SIZE).tolist()]
            draw.polygon(pts, fill=ink)
        else:
            cv = _TextOnImage(draw)
            word = "".join(g.choice(list("0123456789" + _WORD_CHARS), int(g.integers(1, 5))))
            cv.text(word, x0, y0, float(g.uniform(8, 25)), wd, ink)
    stray = []
    if g.random() < 0.3:  # stray lines over the clock (cables, frame edges, scratches)
        for _ in range(int(g.integers(1, 3))):
            stray.append((*(g.random(4) * SIZE).tolist(), int(g.integers(0, 256))))
    return np.asarray(img, dtype=np.float32), stray


class _TextOnImage:
    """Stroke-font text straight onto an output-space image (for clutter)."""

    def __init__(self, draw: ImageDraw.ImageDraw) -> None:
        self.draw = draw

    def text(self, text: str, x: float, y: float, height: float, width: int, ink: int) -> None:
        for ch in text:
            adv, strokes = _GLYPHS[ch]
            for stroke in strokes:
                self.draw.line([(x + gx * height, y + gy * height) for gx, gy in stroke],
                               fill=ink, width=width)
            x += (adv + 0.12) * height


def _occluder(f: _Factors, h: np.ndarray, hand_angles: tuple[float, float],
              out: Image.Image) -> None:
    """A blob or rod over part of the dial, kept away from both hands and the centre."""
    g = f.rng("occluders")
    far = [a for a in np.linspace(0, 2 * math.pi, 36, endpoint=False)
           if all(abs((a - b + math.pi) % (2 * math.pi) - math.pi) > math.radians(60)
                  for b in hand_angles)]
    if not far:
        return
    a = float(g.choice(far))
    ink = int(g.integers(0, 256))
    draw = ImageDraw.Draw(out)
    du, dv = math.sin(a), -math.cos(a)
    if g.random() < 0.5:  # a blob (a leaf, a hand, a mug) at the rim
        rad = float(g.uniform(0.2, 0.4))
        dist = float(g.uniform(0.8, 1.1)) + rad * 0.5
        ring = [(du * dist + rad * math.cos(t), dv * dist + rad * math.sin(t) * float(g.uniform(
            0.6, 1.0))) for t in np.linspace(0, 2 * math.pi, 20, endpoint=False)]
        draw.polygon([tuple(p) for p in _apply(h, np.array(ring)).tolist()], fill=ink)
    else:  # a rod across the dial along a chord far from the centre and the hands
        d = float(g.uniform(0.7, 0.9))
        half_w = float(g.uniform(0.05, 0.15))
        pu, pv = -dv, du
        quad = np.array([[du * (d - half_w) + pu * 3, dv * (d - half_w) + pv * 3],
                         [du * (d + half_w + 2) + pu * 3, dv * (d + half_w + 2) + pv * 3],
                         [du * (d + half_w + 2) - pu * 3, dv * (d + half_w + 2) - pv * 3],
                         [du * (d - half_w) - pu * 3, dv * (d - half_w) - pv * 3]])
        draw.polygon([tuple(p) for p in _apply(h, quad).tolist()], fill=ink)


# --- photometry on the 150×150 frame ----------------------------------------------------------

def _photometry(f: _Factors, x: np.ndarray, alpha: np.ndarray, centre: np.ndarray,
                radius: float) -> np.ndarray:
    """Light, glass, lens and camera effects; ``x`` float32 0–255, ``alpha`` the dial's cover."""
    c = f.config
    if f.active("lighting"):
        t = f.row("lighting")
        a = 2 * math.pi * t[0]
        k = c.lighting * t[1] / 106
        gain = 0.65 + 0.6 * t[2]
        ramp = (((_X - 75) * (k * math.cos(a)))[None, :] + ((_X - 75) * (k * math.sin(a)))[:, None])
        x = x * ((1 + ramp) * gain)
    if f.active("reflections"):  # bright bands from a window on the glass, over the dial only
        t = f.row("reflections")
        a = math.pi * (0.15 + 0.7 * t[0])
        along = (((_X - centre[0]) * math.cos(a))[None, :]
                 + ((_X - centre[1]) * math.sin(a))[:, None])
        band = np.zeros_like(x)
        for k in range(1 + int(t[1] * 2)):
            off = (t[2 + k] - 0.5) * 1.6 * radius
            wid = radius * (0.08 + 0.35 * t[5 + k])
            band = np.maximum(band, np.clip(1 - np.abs(along - off) / wid, 0, 1))
        x = x + (255 - x) * band * alpha * c.reflections * (0.4 + 0.6 * t[8])
    if f.active("glare"):  # specular spots
        t = f.row("glare")
        for k in range(1 + int(t[0] * 2)):
            px = centre[0] + (t[1 + k] - 0.5) * 1.6 * radius
            py = centre[1] + (t[4 + k] - 0.5) * 1.6 * radius
            s2 = (radius * (0.06 + 0.3 * t[7 + k])) ** 2
            spot = np.outer(np.exp(-(_X - py) ** 2 / (2 * s2)), np.exp(-(_X - px) ** 2 / (2 * s2)))
            x = x + (255 - x) * spot * c.glare * (0.5 + 0.5 * t[10])
    if f.active("vignette"):
        t = f.row("vignette")
        k = c.vignette * t[0] / (2 * 75 ** 2)
        dx, dy = _X - 75 - 30 * (t[1] - 0.5), _X - 75 - 30 * (t[2] - 0.5)
        d2 = (dx ** 2)[None, :] + (dy ** 2)[:, None]
        x = x * (1 - np.minimum(d2 * k, c.vignette * t[0]))
    if f.active("contrast"):
        t = f.row("contrast")
        # on top of the grey dial's own low contrast (see _style): keep ink/face ≥ ~35 levels
        k = max(1 - c.contrast * t[2] ** 1.5, 35 / (50 + 70 * t[0]))
        x = x.mean() + (x - x.mean()) * k + (t[3] - 0.5) * 60 * (1 - k)
    img = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    small = min(1.0, max(0.35, radius / 55))  # a small dial gets less blur, or its hands vanish
    if f.active("blur"):
        t = f.row("blur")
        if t[0] < 0.6 or c.motion <= 0:  # defocus
            sigma = 0.3 + max(0.0, c.blur * small - 0.3) * t[1] ** 1.5
            img = img.filter(ImageFilter.GaussianBlur(float(sigma)))
        else:  # camera shake: average of copies shifted along a line
            n = max(2, round(c.motion * small * (0.2 + 0.8 * t[1] ** 1.5)))
            a = math.pi * t[2]
            arr = np.asarray(img, dtype=np.float32)
            pad = np.pad(arr, n, mode="edge")
            acc = np.zeros_like(arr)
            for k in range(n):
                s = k - (n - 1) / 2
                dx, dy = round(s * math.cos(a)), round(s * math.sin(a))
                acc += pad[n + dy:n + dy + SIZE, n + dx:n + dx + SIZE]
            img = Image.fromarray((acc / n).astype(np.uint8))
    if f.active("lowres"):
        lo = min(SIZE, max(c.lowres, 12 * SIZE / radius))  # ≥ ~24 px across the dial
        side = round(lo + (max(lo, 100) - lo) * f.row("lowres")[0] ** 0.7)
        img = img.resize((side, side), Image.Resampling.BOX).resize(
            (SIZE, SIZE), Image.Resampling.BILINEAR if f.row("lowres")[1] < 0.5
            else Image.Resampling.BICUBIC)
    if f.active("noise"):
        t = f.row("noise")
        sigma = c.noise * t[0] ** 1.3
        # per grey level: read noise plus shot noise that grows with the signal (a lookup table)
        lut = (sigma * (1 - t[1]) + np.sqrt(_LEVELS / 255) * (sigma * 1.2 * t[1]))
        lut = lut.astype(np.float32)
        u8 = np.asarray(img)
        arr = u8 + _noise_patch(t[2], t[3], t[4]) * lut[u8]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if f.active("jpeg"):
        q = round(c.jpeg_quality + (max(c.jpeg_quality, 70) - c.jpeg_quality) * f.row("jpeg")[0])
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=max(1, min(95, q)))
        img = Image.open(io.BytesIO(buf.getvalue()))
    return np.array(img, dtype=np.uint8)


# --- the whole clock ---------------------------------------------------------------------------

def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) pixels, zeros coming in (np.roll would wrap edge to edge)."""
    out = np.zeros_like(a)
    n = a.shape[0]
    dy, dx = max(-n, min(n, dy)), max(-n, min(n, dx))
    out[max(dy, 0):n + min(dy, 0), max(dx, 0):n + min(dx, 0)] = \
        a[max(-dy, 0):n - max(dy, 0), max(-dx, 0):n - max(dx, 0)]
    return out


def render(seed: int, index: int, stream: int, config: WildConfig, hour: int | None,
           minute: int | None) -> WildSample:
    """``wild.render_wild``: see there."""
    on = enabled_factors(config.factors)
    seed = int(seed) & 0xFFFFFFFF
    rng = np.random.default_rng([seed, int(stream), int(index)])
    h = int(rng.integers(12))
    m = int(rng.integers(60))
    h = h if hour is None else int(hour) % 12
    m = m if minute is None else int(minute) % 60
    f = _Factors(rng, on, config)

    style = _style(f)
    extent = style.extent()
    homography, depth = _geometry(f, 1 + style.bezel)
    jac = homography[:2, :2] - np.outer(homography[:2, 2], homography[2, :2])
    radius = float(math.sqrt(abs(np.linalg.det(jac))))  # local scale at the centre (h[2,2] = 1)
    scale = float(np.clip(radius * config.detail, 24, 110))
    canvas = _Canvas(scale, extent, style)
    free = _draw_dial(canvas, f, style)
    _draw_hands(canvas, f, style, free, h, m)

    # one warp: output pixel → canvas pixel is (canonical → canvas) ∘ homography⁻¹
    to_canvas = np.array([[scale, 0, canvas.c0], [0, scale, canvas.c0], [0, 0, 1]])
    inv = to_canvas @ np.linalg.inv(homography)
    # only over the dial's bounding box (the warp is the costliest step)
    box = _apply(homography, np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * extent)
    x0, y0 = (int(max(0, min(SIZE - 1, math.floor(v)))) for v in box.min(0))
    x1, y1 = (int(max(x0 + 1, min(SIZE, math.ceil(v)))) for v in box.max(0))
    shift = inv @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]])
    coeffs = tuple((shift / shift[2, 2]).ravel()[:8].tolist())
    # "La" = premultiplied: the canvas is 0 wherever the mask is (nothing is drawn outside the
    # silhouette), so PIL's bilinear warp runs as is; "LA" would be converted there and back
    pair = Image.merge("La", (canvas.img, canvas.mask))
    warped = np.asarray(pair.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coeffs,
                                       resample=Image.Resampling.BILINEAR, fillcolor=(0, 0)),
                        dtype=np.float32)
    dial = np.zeros((SIZE, SIZE), np.float32)
    alpha = np.zeros((SIZE, SIZE), np.float32)
    dial[y0:y1, x0:x1] = warped[..., 0]
    alpha[y0:y1, x0:x1] = warped[..., 1] / 255
    centre = _apply(homography, np.zeros((1, 2)))[0]

    bg = _background(f)
    bg, stray = _clutter(f, bg)
    if f.active("shadows"):  # the clock's shadow on the wall
        t = f.row("shadows")
        a = 2 * math.pi * t[0]
        dx, dy = round(math.cos(a) * radius * 0.2 * t[1]), round(math.sin(a) * radius * 0.2 * t[1])
        cover = Image.fromarray((alpha * 255).astype(np.uint8))
        soft = np.asarray(cover.filter(ImageFilter.BoxBlur(float(1 + 4 * t[2]))),
                          dtype=np.float32) / 255
        shifted = _shift(soft, dy, dx)
        bg = bg * (1 - config.shadows * (0.4 + 0.6 * t[3]) * shifted)
    steps = max(abs(depth[0]), abs(depth[1]))
    if steps >= 1:  # the case's side: the silhouette swept back along the depth direction
        side = np.zeros_like(alpha)
        n = min(6, math.ceil(steps))
        for k in range(1, n + 1):
            dx, dy = round(depth[0] * k / n), round(depth[1] * k / n)
            np.maximum(side, _shift(alpha, dy, dx), out=side)
        shade = style.bezel_ink * 0.6 if style.bezel > 0 else style.ink * 0.5 + 40
        bg = bg + (shade - bg) * side
    x = bg * (1 - alpha) + dial  # dial is premultiplied by alpha
    if stray or f.active("occluders"):
        out = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(out)
        for x0, y0, x1, y1, ink in stray:
            draw.line([(x0, y0), (x1, y1)], fill=ink, width=1)
        if f.active("occluders"):
            ha = 2 * math.pi * (h * 60 + m) / 720
            _occluder(f, homography, (ha, 2 * math.pi * m / 60), out)
        x = np.asarray(out, dtype=np.float32)
    image = _photometry(f, x, alpha, centre, radius)
    return WildSample(image, h, m, homography, (float(centre[0]), float(centre[1])), radius)


