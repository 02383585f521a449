"""Can the synthetic clock renderer keep up with training?

Prints the renderer's images/s on one core (a plain loop in this process, like one DataLoader
worker), the same for the wild generator (``clock-wild``, default settings; wall and CPU time,
as the machine may be shared), and the default clock model's training consumption in images/s
(forward + backward + AdamW step on in-memory batches, all cores torch uses). Ends with
``clock_render ratio=<render rate / training rate>``; the goal is ≥ 5.

    python benchmarks/clock_render.py [--experiment clock.multihead] [--images 400] [--steps 8]
    python benchmarks/clock_render.py --grid docs/img/clock_samples.png   # also save samples
    python benchmarks/clock_render.py --wild-grid docs/img/clock_wild_samples.png  # wild ones
"""

from __future__ import annotations

import argparse
import time


def render_rate(images: int, difficulty: float, supersample: int) -> float:
    from zoo_clock.render import render

    render(0, 0, difficulty, supersample=supersample)  # warm-up
    start = time.perf_counter()
    for i in range(images):
        render(1, i, difficulty, supersample=supersample)
    return images / (time.perf_counter() - start)


def wild_render_rate(images: int) -> tuple[float, float]:
    """Wild clocks per second on one core: (wall-clock rate, CPU-time rate)."""
    from zoo_clock.wild import render_wild

    render_wild(0, 0)  # warm-up (imports, noise bank)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(images):
        render_wild(1, i)
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def training_rate(experiment: str, steps: int, batch_size: int) -> tuple[float, int]:
    import torch

    from zoo.experiment import assemble, resolve

    parts = assemble(resolve(experiment, {"train.batch_size": batch_size}))
    model = parts.build_model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = parts.dataset.split("train", 0)
    batch = torch.utils.data.default_collate([data[i % len(data)] for i in range(batch_size)])
    for i in range(steps + 2):
        if i == 2:  # skip the warm-up steps
            start = time.perf_counter()
        loss, _ = parts.task.loss(model, batch, "main")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch_size / (time.perf_counter() - start), torch.get_num_threads()


def save_grid(path: str, per_row: int = 8) -> None:
    """Rows of samples at difficulty 0, 1 and 2 (test seed), via torchvision's save_image."""
    import torch
    from torchvision.utils import save_image

    from zoo_clock.data import SyntheticConfig
    from zoo_clock.render import render

    seed = SyntheticConfig().test_seed
    images = [torch.from_numpy(render(seed, i, d, stream=2).image)[None].float() / 255
              for d in (0.0, 1.0, 2.0) for i in range(per_row)]
    save_image(torch.stack(images), path, nrow=per_row, padding=4, pad_value=1.0)
    print(f"saved {path} (rows: difficulty 0, 1, 2)")


def save_wild_grids(path: str, per_row: int = 8) -> None:
    """``path``: 4 rows of wild test clocks (default settings); ``*_factors.png`` next to it:
    the same 8 clocks plain, then with one factor at a time (probability 1)."""
    import dataclasses
    from pathlib import Path

    import torch
    from torchvision.utils import save_image

    from zoo_clock.wild import WildConfig, WildDataConfig, render_wild

    seed = WildDataConfig().test_seed

    def grid(images: list, out: str) -> None:
        x = torch.stack([torch.from_numpy(im)[None].float() / 255 for im in images])
        save_image(x, out, nrow=per_row, padding=4, pad_value=1.0)

    grid([render_wild(seed, i, 2).image for i in range(4 * per_row)], path)
    rows = ["none", "tilt", "dial", "hands", "second", "shadows", "glare", "reflections",
            "invert", "contrast", "lowres", "blur", "noise", "background", "clutter", "occluders"]
    images = []
    for name in rows:
        config = WildConfig(factors=name)
        if name != "none":
            config = dataclasses.replace(config, **{f"{name}_p": 1.0})
        images += [render_wild(seed, 4 * per_row + i, 2, config).image for i in range(per_row)]
    factors = str(Path(path).with_name(Path(path).stem + "_factors.png"))
    grid(images, factors)
    print(f"saved {path} (wild test clocks) and {factors} (rows: {', '.join(rows)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="clock.multihead")
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--difficulty", type=float, default=1.0)
    ap.add_argument("--grid", help="also save a PNG grid of samples here")
    ap.add_argument("--wild-grid", help="also save PNG grids of wild clocks here (and *_factors)")
    args = ap.parse_args()
    if args.grid:
        save_grid(args.grid)
    if args.wild_grid:
        save_wild_grids(args.wild_grid)
    rates = {ss: render_rate(args.images, args.difficulty, ss) for ss in (1, 2)}
    for ss, r in rates.items():
        print(f"render (difficulty {args.difficulty}, supersample {ss}, 1 core): {r:8.1f} img/s")
    wild_wall, wild_cpu = wild_render_rate(args.images)
    print(f"render clock-wild (defaults, 1 core): {wild_wall:8.1f} img/s "
          f"({wild_cpu:.1f} per CPU-second; {wild_wall / rates[2]:.2f}× the synthetic rate)")
    train, threads = training_rate(args.experiment, args.steps, args.batch_size)
    print(f"training {args.experiment} (batch {args.batch_size}, {threads} threads): "
          f"{train:8.1f} img/s")
    print(f"clock_render ratio={rates[2] / train:.2f}")


if __name__ == "__main__":
    main()
