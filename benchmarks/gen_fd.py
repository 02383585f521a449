"""Fréchet distances on MNIST in a classifier's feature space: the real-data floor and model samples.

The floor is FD(real test, real train subset of the same size): what a perfect generator would
score with this many samples. Model rows are FD(N samples from the prior, real test). All in the
same units (the extractor's features, default the published ``lenet.mnist``).

    ZOO_DATA=/work/shared/data python benchmarks/gen_fd.py --extractor lenet.mnist \
        --model vae.mnist=runs/vae.mnist/…/model.safetensors --model gan.mnist=…

Ends with ``gen_fd floor=… vae.mnist=… gan.mnist=…``.
"""

from __future__ import annotations

import argparse

import torch

from zoo.experiment import assemble, resolve
from zoo.loading import load_model
from zoo_generative import metrics


def real_images(split: str, n: int, seed: int) -> torch.Tensor:
    data = assemble(resolve("cae.mnist")).dataset.split(split, 0)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return torch.stack([data[i][0] for i in order])


@torch.no_grad()
def samples(name: str, weights: str, n: int, seed: int) -> torch.Tensor:
    _, module = load_model(name, weights)
    z = torch.randn(n, module.latent_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([module.generate(z[i:i + 500]) for i in range(0, n, 500)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", default="lenet.mnist", help="weights spec, pixels, or module:function")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=W", help="a VAE or GAN to score")
    parser.add_argument("-n", type=int, default=10000, help="images per set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    extractor = metrics.load_extractor(args.extractor)
    test = metrics.features(extractor, real_images("test", args.n, args.seed))
    results = {"floor": metrics.frechet_distance(test, metrics.features(extractor, real_images("train", args.n, args.seed)))}
    print(f"FD real test vs real train (n={args.n}): {results['floor']:.3f}")
    for item in args.model:
        name, _, weights = item.partition("=")
        fake = metrics.features(extractor, samples(name, weights, args.n, args.seed))
        results[name] = metrics.frechet_distance(test, fake)
        print(f"FD {name} samples vs real test (n={args.n}): {results[name]:.3f}")
    print("gen_fd " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
