"""Clocks in the wild: photographs-like analog clocks, with the warp that put the dial there.

``render_wild(seed, index, stream, config)`` is a pure function of its arguments (numpy PCG64 from
``default_rng([seed, stream, index])``, PIL drawing, the stroke font of ``render.py``; no system
fonts), so sample *i* is the same on every machine. It covers what the zoo's own clean clocks
do not: strong perspective, cropped and off-centre dials, many dial/numeral/hand styles, second
and alarm hands, shadows, glare, glass reflections, camera blur, noise, JPEG, low resolution,
textured and cluttered backgrounds and occluders. The drawing lives in ``_wilddraw.py`` (imported
on the first clock, so registering the dataset imports neither PIL nor torch).

How: the dial is drawn once, upright, in *canonical* space (the face is the unit circle centred
at 0, 12 o'clock at (0, -1), y down) at about 1.3 canvas pixels per output pixel, then placed in
the 150×150 frame with ONE perspective warp (PIL) over a procedural background; photometry is
vectorised numpy on the 150×150 result. ``WildSample.homography`` is that warp (canonical →
output pixels, continuous coordinates: pixel ``i`` covers ``[i, i+1)``), so a reader can learn
to align the dial before it reads it.

Every factor is a setting of ``WildConfig``: ``<factor>_p`` is how often it applies and a
strength bounds its magnitude. ``factors`` ("all" or a comma list such as ``"tilt"`` or
``"blur,noise"``) switches the others off, leaving a plain upright centred clock, so per-factor
stress sets show the same clocks with only that factor changed: each factor draws its numbers
from its own slice of the random stream, whatever else is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np

from zoo import UsageError

from .data import SHAPE, RenderedDataset
from .data import STREAMS as _STREAMS

# Bump when the pixels of ``render_wild`` change (a render cache can key on it).
WILD_VERSION = 6
SIZE = SHAPE[1]


def ranged(default: Any, lo: float, hi: float | None = None) -> Any:
    """A setting whose allowed values ``zoo.config`` checks on every ``--set`` (inclusive)."""
    return field(default=default, metadata={"range": (lo, hi)})

FACTORS = ("tilt", "rotation", "crop", "scale", "dial", "numerals", "hands", "second", "shadows",
           "glare", "reflections", "vignette", "lighting", "contrast", "invert", "jpeg", "lowres",
           "blur", "noise", "background", "clutter", "occluders")


@dataclass
class WildConfig:
    """What varies and how much. ``<factor>_p``: chance the factor applies to a sample."""

    factors: str = "all"  # "all", "none" or a comma list of FACTORS
    tilt_p: float = ranged(0.75, 0, 1)
    tilt: float = ranged(60.0, 0, 80)  # max out-of-plane tilt, degrees
    jitter: float = ranged(0.2, 0, 0.3)  # corner jitter, fraction of the dial radius
    rotation_p: float = ranged(0.7, 0, 1)
    rotation: float = ranged(30.0, 0, 180)  # max in-plane rotation, degrees
    crop_p: float = ranged(0.5, 0, 1)
    crop: float = ranged(0.35, 0, 0.4)  # max part of the dial radius outside the frame
    scale_p: float = ranged(0.9, 0, 1)
    scale_min: float = ranged(0.35, 0.2, 1)  # dial diameter as a fraction of the frame
    scale_max: float = ranged(1.0, 0.2, 1.2)
    dial_p: float = ranged(0.95, 0, 1)
    numerals_p: float = ranged(0.95, 0, 1)
    hands_p: float = ranged(0.95, 0, 1)
    second_p: float = ranged(0.5, 0, 1)  # second hand (and sometimes an alarm hand)
    shadows_p: float = ranged(0.5, 0, 1)
    shadows: float = ranged(0.55, 0, 1)  # max darkening of a cast shadow
    glare_p: float = ranged(0.3, 0, 1)
    glare: float = ranged(0.85, 0, 1)  # max whitening at a specular spot's peak
    reflections_p: float = ranged(0.3, 0, 1)
    reflections: float = ranged(0.6, 0, 1)  # max whitening of a glass reflection band
    vignette_p: float = ranged(0.35, 0, 1)
    vignette: float = ranged(0.55, 0, 1)  # max darkening in the corners
    lighting_p: float = ranged(0.6, 0, 1)
    lighting: float = ranged(0.5, 0, 1)  # max gradient across the frame, fraction of the level
    contrast_p: float = ranged(0.35, 0, 1)
    contrast: float = ranged(0.6, 0, 0.8)  # max contrast loss (0.6: down to 40 %)
    invert_p: float = ranged(0.2, 0, 1)  # light ink on a dark face
    jpeg_p: float = ranged(0.4, 0, 1)
    jpeg_quality: int = ranged(8, 1, 95)  # lowest JPEG quality
    lowres_p: float = ranged(0.3, 0, 1)
    lowres: int = ranged(32, 8, 150)  # smallest side the frame is shrunk to, pixels
    blur_p: float = ranged(0.5, 0, 1)
    blur: float = ranged(2.0, 0, 6)  # max defocus sigma, pixels
    motion: float = ranged(7.0, 0, 20)  # max motion-blur length, pixels
    noise_p: float = ranged(0.6, 0, 1)
    noise: float = ranged(20.0, 0, 60)  # max sensor noise sigma, grey levels
    background_p: float = ranged(0.9, 0, 1)
    clutter_p: float = ranged(0.6, 0, 1)
    clutter: int = ranged(8, 0, 40)  # max distractor shapes
    occluders_p: float = ranged(0.2, 0, 1)
    max_degradations: int = ranged(2, 0, 7)  # most of contrast/blur/lowres/noise/jpeg/glare/
    # reflections on one clock (only matters when several are enabled)
    detail: float = ranged(1.3, 0.5, 4)  # canonical canvas pixels per output pixel

    def __post_init__(self) -> None:
        enabled_factors(self.factors)  # `--set data.factors=typo` fails at once, in one line


@dataclass(frozen=True)
class WildSample:
    image: np.ndarray  # (150, 150) uint8
    hour: int  # 0–11
    minute: int  # 0–59
    homography: np.ndarray  # (3, 3) float64: canonical dial coords → output pixel coords
    centre: tuple[float, float]  # dial centre in output pixels (where the hands meet)
    radius: float  # dial radius in output pixels (geometric mean of the warp's scale there)


@lru_cache(maxsize=64)
def enabled_factors(factors: str) -> frozenset[str]:
    """Parse ``WildConfig.factors``; an unknown name is one line that lists the valid ones."""
    text = factors.strip().lower()
    if text in ("all", ""):
        return frozenset(FACTORS)
    if text == "none":
        return frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACTORS]
    if unknown:
        raise UsageError(f"unknown clock factor '{unknown[0]}' in factors={factors!r}; choose from "
                         f"all, none, {', '.join(FACTORS)}")
    return frozenset(names)


def normalised_homography(h: np.ndarray, size: int = SIZE) -> np.ndarray:
    """``h`` (canonical → pixels) as canonical → [-1, 1] image coords (grid_sample,
    align_corners=False), scaled so its [2, 2] entry is 1."""
    n = np.array([[2 / size, 0, -1], [0, 2 / size, -1], [0, 0, 1]]) @ h
    return n / n[2, 2]


def render_wild(seed: int, index: int, stream: int = 0, config: WildConfig | None = None,
                hour: int | None = None, minute: int | None = None) -> WildSample:
    """Clock ``index`` of ``(seed, stream)``; ``hour``/``minute`` force the time shown."""
    from ._wilddraw import render

    return render(seed, index, stream, config or WildConfig(), hour, minute)


def render_mixed(seed: int, index: int, stream: int, config: WildConfig,
                 synthetic: float = 0.0) -> Any:
    """Sample ``index``: with probability ``synthetic`` a ``clock-synthetic`` clock (difficulty 1),
    else a wild one, so one reader can learn both; the choice is seeded per index too."""
    if synthetic > 0:
        pick = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream), int(index), 1]).random()
        if pick < synthetic:
            from .render import render

            return render(seed, index, 1.0, stream)
    return render_wild(seed, index, stream, config)


def render_wild_range(seed: int, stream: int, config: WildConfig, synthetic: float, start: int,
                      stop: int, geometry: bool = False) -> tuple[np.ndarray, ...]:
    """Clocks ``start``…``stop - 1`` as (images (n,150,150) uint8, labels (n,2) int16), and with
    ``geometry`` their normalised homographies (n,3,3) float32, NaN for clock-synthetic ones."""
    from .render import stack_samples

    samples = [render_mixed(seed, i, stream, config, synthetic) for i in range(start, stop)]
    images, labels = stack_samples(samples)
    if not geometry:
        return images, labels
    nan = np.full((3, 3), np.nan)
    homographies = np.stack([
        normalised_homography(s.homography) if isinstance(s, WildSample) else nan
        for s in samples]).astype(np.float32)
    return images, labels, homographies


def config_from(values: Any) -> WildConfig:
    """The ``WildConfig`` part of any object with the same field names (a dataset's config)."""
    return WildConfig(**{fl.name: getattr(values, fl.name) for fl in fields(WildConfig)})


# --- the dataset component -------------------------------------------------------------------

@dataclass
class WildDataConfig(WildConfig):
    """``clock-wild``: every WildConfig setting plus the split sizes, as ``clock-synthetic``."""

    train_size: int = ranged(20000, 1)
    val_size: int = ranged(1000, 1)
    test_size: int = ranged(2000, 1)
    test_seed: int = 20240  # the test set never changes with the run's seed
    with_geometry: bool = False  # samples also carry the dial's 3×3 homography (NaN: none)
    synthetic_fraction: float = ranged(0.0, 0, 1)  # share of clock-synthetic clocks mixed in
    cache: bool = True  # render each split once into $ZOO_HOME/cache (zoo_clock.cache)


class WildClocks(RenderedDataset):
    """Clocks in the wild (``render_wild``), rendered once into the render cache (``data.cache``).

    Sample ``i`` of a split is a pure function of (seed, split, i, settings). Train and val follow
    the run's seed, test uses ``test_seed``. Items are ``(image (1,150,150) float in [0, 1],
    label long (2,) = (hour, minute))``; with ``with_geometry=True`` a third item, the float32
    (3, 3) homography from canonical dial coordinates (unit circle, 12 o'clock at (0, -1)) to
    normalised image coordinates ([-1, 1], ``grid_sample(..., align_corners=False)``), so a
    reader can learn to align the dial: ``grid = H @ [u, v, 1]`` (divided by its last entry)
    samples the upright dial out of the image. The clock-synthetic clocks of
    ``synthetic_fraction`` have no homography: theirs is all NaN (a task masks them out). The
    render cache stores the homographies too (``homography.npy``).
    """

    Config = WildDataConfig

    def input_shape(self) -> tuple[int, ...]:
        return (1, SIZE, SIZE)

    def _split_args(self, name: str, seed: int) -> tuple[int, int]:
        c = self.config
        sizes = {"train": c.train_size, "val": c.val_size, "test": c.test_size}
        if name not in sizes:
            raise UsageError(f"unknown split '{name}'; choose from train, val, test")
        enabled_factors(c.factors)  # an unknown factor fails here, in one line
        return sizes[name], c.test_seed if name == "test" else seed

    def render_plan(self, name: str, seed: int) -> tuple[dict[str, Any], int, Any]:
        from dataclasses import asdict
        from functools import partial

        c = self.config
        size, split_seed = self._split_args(name, seed)
        wild = config_from(c)
        fields_ = {"renderer": WILD_VERSION, "seed": split_seed, "stream": _STREAMS[name],
                   "synthetic": c.synthetic_fraction, "wild": asdict(wild)}
        if c.with_geometry:  # a keyword only then: the no-geometry plan stays as it was
            return fields_, size, partial(render_wild_range, split_seed, _STREAMS[name], wild,
                                          c.synthetic_fraction, geometry=True)
        return fields_, size, partial(render_wild_range, split_seed, _STREAMS[name], wild,
                                      c.synthetic_fraction)

    def with_geometry(self) -> bool:
        return bool(self.config.with_geometry)

    def on_the_fly(self, name: str, seed: int) -> Any:
        from ._torchdata import RenderedWildClocks

        c = self.config
        size, split_seed = self._split_args(name, seed)
        return RenderedWildClocks(size, split_seed, _STREAMS[name], config_from(c),
                                  c.with_geometry, c.synthetic_fraction)
