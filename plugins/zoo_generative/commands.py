"""``zoo sample`` and ``zoo interpolate``: decode points of a trained model's prior into PNG grids.

Click only at import; torch and the model load when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zoo import UsageError, cli_options

if TYPE_CHECKING:
    import torch
    from torch import nn

def _with_weight_options(fn: Any) -> Any:
    """The core's ``-w/--weights``, ``--pretrained`` and ``--device``, plus the prior's seed."""
    fn = click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
                      help="Seed of the prior draws.")(fn)
    fn = cli_options.device(default="cpu")(fn)
    return cli_options.weights()(fn)


def load_generator(name: str, weights: str | None, pretrained: bool, device: str) -> nn.Module:
    """The trained module of ``name``; it must have a prior (``latent_dim`` and ``generate``)."""
    import zoo

    module = zoo.load(cli_options.pick_weights(name, weights, pretrained), device=device,
                      experiment=name).model
    if not (hasattr(module, "generate") and hasattr(module, "latent_dim")):
        raise UsageError(f"{name} has no prior to sample from (an autoencoder); use a vae.* or gan.* model")
    return module


def interpolation_codes(latent_dim: int, dims: list[int], steps: int, span: float, seed: int) -> torch.Tensor:
    """A base point z ~ N(0, I); chosen dims swept over [−span, span], the others held fixed.

    One dim gives ``steps`` codes (a row), two give ``steps²`` (rows: first dim, columns: second).
    """
    import torch

    if not 1 <= len(dims) <= 2:
        raise UsageError(f"--dims takes one or two latent dimensions, got {len(dims)}")
    if len(set(dims)) != len(dims):
        raise UsageError("--dims must be two different dimensions")
    for d in dims:
        if not 0 <= d < latent_dim:
            raise UsageError(f"latent dimension {d} out of range: the model has 0..{latent_dim - 1}")
    if steps < 2:
        raise UsageError("--steps must be at least 2")
    if not 0 < span <= 100:  # also refuses nan
        raise UsageError(f"--range must be a number in (0, 100], got {span}")
    base = torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))
    line = torch.linspace(-span, span, steps)
    if len(dims) == 1:
        codes = base.repeat(steps, 1)
        codes[:, dims[0]] = line
        return codes
    codes = base.repeat(steps * steps, 1)
    codes[:, dims[0]] = line.repeat_interleave(steps)
    codes[:, dims[1]] = line.repeat(steps)
    return codes


def _decode(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    import torch

    device = next(module.parameters()).device
    with torch.no_grad():
        return torch.cat([module.generate(z[i:i + 256].to(device)).cpu() for i in range(0, len(z), 256)])


def upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Each pixel repeated ``scale`` × ``scale`` times: sharp, bigger tiles for a screen."""
    import torch.nn.functional as F

    return images if scale == 1 else F.interpolate(images.float(), scale_factor=scale, mode="nearest")


def _png(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {out}")
    return path


@click.command()
@click.argument("name")
@_with_weight_options
@click.option("-n", "count", default=64, show_default=True, type=click.IntRange(1, 4096), help="Samples.")
@click.option("--nrow", default=0, type=click.IntRange(0, 4096), help="Images per row (default: √n).")
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Upscale each tile N times (nearest neighbour): 28-px digits are small.")
@click.option("--out", required=True, help="Output PNG.")
def sample(name: str, weights: str | None, pretrained: bool, device: str, seed: int, count: int,
           nrow: int, scale: int, out: str) -> None:
    """Draw N samples from a VAE's or GAN's prior and save them as a grid."""
    import math

    import torch

    from .tasks import save_grid

    path = _png(out)
    module = load_generator(name, weights, pretrained, device)
    z = torch.randn(count, module.latent_dim, generator=torch.Generator().manual_seed(seed))
    save_grid(upscale(_decode(module, z), scale), path, nrow=nrow or max(1, math.isqrt(count - 1) + 1))
    click.echo(str(path))


@click.command()
@click.argument("name")
@_with_weight_options
@click.option("--dims", required=True, help="One or two latent dimensions, e.g. 10 or 10,27.")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(2, 64),
              help="Points along each line.")
@click.option("--range", "span", default=3.0, show_default=True, type=float,
              help="Each chosen coordinate runs from −RANGE to +RANGE (prior std units).")
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Upscale each tile N times (nearest neighbour): 28-px digits are small.")
@click.option("--out", required=True, help="Output PNG.")
def interpolate(name: str, weights: str | None, pretrained: bool, device: str, seed: int, dims: str,
                steps: int, span: float, scale: int, out: str) -> None:
    """Vary chosen latent coordinates of one prior sample along a line: a row, or a grid for two."""
    from .tasks import save_grid

    try:
        dim_list = [int(d) for d in dims.split(",") if d.strip()]
    except ValueError:
        raise UsageError(f"--dims takes integers like 10 or 10,27, got {dims!r}") from None
    path = _png(out)
    module = load_generator(name, weights, pretrained, device)
    codes = interpolation_codes(module.latent_dim, dim_list, steps, span, seed)
    save_grid(upscale(_decode(module, codes), scale), path, nrow=steps)
    click.echo(str(path))
