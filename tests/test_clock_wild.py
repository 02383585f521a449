"""The wild clock generator (`clock-wild`): determinism, labels, factors, geometry, registry."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from zoo import UsageError
from zoo.experiment import assemble, resolve
from zoo_clock.wild import FACTORS, WildConfig, normalised_homography, render_wild

TINY = {"data": "clock-wild", "data.train_size": 6, "data.val_size": 3, "data.test_size": 3}
GEOMETRY = WildConfig(factors="tilt,rotation,crop,scale,dial,numerals,hands", tilt_p=1.0,
                      rotation_p=1.0, crop_p=1.0)


def digest(seed: int, index: int, stream: int = 0) -> str:
    return hashlib.sha256(render_wild(seed, index, stream).image.tobytes()).hexdigest()


def test_same_seed_stream_index_gives_the_same_bytes_in_another_process() -> None:
    here = [digest(5, i, 1) for i in range(3)]
    assert here == [digest(5, i, 1) for i in range(3)]
    code = ("import hashlib; from zoo_clock.wild import render_wild; "
            "print(' '.join(hashlib.sha256(render_wild(5, i, 1).image.tobytes()).hexdigest() "
            "for i in range(3)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == here
    assert len(set(here)) == 3  # another index, another clock
    assert digest(5, 0, 2) != here[0]  # another stream (split), another clock


def test_samples_are_150_square_grey_with_labels_in_range_and_spread() -> None:
    samples = [render_wild(11, i) for i in range(240)]
    assert all(s.image.shape == (150, 150) and s.image.dtype == np.uint8 for s in samples)
    hours = np.array([s.hour for s in samples])
    minutes = np.array([s.minute for s in samples])
    assert hours.min() >= 0 and hours.max() <= 11 and minutes.min() >= 0 and minutes.max() <= 59
    counts = np.bincount(hours, minlength=12)
    assert counts.min() >= 8 and counts.max() <= 35  # 20 expected per hour
    assert 25 <= minutes.mean() <= 34 and len(set(minutes.tolist())) >= 50
    assert np.mean([s.image.std() for s in samples]) > 20  # not blank frames


@pytest.mark.parametrize("factor", FACTORS)
def test_each_factor_changes_the_pixels_but_not_the_time(factor: str) -> None:
    plain = WildConfig(factors="none")
    only = dataclasses.replace(WildConfig(factors=factor), **{f"{factor}_p": 1.0})
    changed = 0
    for i in range(4):
        a, b = render_wild(3, i, config=plain), render_wild(3, i, config=only)
        assert (a.hour, a.minute) == (b.hour, b.minute)
        changed += int(np.abs(a.image.astype(int) - b.image.astype(int)).max() > 0)
    assert changed >= 3, f"{factor} changed {changed} of 4 clocks"


def test_a_factor_at_probability_zero_changes_nothing() -> None:
    for factor in ("tilt", "blur", "clutter"):
        off = dataclasses.replace(WildConfig(factors=factor), **{f"{factor}_p": 0.0})
        assert np.array_equal(render_wild(3, 0, config=off).image,
                              render_wild(3, 0, config=WildConfig(factors="none")).image)


def test_homography_maps_the_canonical_12_6_axis_onto_the_drawn_hands() -> None:
    """Both hands at 12 (0:00) vs both near 6 (6:30): the pixels that differ are the hands, so
    mapped back through the homography they lie on the canonical vertical through the centre,
    above and below it."""
    for i in range(12):
        a = render_wild(3, i, config=GEOMETRY, hour=0, minute=0)
        b = render_wild(3, i, config=GEOMETRY, hour=6, minute=30)
        assert np.allclose(a.homography, b.homography)
        ys, xs = np.nonzero(np.abs(a.image.astype(int) - b.image.astype(int)) > 40)
        assert len(xs) > 30
        pts = np.c_[xs + 0.5, ys + 0.5, np.ones(len(xs))] @ np.linalg.inv(a.homography).T
        u, v = pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2]
        assert np.quantile(np.abs(u), 0.95) < 0.2, i
        assert u.mean() == pytest.approx(0, abs=0.05)
        assert v.min() < -0.35 and v.max() > 0.35, i  # the 12 side and the 6 side
        centre = a.homography @ [0, 0, 1]
        assert a.centre == pytest.approx((centre[0] / centre[2], centre[1] / centre[2]))
        assert 0 <= a.centre[0] <= 150 and 0 <= a.centre[1] <= 150
        assert 10 < a.radius < 110


def test_normalised_homography_puts_the_frame_in_minus_one_to_one() -> None:
    s = render_wild(3, 1, config=GEOMETRY)
    n = normalised_homography(s.homography)
    c = n @ [0, 0, 1]
    assert (c[0] / c[2], c[1] / c[2]) == pytest.approx((s.centre[0] / 75 - 1, s.centre[1] / 75 - 1))
    assert n[2, 2] == 1


def test_the_dataset_through_the_catalog() -> None:
    parts = assemble(resolve("clock.angles", TINY))
    train = parts.dataset.split("train", seed=0)
    assert len(train) == 6
    x, y = train[0]
    assert x.shape == (1, 150, 150) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.dtype == torch.long and y.shape == (2,) and 0 <= y[0] <= 11 and 0 <= y[1] <= 59
    assert not torch.equal(x, parts.dataset.split("train", seed=1)[0][0])  # train follows seed
    assert torch.equal(parts.dataset.split("test", seed=0)[0][0],
                       parts.dataset.split("test", seed=1)[0][0])  # test is fixed
    assert not torch.equal(x, parts.dataset.split("val", seed=0)[0][0])
    with pytest.raises(UsageError, match="unknown split"):
        parts.dataset.split("holdout", seed=0)
    batch = torch.utils.data.default_collate([train[i] for i in range(2)])
    model = parts.build_model()
    loss, _ = parts.task.loss(model, batch, "main")
    assert torch.isfinite(loss)


def test_with_geometry_adds_the_normalised_homography() -> None:
    parts = assemble(resolve("clock.angles", {**TINY, "data.with_geometry": "true"}))
    x, y, h = parts.dataset.split("train", seed=0)[2]
    assert h.shape == (3, 3) and h.dtype == torch.float32
    s = render_wild(0, 2, 0, parts.dataset.config)
    assert torch.allclose(h, torch.from_numpy(normalised_homography(s.homography)).float())


def test_grid_sample_with_the_normalised_homography_gives_the_upright_dial() -> None:
    """What a spatial-transformer reader does: sample the canonical dial out of the image. The
    hands of 0:00 vs 6:30 then differ only along the vertical through the middle."""
    side = 64
    lin = (torch.arange(side) + 0.5) / side * 2 - 1
    v, u = torch.meshgrid(lin, lin, indexing="ij")
    canon = torch.stack([u, v, torch.ones_like(u)], -1)
    for i in range(6):
        a = render_wild(3, i, config=GEOMETRY, hour=0, minute=0)
        b = render_wild(3, i, config=GEOMETRY, hour=6, minute=30)
        h = torch.from_numpy(normalised_homography(a.homography)).float()
        grid = canon @ h.T
        grid = (grid[..., :2] / grid[..., 2:])[None]
        images = torch.from_numpy(np.stack([a.image, b.image])).float()[:, None] / 255
        upright = torch.nn.functional.grid_sample(images, grid.expand(2, -1, -1, -1),
                                                  align_corners=False)
        diff = (upright[0, 0] - upright[1, 0]).abs() > 0.15
        cols = diff.float().sum(0)
        assert cols.sum() > 20
        middle = cols[side // 2 - 6:side // 2 + 6].sum() / cols.sum()
        assert middle > 0.9, (i, float(middle))


def test_unknown_factor_is_one_usage_line() -> None:
    with pytest.raises(UsageError, match="unknown clock factor 'bogus'.*choose from all, none"):
        resolve("clock.angles", {**TINY, "data.factors": "tilt,bogus"})
    with pytest.raises(UsageError):
        WildConfig(factors="blurr")
    out = subprocess.run([sys.executable, "-m", "zoo", "info", "clock.angles", "--set",
                          "data=clock-wild", "--set", "data.factors=blur,bogus"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown clock factor 'bogus'" in lines[0]


def test_registering_clock_wild_imports_neither_pil_nor_torch() -> None:
    """`zoo list` / `zoo --help` stay fast: the drawing code loads on the first clock."""
    code = ("import sys; from zoo.plugins import catalog; "
            "catalog().get('datasets', 'clock-wild'); "
            "print(sorted(m for m in ('PIL', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
