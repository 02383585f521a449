"""Generative plugin: data, nets, losses, metrics — fast, on tiny generated data (never a download)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from zoo import UsageError
from zoo.experiment import assemble, resolve
from zoo_generative import metrics
from zoo_generative.commands import interpolation_codes
from zoo_generative.data import ImageFolder

GENERATIVE = ["cae.mnist", "vae.mnist", "gan.mnist", "cae.butterfly", "vae.butterfly", "gan.butterfly"]


def write_idx(root: Path, n_train: int = 96, n_test: int = 48, seed: int = 0) -> Path:
    """A tiny MNIST in torchvision's raw layout: blurry digit-like blobs, labels 0–9."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = torch.arange(n) % 10
        images = torch.zeros(n, 28, 28)
        for i, label in enumerate(labels.tolist()):  # a bar whose position encodes the label
            images[i, 4:24, 2 + 2 * label:6 + 2 * label] = 1.0
        images = (images * 200 + torch.rand(n, 28, 28, generator=gen) * 55).to(torch.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.to(torch.uint8).numpy().tobytes())
    return root


def write_folder(root: Path, n: int = 24, bad: int = 0, splits: bool = False) -> Path:
    """Generated colour images (two classes, mixed sizes and formats) plus ``bad`` broken files."""
    gen = torch.Generator().manual_seed(1)
    for i in range(n):
        sub = (("train", "valid", "test")[i % 3] + "/" if splits else "") + f"class{i % 2}"
        (root / sub).mkdir(parents=True, exist_ok=True)
        size = (40 + 7 * (i % 5), 50)
        pixels = (torch.rand(size[1], size[0], 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(root / sub / f"img{i}.{'png' if i % 2 else 'jpg'}")
    for j in range(bad):
        (root / f"broken{j}.jpg").write_bytes(b"not a jpeg at all")
    return root


def pooled_pixels():
    """A cheap FD extractor for tests (``module:function`` form): 4×4-pooled pixels."""
    return lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    return write_idx(tmp_path / "data")


def parts(name: str, root: Path, **overrides: object):
    """Assembled experiment on tiny data; FD uses the pixel extractor (no published LeNet needed)."""
    family = name.split(".")[0]
    sets: dict[str, str] = {"data.root": str(root)}
    if family in ("vae", "gan"):
        sets["task.extractor"] = "test_generative:pooled_pixels"
    if family != "lenet":
        sets["model.width"] = "4"  # the layout is what is tested; width only costs time
    if name.endswith("mnist"):
        sets["data.val_size"] = "4"
    sets.update({k: str(v) for k, v in overrides.items()})
    return assemble(resolve(name, sets))


# ---------------------------------------------------------------- data


def test_mnist_splits_are_deterministic_and_disjoint(mnist_root: Path) -> None:
    ds = parts("cae.mnist", mnist_root, **{"data.val_size": 16}).dataset
    train, val, test = ds.split("train", 0), ds.split("val", 0), ds.split("test", 0)
    assert (len(train), len(val), len(test)) == (80, 16, 48)
    assert not set(train.indices) & set(val.indices)
    assert ds.split("val", 0).indices == val.indices and ds.split("val", 1).indices != val.indices
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert 0 <= int(y) <= 9


def test_mnist_missing_offline_is_one_line_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    ds = parts("cae.mnist", tmp_path / "empty").dataset
    with pytest.raises(UsageError, match="MNIST not found.*ZOO_OFFLINE") as err:
        ds.split("train", 0)
    assert "\n" not in str(err.value)


def test_mnist_root_defaults_to_zoo_data(mnist_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_DATA", str(mnist_root))
    ds = assemble(resolve("cae.mnist")).dataset
    assert len(ds.split("test", 0)) == 48


def test_imagefolder_resizes_to_64_rgb_and_splits_by_seed(tmp_path: Path) -> None:
    ds = ImageFolder(ImageFolder.Config(root=str(write_folder(tmp_path / "imgs", n=40)), val_fraction=0.1,
                                        test_fraction=0.1))
    train, val, test = (ds.split(s, 0) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (32, 4, 4)
    assert not set(train.files) & set(val.files)
    x, label = train[0]
    assert x.shape == (3, 64, 64) and ds.input_shape() == (3, 64, 64) and label in (0, 1)
    assert ds.split("val", 0).files == val.files


def test_imagefolder_uses_train_valid_test_subfolders(tmp_path: Path) -> None:
    ds = ImageFolder(ImageFolder.Config(root=str(write_folder(tmp_path / "imgs", n=18, splits=True))))
    assert all(len(ds.split(s, 0)) == 6 for s in ("train", "val", "test"))
    assert all("valid" in str(f) for f in ds.split("val", 0).files)


def test_imagefolder_skips_unreadable_files_with_a_count(tmp_path: Path) -> None:
    ds = ImageFolder(ImageFolder.Config(root=str(write_folder(tmp_path / "imgs", n=6, bad=3)),
                                        val_fraction=0, test_fraction=0))
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable"):
        train = ds.split("train", 0)
    assert len(train) == 9
    train.bad.clear()  # as in a fresh DataLoader worker that has not met them yet
    with pytest.warns(UserWarning, match=r"skipped \d+ unreadable"):
        items = [train[i] for i in range(len(train))]  # a whole epoch: no crash
    assert all(x.shape == (3, 64, 64) for x, _ in items)
    assert sum(len(b[0]) for b in torch.utils.data.DataLoader(train, batch_size=4)) == 9


@pytest.mark.parametrize("content", ["empty", "no-images", "all-broken"])
def test_imagefolder_without_images_is_one_line_error(tmp_path: Path, content: str) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    if content == "no-images":
        (root / "notes.txt").write_text("hello")
    if content == "all-broken":
        (root / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UsageError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ImageFolder(ImageFolder.Config(root=str(root))).split("train", 0)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="--data"):
        ImageFolder().split("train", 0)


# ---------------------------------------------------------------- models and losses


@pytest.mark.parametrize("name", GENERATIVE + ["lenet.mnist"])
def test_loss_is_finite_and_reaches_every_step_parameter(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    root = write_idx(tmp_path / "data", 16, 8) if name.endswith("mnist") else write_folder(tmp_path / "imgs", 8)
    a = parts(name, root)
    model = a.build_model()
    data = a.dataset.split("train", 0)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    all_params = {id(p) for p in model.parameters()}
    covered: set[int] = set()
    for step in a.task.phases:
        model.zero_grad()
        loss, logs = a.task.loss(model, batch, step)
        assert loss.ndim == 0 and torch.isfinite(loss) and all(torch.isfinite(v) for v in logs.values())
        loss.backward()
        params = list(a.task.parameters(model, step))
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
        covered |= {id(p) for p in params}
    assert covered == all_params  # the GAN's two steps partition the parameters


def test_gan_steps_are_generator_and_discriminator(mnist_root: Path) -> None:
    a = parts("gan.mnist", mnist_root)
    model = a.build_model()
    assert a.task.phases == ("discriminator", "generator")
    d = {id(p) for p in a.task.parameters(model, "discriminator")}
    g = {id(p) for p in a.task.parameters(model, "generator")}
    assert d == {id(p) for p in model.discriminator.parameters()} and not d & g
    assert model.latent_dim == 256 and model.generate(torch.randn(3, 256)).shape == (3, 1, 28, 28)
    with pytest.raises(UsageError):
        a.task.loss(model, (torch.rand(2, 1, 28, 28),), "main")


def test_hinge_loss_and_spectral_norm_train_and_round_trip(mnist_root: Path, tmp_path: Path) -> None:
    """The SN-GAN options: the discriminator's layers are spectrally normalised (largest singular
    value ≈ 1 after a few power iterations, no batch norm), the hinge losses are what they say,
    and the weights reload into the same layout."""
    from safetensors.torch import load_file, save_file

    a = parts("gan.mnist", mnist_root, **{"task.loss": "hinge", "model.spectral_norm": "true"})
    model = a.build_model()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    conv = model.discriminator.net[2]
    for _ in range(30):
        conv(torch.rand(2, 4, 14, 14))  # each training-mode call runs one power iteration
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1) < 0.05
    x = torch.rand(8, 1, 28, 28)
    model.eval()  # spectral norm's power iteration and its u, v are fixed in eval mode
    torch.manual_seed(3)
    d_loss, _ = a.task.loss(model, (x,), "discriminator")
    torch.manual_seed(3)
    with torch.no_grad():
        fake = model.generator(torch.randn(8, 256))
        d_real, d_fake = model.discriminator(x * 2 - 1), model.discriminator(fake)
    want = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
    assert torch.allclose(d_loss.detach(), want, atol=1e-6)
    torch.manual_seed(3)
    g_loss, _ = a.task.loss(model, (x,), "generator")
    assert torch.allclose(g_loss.detach(), -d_fake.mean(), atol=1e-6)
    d_loss.backward()
    g_loss.backward()
    path = tmp_path / "sn.safetensors"
    save_file(model.state_dict(), path)
    again = a.build_model()
    again.load_state_dict(load_file(path))
    z = torch.randn(4, 256)
    model.eval(), again.eval()
    assert torch.equal(model.discriminator(model.generate(z) * 2 - 1), again.discriminator(again.generate(z) * 2 - 1))


@pytest.mark.parametrize("name,latent", [("cae.mnist", 32), ("vae.mnist", 32), ("vae.butterfly", 32)])
def test_latent_sizes_follow_table_2(name: str, latent: int, tmp_path: Path) -> None:
    root = write_idx(tmp_path / "d", 8, 8) if name.endswith("mnist") else write_folder(tmp_path / "i", 6)
    a = parts(name, root)
    assert a.config.model_config.latent_dim == latent
    model = a.build_model()
    assert model.encode(torch.rand(2, *a.spec.input_shape))[0].shape[-1] == latent
    epochs = {"cae.mnist": 10, "vae.mnist": 20, "vae.butterfly": 100}[name]
    assert a.config.train.epochs == epochs


def test_mnist_nets_follow_the_report() -> None:
    from zoo_generative.nets import ConvAE

    net = ConvAE((1, 28, 28), 32, 16)
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    assert isinstance(list(net.decoder)[-1], torch.nn.ConvTranspose2d)
    with pytest.raises(UsageError, match="28×28 or C×64×64"):
        ConvAE((1, 32, 32), 32, 16)


def test_evaluate_reports_main_metrics_and_figures(mnist_root: Path, tmp_path: Path) -> None:
    for name, keys in (("cae.mnist", {"bce", "mse"}), ("vae.mnist", {"elbo", "nll_iw", "kl", "fd"}),
                       ("gan.mnist", {"fd"}), ("lenet.mnist", {"accuracy"})):
        a = parts(name, mnist_root, **({"task.iw_samples": 8} if name == "vae.mnist" else {}))
        model = a.build_model().eval()
        loader = torch.utils.data.DataLoader(a.dataset.split("test", 0), batch_size=16)
        with torch.no_grad():
            result = a.task.evaluate(model, loader)
            figures = a.task.figures(model, loader, tmp_path / name)
        assert keys <= set(result) and a.task.main_metric in result
        assert all(v == v for v in result.values())
        if name != "lenet.mnist":
            assert figures and all(f.suffix == ".png" and f.stat().st_size > 0 for f in figures)


def test_vae_iw_bound_is_no_looser_than_the_elbo(mnist_root: Path) -> None:
    """On average log p(x) ≥ IW_k ≥ ELBO, so −IW_k ≤ −ELBO up to sampling noise."""
    torch.manual_seed(0)
    a = parts("vae.mnist", mnist_root, **{"task.iw_samples": 32, "task.extractor": ""})
    model = a.build_model().eval()
    loader = torch.utils.data.DataLoader(a.dataset.split("test", 0), batch_size=48)
    with torch.no_grad():
        result = a.task.evaluate(model, loader)
    assert result["nll_iw"] <= result["elbo"] + 1e-3
    assert result["elbo"] == pytest.approx(result["rec"] + result["kl"])


def test_vae_training_loss_decreases(mnist_root: Path) -> None:
    torch.manual_seed(0)
    a = parts("vae.mnist", mnist_root, **{"model.width": 8})
    model = a.build_model()
    x = (a.dataset.split("train", 0)[0][0].unsqueeze(0).repeat(4, 1, 1, 1),)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        loss, _ = a.task.loss(model, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


# ---------------------------------------------------------------- metrics


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    torch.manual_seed(0)
    a = torch.randn(500, 16) @ torch.randn(16, 16)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(a, a + 2.0) == pytest.approx(16 * 4.0, rel=1e-6)  # mean shift only
    b = torch.randn(500, 16) @ torch.randn(16, 16)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-6)


def test_frechet_distance_of_gaussians_matches_closed_form() -> None:
    """1-D: (μ1−μ2)² + (σ1−σ2)²."""
    torch.manual_seed(0)
    a, b = torch.randn(200000, 1), torch.randn(200000, 1) * 3 + 1
    assert metrics.frechet_distance(a, b) == pytest.approx(1 + 4, rel=0.02)


def test_frechet_distance_with_fewer_samples_than_dimensions_matches_the_eigh_route() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(20, 50).double(), (torch.randn(30, 50) * 1.5 + 0.3).double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    tr_sqrt = torch.linalg.eigvalsh(root @ cov_b @ root).clamp(min=0).sqrt().sum()
    expected = (a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * tr_sqrt
    assert metrics.frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-6)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_extractor_specs(tmp_path: Path) -> None:
    assert metrics.load_extractor("pixels")(torch.rand(2, 1, 28, 28)).shape == (2, 256)
    assert metrics.load_extractor("pixels")(torch.rand(2, 3, 64, 64)).shape == (2, 768)
    fn = metrics.load_extractor("zoo_generative.metrics:_pixels_factory_for_tests")
    assert fn(torch.rand(3, 1, 4, 4)).shape == (3, 16)
    with pytest.raises(UsageError, match="cannot load feature extractor"):
        metrics.load_extractor("no_such_module_xyz:fn")
    with pytest.warns(UserWarning, match="Fréchet distance skipped"):
        assert metrics.try_extractor(str(tmp_path / "missing.safetensors"), "cpu") == (None, "")


# ---------------------------------------------------------------- interpolation codes


def test_interpolation_codes_vary_only_the_chosen_dims() -> None:
    row = interpolation_codes(32, [10], 8, 3.0, seed=0)
    assert row.shape == (8, 32)
    others = [d for d in range(32) if d != 10]
    assert torch.equal(row[:, others], row[:1, others].expand(8, -1))
    assert torch.allclose(row[:, 10], torch.linspace(-3, 3, 8))
    grid = interpolation_codes(256, [10, 27], 5, 2.0, seed=0)
    assert grid.shape == (25, 256)
    assert torch.allclose(grid.view(5, 5, 256)[:, 0, 10], torch.linspace(-2, 2, 5))
    assert torch.allclose(grid.view(5, 5, 256)[0, :, 27], torch.linspace(-2, 2, 5))
    assert torch.equal(interpolation_codes(32, [3], 4, 1.0, 7), interpolation_codes(32, [3], 4, 1.0, 7))
    for dims in ([32], [1, 2, 3], [4, 4], []):
        with pytest.raises(UsageError):
            interpolation_codes(32, dims, 8, 3.0, 0)
