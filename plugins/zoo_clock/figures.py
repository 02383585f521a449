"""Figures of an align-then-read model: what it was shown and what it straightened out of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

PRED, TRUE = 255, 0  # outline colours of predicted and true control points (grey image)


def alignment_grid(model: nn.Module, batch: Any, path: Path, n: int = 16, per_row: int = 4
                   ) -> Path:
    """Save ``path`` (PNG): for the first ``n`` samples of ``batch``, the input with the
    predicted control points (white dots; the true ones, when the batch carries homographies,
    as black rings) beside the aligned crop the reader reads (scaled to the input's size).

    ``model`` must have ``align(x) -> (points, homography, crop)`` (``clock-stn``). Upright,
    centred crops with 12 o'clock at the top mean the localiser has learnt its job.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from zoo import atomic_write

    from .tasks import true_points

    x = batch[0][:n]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            points, _, crop = model.align(x)
    finally:
        model.train(was_training)
    truth = None
    if len(batch) > 2:
        h = batch[2][:n].float()
        truth = true_points(torch.nan_to_num(h, nan=0.0))
        truth[~torch.isfinite(h).flatten(1).all(1)] = float("nan")
    side = x.shape[-1]
    crop = torch.nn.functional.interpolate(crop.float(), size=(side, side), mode="bilinear",
                                           align_corners=False)
    rows = -(-len(x) // per_row)
    gap = 4
    sheet = Image.new("L", (per_row * (2 * side + gap) - gap, rows * (side + gap) - gap), 128)
    for i in range(len(x)):
        left = Image.fromarray((x[i, 0].float().clamp(0, 1) * 255).round().byte().cpu().numpy())
        draw = ImageDraw.Draw(left)
        marks = [(points[i], PRED, True)]
        if truth is not None and torch.isfinite(truth[i]).all():
            marks.append((truth[i], TRUE, False))
        for pts, colour, filled in marks:
            for u, v in ((pts.float().cpu().numpy() + 1) * side / 2).tolist():
                box = (u - 3, v - 3, u + 3, v + 3)
                if filled:
                    draw.ellipse(box, fill=colour, outline=255 - colour)
                else:
                    draw.ellipse(box, outline=colour, width=2)
        right = Image.fromarray(
            (crop[i, 0].clamp(0, 1) * 255).round().byte().cpu().numpy().astype(np.uint8))
        col, row = i % per_row, i // per_row
        x0, y0 = col * (2 * side + gap), row * (side + gap)
        sheet.paste(left, (x0, y0))
        sheet.paste(right, (x0 + side, y0))
    path = Path(path)
    atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG"))
    return path
