"""Align, then read (`clock-stn`, `clock-angles-aligned`, `clock.wild-stn`): the homography
solve, the warp, the untrained identity, the masked alignment loss, geometry in the render cache
and a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo.cli import cli
from zoo.experiment import assemble, resolve
from zoo_clock.nets import (
    CONTROL_POINTS,
    AlignedReader,
    canonical_grid,
    homography_from_points,
    warp,
)
from zoo_clock.tasks import ClockAnglesAligned, alignment_loss, true_points
from zoo_clock.wild import WildSample, config_from, normalised_homography, render_mixed

TINY = {"data.train_size": 16, "data.val_size": 4, "data.test_size": 4}
CONTROL = torch.tensor(CONTROL_POINTS)


def perspective(angle: float = 0.3, tilt: float = 0.15) -> torch.Tensor:
    """A homography with rotation, anisotropic scale, shift and a real perspective row."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[0.55 * c, -0.5 * s, 0.08], [0.6 * s, 0.45 * c, -0.1],
                         [tilt, -0.1, 1.0]])


def spec_model(crop: int = 32, **kwargs: object) -> AlignedReader:
    outputs = ClockAnglesAligned().outputs((1, 150, 150))
    return AlignedReader((1, 150, 150), outputs, crop=crop, width=4, hidden=16, **kwargs)


def test_homography_from_its_four_point_images_is_the_homography() -> None:
    h = torch.stack([perspective(), perspective(-0.5, -0.2), torch.eye(3)])
    solved = homography_from_points(CONTROL, true_points(h))
    assert torch.allclose(solved, h, atol=1e-5)


def test_a_degenerate_quadrilateral_gives_nan_not_an_exception() -> None:
    collapsed = torch.zeros(1, 4, 2)  # every control point on one spot
    assert torch.isnan(homography_from_points(CONTROL, collapsed).flatten()[:8]).all()


def test_warp_by_a_homography_and_back_is_near_identity() -> None:
    side = 96
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side),
                            indexing="ij")
    image = (0.5 + 0.25 * torch.sin(3 * xx + 1) * torch.cos(2 * yy))[None, None]  # smooth
    h = perspective(0.2, 0.1)[None]
    grid = canonical_grid(side, 1.0)
    warped = warp(image, torch.linalg.inv(h), grid)  # image coordinates → canonical
    back = warp(warped, h, grid)  # and back
    inner = (xx.abs() < 0.5) & (yy.abs() < 0.5)  # away from what fell outside either frame
    assert (back[0, 0] - image[0, 0])[inner].abs().max() < 0.02
    assert (warped[0, 0] - image[0, 0])[inner].abs().max() > 0.05  # the warp did move pixels


def test_output_shapes_with_and_without_points() -> None:
    model = spec_model().eval()
    out = model(torch.rand(3, 1, 150, 150))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"angles": (3, 4), "points": (3, 4, 2)}
    plain = AlignedReader((1, 150, 150), {"angles": (4,)}, crop=32, width=4, hidden=16).eval()
    assert set(plain(torch.rand(2, 1, 150, 150))) == {"angles"}  # clock-angles asks no points
    points, h, crop = model.align(torch.rand(2, 1, 150, 150))
    assert points.shape == (2, 4, 2) and h.shape == (2, 3, 3) and crop.shape == (2, 1, 32, 32)


def test_untrained_localiser_is_identity_like() -> None:
    """Untrained, the crop is the whole input: the model starts as a plain reader."""
    model = spec_model(crop=150, margin=1.2).eval()
    x = torch.rand(2, 1, 150, 150)
    points, h, crop = model.align(x)
    assert torch.allclose(points, (CONTROL / 1.2).expand(2, 4, 2), atol=1e-6)
    assert torch.allclose(crop, x, atol=1e-4)


def test_alignment_loss_counts_only_rows_with_a_homography() -> None:
    h = torch.stack([perspective(), torch.full((3, 3), float("nan")), perspective(-0.4)])
    exact = true_points(h.nan_to_num())
    assert torch.isnan(exact[1]).all()
    wrong = exact.clone()  # NaN points on the row without a homography: masked, harmless
    loss, logs = alignment_loss(wrong, h, beta=0.02, side=150)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(logs["align_px"]) < 1e-3
    wrong[2] += 0.1
    loss, logs = alignment_loss(wrong, h, beta=0.02, side=150)
    assert float(loss) > 0 and float(logs["align_px"]) == pytest.approx(0.1 * 2**0.5 * 75 / 2,
                                                                       rel=1e-3)
    none, logs = alignment_loss(wrong.requires_grad_(), torch.full((3, 3, 3), float("nan")), 0.02,
                                150)
    assert float(none.detach()) == 0 and "align_px" not in logs
    none.backward()  # keeps the graph: a batch of synthetic clocks only still trains


def test_task_without_homographies_reads_like_clock_angles() -> None:
    task = ClockAnglesAligned()
    model = spec_model().eval()
    x, y = torch.rand(4, 1, 150, 150), torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    plain, logs = task.loss(model, (x, y))  # photos, .npy files: no third item
    assert "align_l1" not in logs
    h = torch.full((4, 3, 3), float("nan"))
    h[0] = perspective()
    aligned, logs = task.loss(model, (x, y, h))
    assert float(aligned.detach()) > float(plain.detach()) and "align_px" in logs
    assert len(task.decode(task.forward(model, (x,)))) == 4


def test_render_cache_round_trips_homographies_exactly() -> None:
    overrides = {**TINY, "data.with_geometry": "true", "data.synthetic_fraction": 0.5}
    parts = assemble(resolve("clock.wild-stn", overrides))
    split = parts.dataset.split("train", seed=3)
    x, y, h = split.get_batch(torch.arange(16))
    assert h.dtype == torch.float32 and h.shape == (16, 3, 3)
    config = config_from(parts.dataset.config)
    kinds = set()
    for i in range(16):
        s = render_mixed(3, i, 0, config, 0.5)
        assert np.array_equal(x[i, 0].mul(255).round().byte().numpy(), s.image)
        if isinstance(s, WildSample):
            want = normalised_homography(s.homography).astype(np.float32)
            assert np.array_equal(h[i].numpy(), want)
            kinds.add("wild")
        else:
            assert torch.isnan(h[i]).all()
            kinds.add("synthetic")
    assert kinds == {"wild", "synthetic"}
    assert torch.equal(split[5][2], h[5])  # one item and a batch agree
    again = assemble(resolve("clock.wild-stn", overrides)).dataset.split("train", seed=3)
    assert torch.equal(again.get_batch(torch.arange(16))[2].nan_to_num(), h.nan_to_num())


def test_geometry_is_part_of_the_cache_key_and_off_keeps_two_item_batches() -> None:
    on = assemble(resolve("clock.wild", {**TINY, "data.with_geometry": "true"}))
    off = assemble(resolve("clock.wild", TINY))
    batch_on = on.dataset.split("train", seed=0).get_batch(torch.arange(4))
    batch_off = off.dataset.split("train", seed=0).get_batch(torch.arange(4))
    assert len(batch_on) == 3 and len(batch_off) == 2
    assert torch.equal(batch_on[0], batch_off[0]) and torch.equal(batch_on[1], batch_off[1])
    with_h, without = on.dataset.arrays("train", 0), off.dataset.arrays("train", 0)
    assert len(with_h) == 3 and len(without) == 2  # the folders on disk are distinct


def test_tiny_end_to_end_run_writes_weights_and_the_alignment_figure(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["run", "clock.wild-stn", "--max-steps", "2", "--batch-size", "4", "--out", str(out),
            "--precision", "fp32", "--set", "data.train_size=16", "--set", "data.val_size=4",
            "--set", "data.test_size=4", "--set", "model.width=4", "--set", "model.hidden=16",
            "--set", "model.crop=32", "--set", "model.loc_width=4"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert "align_px" in summary["test"] and summary["steps"] == 2
    assert (out / "model.safetensors").is_file()
    assert (out / "figures" / "alignment.png").is_file()
    result = CliRunner().invoke(cli, ["eval", "clock.wild-stn", "--weights",
                                      str(out / "model.safetensors"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert "align_px" in metrics and metrics["samples"] == 4
