"""Draws docs/img/readme.png: clocks the zoo renders (clean, then wild) and GAN digits.

    ZOO_OFFLINE=1 python docs/img/readme.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

import zoo
from zoo_clock.render import render
from zoo_clock.wild import render_wild

OUT = Path(__file__).with_name("readme.png")


def clocks(n: int = 10) -> torch.Tensor:
    clean = [render(20240, i, 1.0, stream=2).image for i in range(n)]
    wild = [render_wild(20240, i, stream=2).image for i in range(n)]
    rows = torch.stack([torch.from_numpy(a) for a in clean + wild]).float().div(255)
    return rows[:, None].expand(-1, 3, -1, -1)


def digits(n: int = 20) -> torch.Tensor:
    gan = zoo.load("gan.mnist")
    torch.manual_seed(3)
    with torch.no_grad():
        images = gan.model.generate(torch.randn(n, gan.model.latent_dim))
    images = images.float().clamp(0, 1)
    big = torch.nn.functional.interpolate(images, scale_factor=150 / 28 / 2, mode="nearest")
    return big.expand(-1, 3, -1, -1)


def main() -> None:
    top = make_grid(clocks(), nrow=10, padding=4, pad_value=1.0)
    bottom = make_grid(digits(), nrow=20, padding=2, pad_value=1.0)
    width = max(top.shape[2], bottom.shape[2])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[2]), value=1.0)  # noqa: E731
    save_image(torch.cat([pad(top), pad(bottom)], dim=1), OUT)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
