"""zoo-example: a complete third-party zoo plugin, registered through the ``zoo`` entry point."""

from __future__ import annotations

import click

from zoo import Experiment, hookimpl

from .spirals import SpiralArm, SpiralMLP, Spirals, spiral_points


@hookimpl
def zoo_register_tasks(register):
    register("spiral-arm", SpiralArm)


@hookimpl
def zoo_register_datasets(register):
    register("spirals", Spirals)


@hookimpl
def zoo_register_models(register):
    register("spiral-mlp", SpiralMLP)


@hookimpl
def zoo_register_experiments(register):
    fast = {"train.epochs": 20, "train.batch_size": 64, "train.lr": 0.01, "train.num_workers": 0}
    register(Experiment("spirals.two", task="spiral-arm", dataset="spirals", model="spiral-mlp",
                        description="Two interleaved spirals, a 2×64 MLP (seconds on a CPU)",
                        settings=fast))
    register(Experiment("spirals.three", task="spiral-arm", dataset="spirals", model="spiral-mlp",
                        description="Three spirals: the same parts, other settings",
                        settings={**fast, "data.arms": 3, "task.arms": 3, "model.width": 128}))


@hookimpl
def zoo_register_weights(register):
    register("registry")  # zoo_example/registry/index.json: trained weights shipped in the package


@hookimpl
def zoo_register_commands(cli):
    @cli.command()
    @click.option("--arms", default=2, show_default=True)
    @click.option("-n", "points", default=400, show_default=True)
    def spirals(arms: int, points: int) -> None:
        """Draw the spirals dataset in the terminal."""
        rows, cols = 21, 43
        grid = [[" "] * cols for _ in range(rows)]
        for x, y, arm in spiral_points(points, arms, 0.0, seed=0):
            row = round((1 - (y + 1) / 2) * (rows - 1))
            col = round((x + 1) / 2 * (cols - 1))
            grid[row][col] = "ox+*#"[arm % 5]
        click.echo("\n".join("".join(line).rstrip() for line in grid))
