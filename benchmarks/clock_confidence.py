"""What ``zoo predict``'s confidence is worth: the published clock readers on rendered clocks.

For each reader, on N clocks of the default test stream (difficulty 1) and N harder ones
(difficulty 2): how often the reading is exactly right (and its hour: the multi-head reader's
confidence is its hour's probability), the mean confidence (to compare with those),
and the mean confidence of readings within a minute against readings more than 5 minutes off
(a confidence worth printing ranks the first well above the second). Needs the published weights
(``zoo pull``, or the registry in this checkout). Ends with ``clock_confidence key=value``.

    python benchmarks/clock_confidence.py [N]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from zoo.loading import load_model
from zoo_clock import metrics
from zoo_clock.render import render

READERS = ("clock.angles", "clock.multihead")
TEST_SEED, TEST_STREAM = 20240, 2  # the default test set's seed and stream (zoo_clock.data)


def clocks(n: int, difficulty: float) -> tuple[torch.Tensor, np.ndarray]:
    samples = [render(TEST_SEED, i, difficulty, TEST_STREAM) for i in range(n)]
    x = torch.stack([torch.from_numpy(s.image)[None].float() / 255 for s in samples])
    return x, np.array([s.hour * 60 + s.minute for s in samples])


def measure(name: str, x: torch.Tensor, truth: np.ndarray) -> dict[str, float]:
    assembled, model = load_model(name, name)
    task = assembled.task
    answers, confidence = [], []
    with torch.no_grad():
        for i in range(0, len(x), 100):
            out = task.forward(model, (x[i:i + 100],))
            for (text, p), *_ in task.predict(out, top=1):
                h, m = map(int, text.split(":"))
                answers.append((h % 12) * 60 + m)
                confidence.append(p)
    err = metrics.common_sense_error(np.array(answers), truth)
    conf = np.array(confidence, dtype=np.float64)
    near, far = err <= 1, err > 5
    hour_right = np.array(answers) // 60 == truth // 60
    return {"exact": float((err == 0).mean()), "hour": float(hour_right.mean()),
            "confidence": float(conf.mean()),
            "conf_within_1": float(conf[near].mean()) if near.any() else float("nan"),
            "conf_over_5": float(conf[far].mean()) if far.any() else float("nan"),
            "n_over_5": int(far.sum())}


def main(n: int = 500) -> None:
    torch.manual_seed(0)
    result = {}
    for difficulty in (1.0, 2.0):
        x, truth = clocks(n, difficulty)
        for name in READERS:
            r = measure(name, x, truth)
            print(f"{name:16s} difficulty {difficulty:.0f}: exact {r['exact']:.3f}  "
                  f"hour right {r['hour']:.3f}  "
                  f"mean confidence {r['confidence']:.3f}  |  within 1 min {r['conf_within_1']:.3f}"
                  f"  vs over 5 min {r['conf_over_5']:.3f} ({r['n_over_5']} readings)")
            result[(name, difficulty)] = r
    a1, a2 = result[("clock.angles", 1.0)], result[("clock.angles", 2.0)]
    print(f"clock_confidence angles_exact={a1['exact']:.3f} angles_conf={a1['confidence']:.3f} "
          f"hard_within1={a2['conf_within_1']:.3f} hard_over5={a2['conf_over_5']:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
