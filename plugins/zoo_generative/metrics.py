"""Metrics (torch code): Fréchet distance with a pluggable feature extractor, IW bound helpers.

The extractor is named by a string so it can travel in a config: ``pixels``; a zoo weight spec
(``lenet.mnist``, ``FILE.safetensors``, a URL) of a model with a ``features(x)`` method; or
``package.module:function`` returning a callable that maps images in [0, 1] to (N, D) features —
the hook for an Inception network when one can be downloaded.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from zoo import UsageError, ZooError

Extractor = Callable[[torch.Tensor], torch.Tensor]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N, D) and ``b`` (M, D).

    ‖μa−μb‖² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½, in float64. The last trace is the nuclear
    norm of Σa^½ Σb^½, which equals that of Xa Xbᵀ / √((N−1)(M−1)) for the centred sets: so with
    fewer samples than dimensions it is an N×M SVD instead of D×D eigendecompositions (no scipy,
    no complex sqrtm residue either way).
    """
    a, b = a.double().cpu(), b.double().cpu()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance needs two (N≥2, D) sets of equal D, got {tuple(a.shape)}, {tuple(b.shape)}")
    n_a, n_b, dim = len(a), len(b), a.shape[1]
    mu_a, mu_b = a.mean(0), b.mean(0)
    xa, xb = a - mu_a, b - mu_b
    tr_a, tr_b = xa.square().sum() / (n_a - 1), xb.square().sum() / (n_b - 1)
    if min(n_a, n_b) < dim:
        tr_sqrt = torch.linalg.svdvals(xa @ xb.T).sum() / math.sqrt((n_a - 1) * (n_b - 1))
    else:
        cov_a, cov_b = xa.T @ xa / (n_a - 1), xb.T @ xb / (n_b - 1)
        vals, vecs = torch.linalg.eigh(cov_a)
        root_a = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
        middle = root_a @ cov_b @ root_a
        tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).square().sum() + tr_a + tr_b - 2 * tr_sqrt
    return max(float(fd), 0.0)


PIXEL_SIDE = 16


def pixels(x: torch.Tensor) -> torch.Tensor:
    """The trivial extractor: pixels average-pooled to at most 16×16, flattened.

    Pooling keeps the covariance small (768-d for RGB instead of 12 288-d, whose eigendecomposition
    would take minutes); it is a weak perceptual metric, a fallback when no classifier is at hand.
    """
    side = min(PIXEL_SIDE, x.shape[-1])
    return F.adaptive_avg_pool2d(x.float(), side).flatten(1)


_cache: dict[tuple[str, str], Extractor] = {}


def load_extractor(spec: str, device: torch.device | str = "cpu") -> Extractor:
    """Resolve an extractor spec (see the module docstring); loaded once per (spec, device)."""
    key = (spec, str(device))
    if key in _cache:
        return _cache[key]
    if spec == "pixels":
        fn: Extractor = pixels
    elif ":" in spec and not spec.startswith(("http://", "https://")) and "/" not in spec.split(":")[0]:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"cannot load feature extractor {spec}: {e}") from None
        fn = factory()
    else:
        import zoo

        module = zoo.load(spec, device=str(device)).model
        if not hasattr(module, "features"):
            raise UsageError(f"feature extractor {spec} has no features(x) method")
        module.eval()

        def fn(x: torch.Tensor, _m: torch.nn.Module = module) -> torch.Tensor:
            return _m.features(x)

    _cache[key] = fn
    return fn


def try_extractor(spec: str, device: torch.device | str) -> tuple[Extractor | None, str]:
    """The extractor, or None and a warning when it cannot be had (e.g. weights not published)."""
    if not spec:
        return None, ""
    try:
        return load_extractor(spec, device), spec
    except ZooError as e:
        warnings.warn(f"Fréchet distance skipped: extractor {spec} unavailable ({e})", stacklevel=2)
        return None, ""


@torch.no_grad()
def features(extractor: Extractor, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([extractor(images[i:i + batch_size]).float().cpu() for i in range(0, len(images), batch_size)])


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) per image, summed over pixels, for binary ``x``."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(logits: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """−log N(x; sigmoid(logits), σ²) per image, summed over pixels (nats, with the constant)."""
    sq = (torch.sigmoid(logits) - x).square().flatten(1).sum(1)
    d = x[0].numel()
    return sq / (2 * sigma**2) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per image."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((z - mu).square() / logvar.exp()) + logvar + math.log(2 * math.pi)).sum(-1)


def _pixels_factory_for_tests() -> Extractor:
    """A ``module:function`` extractor factory (the form an Inception wrapper would take)."""
    return pixels
