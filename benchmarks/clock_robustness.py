"""Where does each clock reader fail? Mean error per photographic factor, one factor at a time.

Each reader is scored on stress sets drawn by ``clock-wild`` with only one factor switched on
(``data.factors=F``: the same clocks as the plain set, changed by that factor alone), plus the
plain set (``none``), the full wild mix (``all``) and the zoo's default ``clock-synthetic`` test
set. Prints a markdown table (rows: factors, columns: readers) for docs/clock.md and ends with
``clock_robustness reader=<best on all> wild_all=<its mean error>``.

    python benchmarks/clock_robustness.py clock.angles clock.wild=runs/clock.wild/…/model.safetensors
    python benchmarks/clock_robustness.py clock.angles --size 300 --factors tilt,blur
"""

from __future__ import annotations

import argparse
import sys

FACTORS = ("none", "tilt", "rotation", "crop", "scale", "dial", "numerals", "hands", "second",
           "shadows", "glare", "reflections", "lighting", "contrast", "invert", "jpeg", "lowres",
           "blur", "noise", "background", "clutter", "occluders", "all")


def score(weights: str, experiment: str | None, data: dict[str, object]) -> float:
    """Test mean error of ``weights`` on the dataset that ``data`` describes."""
    import dataclasses

    import torch

    from zoo.cli import prepare_for
    from zoo.config import make_config
    from zoo.experiment import assemble
    from zoo.plugins import catalog
    from zoo.python_api import load
    from zoo.training.loop import evaluate

    loaded = load(weights, experiment=experiment)
    fields = {k: v for k, v in data.items() if k != "data"}
    dataset = catalog().get("datasets", str(data["data"])).obj
    config = dataclasses.replace(loaded.config, data=str(data["data"]),
                                 data_config=make_config(dataset.Config, fields, "data"))
    assembled = assemble(config)
    precision = prepare_for(loaded.model, torch.device("cpu"))
    metrics = evaluate(assembled, loaded.model, "test", torch.device("cpu"), precision.dtype,
                       batch_size=250, channels_last=precision.channels_last)
    return metrics["error_mean"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("readers", nargs="+", help="NAME[:TAG] or LABEL=FILE.safetensors")
    ap.add_argument("--size", type=int, default=500, help="clocks per stress set")
    ap.add_argument("--factors", default=",".join(FACTORS))
    args = ap.parse_args()
    readers = [r.split("=", 1) if "=" in r else [r, r] for r in args.readers]
    factors = [f.strip() for f in args.factors.split(",") if f.strip()]
    wild = {"data": "clock-wild", "test_size": args.size, "synthetic_fraction": 0.0}
    rows: dict[str, list[float]] = {}
    for label, weights in readers:
        experiment = None  # the weight file's card says what it is
        rows.setdefault("clock-synthetic (default test)", []).append(
            score(weights, experiment, {"data": "clock-synthetic", "test_size": args.size}))
        for factor in factors:
            rows.setdefault(factor, []).append(score(weights, experiment,
                                                     {**wild, "factors": factor}))
            print(f"{label:24s} {factor:14s} {rows[factor][-1]:7.1f}", file=sys.stderr)
    print(f"\n| stress set ({args.size} clocks) | " + " | ".join(r[0] for r in readers) + " |")
    print("|---|" + "---:|" * len(readers))
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    if "all" in rows:
        best = min(range(len(readers)), key=lambda i: rows["all"][i])
        print(f"clock_robustness reader={readers[best][0]} wild_all={rows['all'][best]:.1f}")


if __name__ == "__main__":
    main()
