"""Tasks: reconstruction (CAE), VAE, GAN and image classification (the LeNet behind the FD).

Torch-free at import; every method imports what it needs. The tasks rely only on the small
interface the nets expose (``encode``/``decode``, ``generator``/``discriminator``, ``latent_dim``,
``generate``, ``features``), not on any architecture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from zoo import Task, UsageError, ranged

if TYPE_CHECKING:
    import torch
    from torch import nn

EVAL_SEED = 1234  # evaluation draws (binarisation, ε, prior samples) from its own generator


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _eval_generator() -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(EVAL_SEED)


def _randn(shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.randn(shape, generator=gen).to(like.device, like.dtype)


def _first_images(batches: Iterable[Any], n: int) -> torch.Tensor | None:
    import torch

    taken: list[torch.Tensor] = []
    count = 0
    for batch in batches:
        x = _images(batch)
        taken.append(x[: n - count])
        count += len(taken[-1])
        if count >= n:
            break
    return torch.cat(taken) if taken else None


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> Path:
    """PNG via torchvision's make_grid/save_image, 2-pixel white padding between tiles."""
    from torchvision.utils import make_grid, save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    save_image(grid, str(path))
    return path


def _reconstruction_figure(originals: torch.Tensor, recon: torch.Tensor, out_dir: Path) -> Path:
    """Rows of 8: originals, then their reconstructions, alternating."""
    import torch

    rows = []
    for i in range(0, len(originals), 8):
        rows += [originals[i:i + 8], recon[i:i + 8]]
    return save_grid(torch.cat(rows), Path(out_dir) / "reconstructions.png", nrow=8)


def sample_figure(model: nn.Module, out_dir: Path, n: int = 64, name: str = "samples.png") -> Path:
    import torch

    z = torch.randn((n, model.latent_dim), generator=_eval_generator())
    device = next(model.parameters()).device
    return save_grid(model.generate(z.to(device)), Path(out_dir) / name, nrow=8)


class Reconstruction(Task):
    """Autoencoding: reconstruct the input; BCE per pixel (main) and MSE."""

    main_metric = "bce"
    higher_is_better = False

    @dataclass
    class Config:
        loss: str = "bce"  # bce (Bernoulli, targets in [0, 1]) | mse (on sigmoid outputs)

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"recon": tuple(input_shape)}

    def _terms(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch
        import torch.nn.functional as F

        logits = self.forward(model, (x,))["recon"].float()
        bce = F.binary_cross_entropy_with_logits(logits, x.float())
        mse = F.mse_loss(torch.sigmoid(logits), x.float())
        return bce, mse

    def loss(self, model: nn.Module, batch: Any, phase: str = "main") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.config.loss not in ("bce", "mse"):
            raise UsageError(f"task.loss must be bce or mse, got {self.config.loss!r}")
        bce, mse = self._terms(model, _images(batch))
        return (bce if self.config.loss == "bce" else mse), {"bce": bce.detach(), "mse": mse.detach()}

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        total = {"bce": 0.0, "mse": 0.0}
        n = 0
        for batch in batches:
            x = _images(batch)
            bce, mse = self._terms(model, x)
            total["bce"] += float(bce) * len(x)
            total["mse"] += float(mse) * len(x)
            n += len(x)
        return {k: v / max(n, 1) for k, v in total.items()}

    def figures(self, model: nn.Module, batches: Iterable[Any], out_dir: Path) -> list[Path]:
        import torch

        x = _first_images(batches, 32)
        if x is None:
            return []
        with torch.no_grad():
            recon = torch.sigmoid(self.forward(model, (x,))["recon"].float())
        return [_reconstruction_figure(x, recon, out_dir)]


class VAE(Task):
    """Variational autoencoder: −ELBO in nats (main), −log p(x) importance-weighted bound, FD.

    ``likelihood=bernoulli`` dynamically binarises inputs (a fresh draw each time an image is
    seen) so the numbers compare with the literature on MNIST; ``gaussian`` is for RGB images.
    """

    main_metric = "elbo"
    higher_is_better = False

    @dataclass
    class Config:
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
        sigma: float = ranged(0.1, 0, lo_open=True)  # the Gaussian decoder's fixed pixel std
        iw_samples: int = ranged(100, 0)  # k of the importance-weighted bound; 0 skips it
        iw_images: int = ranged(256, 0)  # bound on the first N evaluation images (0: all); k decodes each
        extractor: str = ""  # FD feature extractor (see zoo_generative.metrics); "" skips FD
        fd_samples: int = ranged(10000, 2)

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"recon": tuple(input_shape)}

    def _nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from . import metrics

        if self.config.likelihood == "bernoulli":
            return metrics.bernoulli_nll(logits, x)
        if self.config.likelihood == "gaussian":
            return metrics.gaussian_nll(logits, x, self.config.sigma)
        raise UsageError(f"task.likelihood must be bernoulli or gaussian, got {self.config.likelihood!r}")

    def _prepare(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        import torch

        x = x.float()
        if self.config.likelihood != "bernoulli":
            return x
        u = torch.rand(x.shape, generator=gen).to(x.device) if gen is not None else torch.rand_like(x)
        return (u < x).float()

    def _elbo_terms(
        self, model: nn.Module, x: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from . import metrics

        mu, logvar = model.encode(x)
        mu, logvar = mu.float(), logvar.float()
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + (0.5 * logvar).exp() * eps
        rec = self._nll(model.decode(z).float(), x)
        return rec, metrics.gaussian_kl(mu, logvar)

    def loss(self, model: nn.Module, batch: Any, phase: str = "main") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self._prepare(_images(batch))
        rec, kl = self._elbo_terms(model, x)
        elbo = (rec + kl).mean()
        return elbo, {"elbo": elbo.detach(), "rec": rec.mean().detach(), "kl": kl.mean().detach()}

    def iw_bound(self, model: nn.Module, x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        """−log p(x) ≤ −log (1/k) Σ p(x, z_i)/q(z_i|x), z_i ~ q(z|x); per image, in nats."""
        import math

        import torch

        from . import metrics

        mu, logvar = (t.float() for t in model.encode(x))
        chunk = max(1, 4096 // max(len(x), 1))
        logw = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = _randn((m, *mu.shape), gen, mu)
            z = mu + (0.5 * logvar).exp() * eps  # (m, B, D)
            flat = z.reshape(-1, mu.shape[1])
            logits = model.decode(flat).float()
            log_px = -self._nll(logits, x.repeat(m, *([1] * (x.ndim - 1)))).view(m, -1)
            log_pz = metrics.log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
            log_q = metrics.log_normal(z, mu, logvar)
            logw.append(log_px + log_pz - log_q)
        return -(torch.logsumexp(torch.cat(logw), 0) - math.log(k))

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:

        gen = _eval_generator()
        sums = {"elbo": 0.0, "rec": 0.0, "kl": 0.0, "nll_iw": 0.0}
        n = n_iw = 0
        real: list[torch.Tensor] = []
        limit = self.config.iw_images or float("inf")
        for batch in batches:
            raw = _images(batch)
            x = self._prepare(raw, gen)
            rec, kl = self._elbo_terms(model, x, _randn((len(x), model.latent_dim), gen, x))
            sums["elbo"] += float((rec + kl).sum())
            sums["rec"] += float(rec.sum())
            sums["kl"] += float(kl.sum())
            n += len(x)
            if self.config.iw_samples > 0 and n_iw < limit:
                take = x[: int(min(len(x), limit - n_iw))]
                sums["nll_iw"] += float(self.iw_bound(model, take, self.config.iw_samples, gen).sum())
                n_iw += len(take)
            if self.config.extractor and sum(len(r) for r in real) < self.config.fd_samples:
                real.append(raw.float())
        out = {k: sums[k] / max(n, 1) for k in ("elbo", "rec", "kl")}
        if n_iw:
            out["nll_iw"] = sums["nll_iw"] / n_iw
        fd = _sample_fd(model, real, self.config.extractor, self.config.fd_samples)
        if fd is not None:
            out["fd"] = fd
        return out

    def figures(self, model: nn.Module, batches: Iterable[Any], out_dir: Path) -> list[Path]:
        import torch

        x = _first_images(batches, 32)
        if x is None:
            return []
        with torch.no_grad():
            recon = torch.sigmoid(model.decode(model.encode(x.float())[0]).float())
        return [_reconstruction_figure(x, recon, out_dir), sample_figure(model, out_dir)]


def _sample_fd(model: nn.Module, real: list[torch.Tensor], spec: str, cap: int) -> float | None:
    """FD between features of model samples and of the real images seen (same count)."""
    import torch

    from . import metrics

    if not real or not spec:
        return None
    device = real[0].device
    extractor, _ = metrics.try_extractor(spec, device)
    if extractor is None:
        return None
    images = torch.cat(real)[:cap]
    gen = _eval_generator()
    fakes = []
    for start in range(0, len(images), 500):
        z = _randn((min(500, len(images) - start), model.latent_dim), gen, images)
        fakes.append(model.generate(z).float())
    return metrics.frechet_distance(metrics.features(extractor, images), metrics.features(extractor, torch.cat(fakes)))


class GAN(Task):
    """Adversarial training in two phases; main metric the Fréchet distance.

    Non-saturating generator loss, one-sided label smoothing on real images (``loss=hinge``: the
    hinge loss instead, best with ``model.spectral_norm=true``); the discriminator sees images in
    [−1, 1] to match the generator's tanh.
    """

    main_metric = "fd"
    higher_is_better = False
    phases = ("discriminator", "generator")

    @dataclass
    class Config:
        real_label: float = ranged(0.9, 0, 1, lo_open=True)  # one-sided label smoothing (Salimans et al. 2016)
        loss: Literal["bce", "hinge"] = "bce"  # hinge: Lim & Ye 2017 / SN-GAN; real_label is for bce
        extractor: str = "pixels"  # FD feature extractor; experiments name a classifier's weights
        fd_samples: int = ranged(10000, 2)

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"image": tuple(input_shape)}

    def forward(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        import torch

        x = _images(batch)
        return {"image": model.generator(torch.randn(len(x), model.latent_dim, device=x.device))}

    def parameters(self, model: nn.Module, phase: str = "main") -> Iterator[torch.nn.Parameter]:
        if phase == "discriminator":
            return model.discriminator.parameters()
        if phase == "generator":
            return model.generator.parameters()
        raise UsageError(f"GAN has phases discriminator and generator, not {phase!r}")

    def loss(self, model: nn.Module, batch: Any, phase: str = "main") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import torch
        import torch.nn.functional as F

        real = _images(batch).float() * 2 - 1
        z = torch.randn(len(real), model.latent_dim, device=real.device)
        if phase == "discriminator":
            with torch.no_grad():
                fake = model.generator(z)
            d_real, d_fake = model.discriminator(real).float(), model.discriminator(fake).float()
            if self.config.loss == "hinge":
                loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            else:
                loss = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, self.config.real_label))
                loss = loss + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            logs = {"d_loss": loss.detach(), "d_real": torch.sigmoid(d_real).mean().detach(),
                    "d_fake": torch.sigmoid(d_fake).mean().detach()}
            return loss, logs
        if phase == "generator":
            d_fake = model.discriminator(model.generator(z)).float()
            if self.config.loss == "hinge":
                loss = -d_fake.mean()
            else:
                loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            return loss, {"g_loss": loss.detach()}
        raise UsageError(f"GAN has phases discriminator and generator, not {phase!r}")

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        real: list[torch.Tensor] = []
        count = 0
        for batch in batches:
            x = _images(batch).float()
            real.append(x)
            count += len(x)
            if count >= self.config.fd_samples:
                break
        fd = _sample_fd(model, real, self.config.extractor, self.config.fd_samples)
        if fd is None:  # the named extractor is unavailable: still report the main metric
            fd = _sample_fd(model, real, "pixels", self.config.fd_samples)
        return {"fd": float("nan") if fd is None else fd}

    def figures(self, model: nn.Module, batches: Iterable[Any], out_dir: Path) -> list[Path]:
        return [sample_figure(model, out_dir)]


class ImageClassification(Task):
    """Class of an image: cross-entropy loss, accuracy (main). Its model's features drive the FD."""

    main_metric = "accuracy"
    higher_is_better = True

    @dataclass
    class Config:
        classes: int = ranged(10, 2)
        label_smoothing: float = ranged(0.0, 0, 1, hi_open=True)

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"logits": (self.config.classes,)}

    def loss(self, model: nn.Module, batch: Any, phase: str = "main") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import torch.nn.functional as F

        y = batch[1]
        logits = self.forward(model, batch)["logits"].float()
        loss = F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)
        return loss, {"accuracy": (logits.argmax(1) == y).float().mean().detach()}

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        import torch.nn.functional as F

        correct = total = 0
        loss = 0.0
        for batch in batches:
            y = batch[1]
            logits = self.forward(model, batch)["logits"].float()
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        return {"accuracy": correct / max(total, 1), "loss": loss / max(total, 1)}

    def decode(self, outputs: Any) -> list[str]:
        return [str(int(i)) for i in outputs["logits"].argmax(1)]
