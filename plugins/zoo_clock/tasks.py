"""Clock-reading tasks: target encodings, losses, decoding, and the common-sense error metrics.

Every task maps a batch ``(images, labels)`` (labels ``(B, 2)`` = hour 0–11, minute 0–59) to a
prediction in minutes on the 12-hour dial; the metrics are shared (``metrics.summarize``) so the
readers are compared on exactly the same footing. Torch is imported inside methods only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import Task, ranged

from . import metrics

if TYPE_CHECKING:
    import torch
    from torch import nn


def _label_minutes(y: torch.Tensor) -> torch.Tensor:
    return (y[:, 0].long() * 60 + y[:, 1].long()) % metrics.DIAL


class ClockTask(Task):
    """Shared evaluation, decoding and figures; subclasses define outputs, loss and ``minutes``."""

    main_metric = "error_mean"
    higher_is_better = False

    def objective(self, out: Mapping[str, torch.Tensor], y: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and logs from outputs already computed (so evaluation needs one forward)."""
        raise NotImplementedError

    def minutes(self, out: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Predicted time as float minutes on the dial, ``(B,)``, in [0, 720)."""
        raise NotImplementedError

    def batch_objective(self, out: Mapping[str, torch.Tensor], batch: Any
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``objective`` of a whole batch: a subclass may use more of it than the labels."""
        return self.objective(out, batch[1])

    def loss(self, model: nn.Module, batch: Any, phase: str = "main"
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.forward(model, batch)
        return self.batch_objective(out, batch)

    def _predict(self, model: nn.Module, batches: Iterable[Any]
                 ) -> tuple[Any, Any, float, dict[str, float]]:
        """Predicted and true minutes, the mean loss and the logs' means (weighted by batch)."""
        import numpy as np
        import torch

        preds, trues, loss_sum, n = [], [], 0.0, 0
        log_sums: dict[str, float] = {}
        with torch.no_grad():
            for batch in batches:
                out = self.forward(model, batch)
                loss, logs = self.batch_objective(out, batch)
                k = batch[1].shape[0]
                loss_sum += float(loss) * k
                for key, value in logs.items():
                    log_sums[key] = log_sums.get(key, 0.0) + float(value) * k
                n += k
                preds.append(self.minutes(out).float().cpu().numpy())
                trues.append(_label_minutes(batch[1]).cpu().numpy())
        if not n:
            raise ValueError("no batches to evaluate")
        means = {key: value / n for key, value in log_sums.items()}
        return np.concatenate(preds), np.concatenate(trues), loss_sum / n, means

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        pred, true, loss, _ = self._predict(model, batches)
        return {**metrics.summarize(pred, true), "loss": loss}

    def decode(self, outputs: Mapping[str, torch.Tensor]) -> list[str]:
        mins = self.minutes(outputs).round().long() % metrics.DIAL
        return [metrics.format_time(int(t)) for t in mins.tolist()]

    def readings(self, out: Mapping[str, torch.Tensor], top: int
                 ) -> list[list[tuple[int, float | None]]]:
        """Per sample, up to ``top`` (minutes on the dial, probability): the decoded reading
        first. The default is a point estimate with no probability (plain regression)."""
        mins = self.minutes(out).round().long() % metrics.DIAL
        return [[(int(t), None)] for t in mins.tolist()]

    def predict(self, outputs: Mapping[str, torch.Tensor], top: int = 1
                ) -> list[list[tuple[str, float | None]]]:
        return [[(metrics.format_time(t), p) for t, p in sample]
                for sample in self.readings(outputs, top)]

    def figures(self, model: nn.Module, batches: Iterable[Any], out_dir: Path) -> list[Path]:
        import numpy as np

        pred, true, _, _ = self._predict(model, batches)
        err = metrics.common_sense_error(np.rint(pred) % metrics.DIAL, true)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "error_histogram.png"
        metrics.histogram_png(err, str(path), title=type(self).__name__)
        return [path]


class ClockRegression(ClockTask):
    """The seed's regression: the time as float hours (11:55 → 11.917), MSE loss.

    Not circular, as in the seed: 11:59 and 0:01 are 12 hours apart to the loss.
    """

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"hours": (1,)}

    def objective(self, out, y):
        import torch.nn.functional as F

        target = _label_minutes(y).float() / 60.0
        loss = F.mse_loss(out["hours"].reshape(-1).float(), target)
        return loss, {"mse": loss.detach()}

    def minutes(self, out):
        return (out["hours"].reshape(-1).float() * 60.0) % metrics.DIAL


class ClockClasses(ClockTask):
    """The seed's classification: ``classes`` equal bins of the dial, cross-entropy.

    Bins are centred on multiples of ``720 / classes`` minutes (circularly), and a prediction is
    decoded to its bin centre: with 24 classes a reader says 3:00 or 3:30, never 3:10.
    """

    @dataclass
    class Config:
        classes: int = ranged(24, 2)  # bins on the 12-hour dial; 720 = one per minute
        label_smoothing: float = ranged(0.0, 0, 1, hi_open=True)

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        if not 2 <= self.config.classes <= 720:
            from zoo import UsageError

            raise UsageError(f"task.classes must be 2–720, got {self.config.classes}")

    @property
    def width(self) -> float:
        return metrics.DIAL / self.config.classes

    def outputs(self, input_shape):
        return {"logits": (self.config.classes,)}

    def target(self, y: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.round(_label_minutes(y).float() / self.width).long() % self.config.classes

    def objective(self, out, y):
        import torch.nn.functional as F

        logits = out["logits"].float()
        target = self.target(y)
        loss = F.cross_entropy(logits, target, label_smoothing=self.config.label_smoothing)
        acc = (logits.argmax(1) == target).float().mean()
        return loss, {"ce": loss.detach(), "bin_acc": acc.detach()}

    def minutes(self, out):
        return out["logits"].argmax(1).float() * self.width % metrics.DIAL

    def readings(self, out, top):
        """The ``top`` most probable bins (softmax), each read as its centre."""
        probs = out["logits"].float().softmax(1)
        p, bins = probs.topk(min(top, self.config.classes), dim=1)
        mins = (bins.float() * self.width).round().long() % metrics.DIAL
        return [list(zip(m, q)) for m, q in zip(mins.tolist(), p.tolist())]


class ClockMultiHead(ClockTask):
    """The seed's multi-head reader: hour as 12-way classification, minute as regression.

    The minute target is minutes / 60 (MSE, not circular); decoding is hour argmax and the
    rounded minute, independently, as in the seed.
    """

    @dataclass
    class Config:
        minute_weight: float = ranged(1.0, 0)  # of the minute MSE (minutes/60) against the hour CE

    def outputs(self, input_shape):
        return {"hour": (12,), "minute": (1,)}

    def objective(self, out, y):
        import torch.nn.functional as F

        hour_logits = out["hour"].float()
        ce = F.cross_entropy(hour_logits, y[:, 0].long())
        mse = F.mse_loss(out["minute"].reshape(-1).float(), y[:, 1].float() / 60.0)
        acc = (hour_logits.argmax(1) == y[:, 0]).float().mean()
        loss = ce + self.config.minute_weight * mse
        return loss, {"hour_ce": ce.detach(), "minute_mse": mse.detach(), "hour_acc": acc.detach()}

    def minutes(self, out):
        hour = out["hour"].argmax(1).float()
        minute = (out["minute"].reshape(-1).float() * 60.0).round().clamp(0, 59)
        return (hour * 60 + minute) % metrics.DIAL

    def readings(self, out, top):
        """The ``top`` most probable hours (softmax of the hour head), each with the minute head's
        single estimate: the probability is the hour's; the minute regression has none."""
        p, hours = out["hour"].float().softmax(1).topk(min(top, 12), dim=1)
        minute = (out["minute"].reshape(-1).float() * 60.0).round().clamp(0, 59).long()
        mins = (hours * 60 + minute[:, None]) % metrics.DIAL
        return [list(zip(m, q)) for m, q in zip(mins.tolist(), p.tolist())]


class ClockAngles(ClockTask):
    """Periodic targets: (sin, cos) of the hour-hand and minute-hand angles, MSE.

    Nothing wraps around: 11:59 and 0:01 are neighbours to the loss. Decoding reads the minute
    from the minute hand and picks the hour whose ``hour*60 + minute`` lies closest to what the
    hour hand says, so the two hands always agree (no 2:59 read as 3:59).
    """

    @dataclass
    class Config:
        hour_weight: float = ranged(1.0, 0)  # of the hour-hand terms against the minute-hand terms

    def outputs(self, input_shape):
        return {"angles": (4,)}

    def target(self, y: torch.Tensor) -> torch.Tensor:
        import torch

        t = _label_minutes(y).float()
        a_h = t * (2 * math.pi / metrics.DIAL)
        a_m = (t % 60) * (2 * math.pi / 60)
        return torch.stack([a_h.sin(), a_h.cos(), a_m.sin(), a_m.cos()], 1)

    def objective(self, out, y):
        pred = out["angles"].float()
        sq = (pred - self.target(y)) ** 2
        hour, minute = sq[:, :2].sum(1).mean(), sq[:, 2:].sum(1).mean()
        loss = self.config.hour_weight * hour + minute
        return loss, {"hour_mse": hour.detach(), "minute_mse": minute.detach()}

    def minutes(self, out):
        import torch

        a = out["angles"].float()
        t_hour = torch.atan2(a[:, 0], a[:, 1]) % (2 * math.pi) * (metrics.DIAL / (2 * math.pi))
        minute = torch.atan2(a[:, 2], a[:, 3]) % (2 * math.pi) * (60 / (2 * math.pi))
        candidates = torch.arange(12, device=a.device).float()[None] * 60 + minute[:, None]
        d = (candidates - t_hour[:, None]).abs() % metrics.DIAL
        d = torch.minimum(d, metrics.DIAL - d)
        best = d.argmin(1)
        return candidates.gather(1, best[:, None]).squeeze(1) % metrics.DIAL

    def posterior(self, out: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, 720)`` probabilities of every reading, from the (sin, cos) outputs alone.

        Trained with MSE, each (sin, cos) pair estimates E[(sin θ, cos θ)]: its length R is the
        mean resultant length of the network's belief about that hand's angle (1 = certain,
        shrinking as it hedges between angles). Each hand is taken as a von Mises around its
        angle with the concentration whose R matches (Banerjee et al. 2005 approximation), the
        two hands as independent evidence about the time, uniform prior. R is capped at 0.999
        (κ ≈ 500, about 2.6° per hand): a trained reader's lengths scatter around 1 by a few per
        cent, so beyond that the length says nothing, and an uncapped hour hand would overrule
        the 12× finer minute hand.
        """
        import torch

        a = out["angles"].float()
        t = torch.arange(metrics.DIAL, device=a.device, dtype=torch.float32)

        def log_likelihood(pair: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
            r = pair.norm(dim=1).clamp(1e-6, 0.999)
            kappa = r * (2 - r * r) / (1 - r * r)
            mu = torch.atan2(pair[:, 0], pair[:, 1])
            return kappa[:, None] * torch.cos(angle[None] - mu[:, None])

        hour = log_likelihood(a[:, :2], t * (2 * math.pi / metrics.DIAL))
        minute = log_likelihood(a[:, 2:], (t % 60) * (2 * math.pi / 60))
        return (hour + minute).softmax(1)

    def readings(self, out, top):
        """The decoded reading with its posterior probability, then the most probable others."""
        probs = self.posterior(out)
        decoded = self.minutes(out).round().long() % metrics.DIAL
        ranked = probs.topk(min(top + 1, metrics.DIAL), dim=1).indices
        result = []
        for row, first, order in zip(probs.tolist(), decoded.tolist(), ranked.tolist()):
            others = [t for t in order if t != first][:top - 1]
            result.append([(t, row[t]) for t in [first, *others]])
        return result


class ClockAnglesAligned(ClockAngles):
    """``clock-angles`` plus alignment: the reader also says where the dial is (``points``).

    A model for this task (``clock-stn``) returns ``points``: where the dial's 12, 3, 6 and
    9 o'clock points (canonical (0,-1), (1,0), (0,1), (-1,0)) lie in the image, in [-1, 1]
    ``grid_sample`` coordinates. When the batch carries the true homography (``clock-wild`` with
    ``data.with_geometry=true``) the loss adds ``align_weight`` × smooth-L1 between those and
    the true points (the homography applied to the canonical ones), over the rows whose
    homography is finite: the mixed-in clock-synthetic clocks (NaN) and batches without one
    (photos, .npy files) add nothing. Reading, decoding and the main metric are ``clock-angles``';
    evaluation adds ``align_px``, the mean point error in input pixels where it is known.
    """

    @dataclass
    class Config(ClockAngles.Config):
        align_weight: float = ranged(1.0, 0)  # weight of the control-point loss against the reading
        align_beta: float = ranged(0.02, 0, 1, lo_open=True)  # smooth-L1 knee, [-1, 1] image units

    def outputs(self, input_shape):
        return {**super().outputs(input_shape), "points": (4, 2)}

    def batch_objective(self, out, batch):
        loss, logs = super().batch_objective(out, batch)
        if len(batch) < 3 or "points" not in out:
            return loss, logs
        align, extra = alignment_loss(out["points"], batch[2], self.config.align_beta,
                                      batch[0].shape[-1])
        return loss + self.config.align_weight * align, {**logs, **extra}

    def evaluate(self, model, batches):
        pred, true, loss, logs = self._predict(model, batches)
        extra = {"align_px": logs["align_px"]} if "align_px" in logs else {}
        return {**metrics.summarize(pred, true), "loss": loss, **extra}

    def figures(self, model, batches, out_dir):
        """The error histogram, and ``alignment.png``: input | aligned crop pairs of the first
        test batch (``zoo_clock.figures.alignment_grid``), when the model aligns."""
        import itertools

        from .figures import alignment_grid

        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return []
        paths = super().figures(model, itertools.chain([first], batches), out_dir)
        if callable(getattr(model, "align", None)):
            paths.append(alignment_grid(model, first, Path(out_dir) / "alignment.png"))
        return paths


CANONICAL_POINTS = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))  # 12, 3, 6, 9 o'clock


def true_points(h: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` homographies → ``(B, 4, 2)`` images of the canonical control points."""
    import torch

    canon = torch.tensor(CANONICAL_POINTS, dtype=h.dtype, device=h.device)
    ones = torch.ones(4, 1, dtype=h.dtype, device=h.device)
    p = torch.cat([canon, ones], 1) @ h.transpose(1, 2)  # (B, 4, 3)
    return p[..., :2] / p[..., 2:]


def alignment_loss(points: torch.Tensor, h: torch.Tensor, beta: float, side: int
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Smooth-L1 between predicted and true control points over rows with a finite ``h``, and
    logs: ``align_l1`` and (when any row counts) ``align_px``, the mean point distance in
    pixels of a ``side``-pixel input. No row counts → a zero that keeps the graph."""
    import torch
    import torch.nn.functional as F

    pred = points.float()
    valid = torch.isfinite(h).flatten(1).all(1)
    if not bool(valid.any()):
        zero = pred.flatten()[:0].sum()  # 0, in the graph, whatever the (unused) points hold
        return zero, {"align_l1": zero.detach()}
    target = true_points(h[valid].float())
    loss = F.smooth_l1_loss(pred[valid], target, beta=beta)
    px = (pred[valid] - target).detach().norm(dim=-1).mean() * (side / 2)
    return loss, {"align_l1": loss.detach(), "align_px": px}
