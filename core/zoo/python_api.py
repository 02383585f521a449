"""The Python API: ``zoo.list``, ``zoo.create``, ``zoo.load``, ``zoo.train``, ``zoo.predict``.

The same machinery as the CLI, called as functions (docs/python.md): names resolve through the
plugins' registrations (``experiment.resolve``), weights through the registries
(``loading.open_weights``), training through ``training.loop.train``. Listing imports no torch.

Settings are keyword arguments, modelled on ``timm.create_model(name, **kwargs)`` where plain
keywords configure the model: a plain keyword sets a field of the function's own section (the
model for ``create``/``load``, training for ``train``, as the CLI's ``--epochs`` does);
``section__field=value`` reaches any other section (``data__difficulty=0.5`` is
``--set data.difficulty=0.5``); ``task=``, ``dataset=`` and ``model=`` swap a component by name.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._catalog import Entry, name_matcher, natural_key
from .errors import UsageError, ZooError
from .plugins import catalog
from .storage import hub
from .storage.files import check_regular

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .config import RunConfig
    from .experiment import Assembled

SWAPS = {"task": "task", "dataset": "data", "model": "model"}
PREDICT_BATCH = 64


def settings(kwargs: Mapping[str, Any], section: str) -> dict[str, Any]:
    """Keyword arguments → ``--set`` keys: ``width=32`` → ``{section}.width``,
    ``data__difficulty=0.5`` → ``data.difficulty``, ``model="clock-cnn"`` → a swap."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in SWAPS:
            out[SWAPS[key]] = value
        elif "__" in key:
            out[key.replace("__", ".")] = value
        else:
            out[f"{section}.{key}"] = value
    return out


# ------------------------------------------------------------------ listing (no torch)


def listing(pattern: str | None = None, kind: str = "experiments",
            pretrained: bool = False) -> builtins.list[tuple[Entry, hub.Published | None]]:
    """What ``zoo list`` shows: each registered name with its published weights (if any)."""
    reg = catalog()
    names = reg.names(kind, pattern)  # an unknown kind is a one-line usage error
    published = hub.pretrained_by_name() if kind == "experiments" else {}
    rows = [(reg.tables[kind][n], published.get(n)) for n in names]
    return [(entry, weights) for entry, weights in rows if weights is not None or not pretrained]


def list(pattern: str | None = None, kind: str = "experiments",
         pretrained: bool = False) -> builtins.list[str]:
    """Registered names of ``kind`` (experiments, tasks, datasets, models), as ``zoo list``.

    ``pattern`` may use wildcards (``"clock.*"``); a plain word matches anywhere.
    ``pretrained=True`` keeps the experiments that have published weights.
    """
    return [entry.name for entry, _ in listing(pattern, kind, pretrained)]


def list_pretrained(pattern: str | None = None) -> builtins.list[str]:
    """``NAME:TAG`` of every published weight file in every registry (user, plugins, built-in)."""
    matches = name_matcher(pattern)
    return sorted((p.key for p in hub.published() if matches(p.key)), key=natural_key)


# ------------------------------------------------------------------ models


def create(name: str, pretrained: bool | str = False, **overrides: Any) -> nn.Module:
    """The model of experiment ``name``, built from its resolved config, in train mode.

    ``pretrained=True`` starts it from NAME's published weights, a string from those weights
    (``NAME[:TAG]``, a file or a URL), as ``zoo run --weights`` does.
    """
    from .experiment import assemble, resolve
    from .loading import resolve_weights
    from .storage.weights import load_file, load_into

    module = assemble(resolve(name, settings(overrides, "model"))).build_model()
    if pretrained:
        spec = name if pretrained is True else str(pretrained)
        load_into(module, load_file(resolve_weights(spec)), source=spec)
    return module


def read_image(assembled: Assembled, path: Path) -> torch.Tensor:
    """The dataset's ``load_image`` (``zoo predict``, ``Loaded.load_image``); whatever it raises
    becomes one line naming plugin and file.

    Unreadable files and decompression bombs (PIL's warning, too) are bad input (exit 2); any
    other exception is the plugin's failure (exit 1).
    """
    import warnings

    from PIL import Image

    from .api import Dataset

    entry = catalog().get("datasets", assembled.config.data)
    who = f"plugin '{entry.plugin}' (dataset {entry.name})"
    if type(assembled.dataset).load_image is Dataset.load_image:
        raise UsageError(f"{who} cannot read image files")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            x = assembled.dataset.load_image(path)
    except ZooError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise UsageError(f"{who} cannot read {path}: {e}") from None
    except Exception as e:
        raise ZooError(f"{who} failed on {path}: {type(e).__name__}: {e}") from None
    expected = tuple(assembled.spec.input_shape)
    shape = tuple(getattr(x, "shape", ()))
    if shape != expected:
        raise ZooError(f"{who} returned shape {shape} for {path}; expected {expected}")
    return x


def ensure_predicts(task_cls: type, name: str) -> None:
    """A task without ``decode`` (autoencoders, GANs) has no per-image answer to give."""
    from .api import Task

    if task_cls.decode is Task.decode:
        raise UsageError(f"{name} cannot predict (no per-image output); try zoo sample / zoo eval")


@dataclass
class Loaded:
    """A model ready to use: ``.model`` (eval mode), its weight ``.card``, its ``.config``, and
    the preprocessing it was trained with (``.load_image``, ``.predict``)."""

    assembled: Assembled
    model: nn.Module
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the local weight file (None: untrained)

    @property
    def config(self) -> RunConfig:
        return self.assembled.config

    @property
    def name(self) -> str:
        return self.config.experiment

    def load_image(self, path: str | Path) -> torch.Tensor:
        """One image file converted exactly as training inputs are."""
        path = Path(path)
        check_regular(path, "image")  # absent, a folder, a FIFO or /dev/zero: one line, no hang
        return read_image(self.assembled, path)

    def predict(self, images: str | Path | torch.Tensor | Iterable[Any]) -> builtins.list[str]:
        """Decoded predictions (a clock reader: ``"HH:MM"``), one per image.

        ``images``: image files, tensors of one input (the dataset's input shape, e.g. (C, H, W)),
        a batch of them (N, C, H, W), or a list mixing these.
        """
        import torch

        ensure_predicts(type(self.assembled.task), self.name)
        shape = tuple(self.assembled.spec.input_shape)
        inputs = images if isinstance(images, (builtins.list, tuple)) else [images]
        tensors = []
        for item in inputs:
            x = item if isinstance(item, torch.Tensor) else self.load_image(item)
            if tuple(x.shape) == shape:
                tensors.append(x)
            elif tuple(x.shape[1:]) == shape:
                tensors.extend(x)
            else:
                raise UsageError(f"an input of shape {tuple(x.shape)} does not fit {self.name}: "
                                 f"expected {shape} or a batch (N, {', '.join(map(str, shape))})")
        if not tensors:
            return []
        device = next(self.model.parameters(), torch.empty(0)).device
        out: builtins.list[str] = []
        with torch.no_grad():
            for i in range(0, len(tensors), PREDICT_BATCH):
                batch = torch.stack(tensors[i:i + PREDICT_BATCH]).to(device)
                out += self.assembled.task.decode(self.assembled.task.forward(self.model, (batch,)))
        return out

    def __repr__(self) -> str:
        source = self.path or "untrained"
        return f"<zoo.Loaded {self.name} from {source}>"


def load(weights: str | Path, pretrained: bool = True, device: str = "cpu",
         experiment: str | None = None, **overrides: Any) -> Loaded:
    """A trained model with its card and preprocessing: ``weights`` is ``NAME[:TAG]``, a
    ``.safetensors`` file or a URL (``URL#sha256=HEX``). The card says what to build.

    ``pretrained=False`` builds experiment ``weights`` untrained (eval mode, empty card).
    ``experiment`` names the experiment of a file without a card (a ``.pt``). ``device`` is what
    ``--device`` takes: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    """
    from .loading import open_weights
    from .training.runtime import pick_device

    device = str(pick_device(str(device)))  # "auto" resolved, a bad name one clear UsageError
    spec = str(weights)
    if not pretrained:
        from .experiment import assemble, resolve

        assembled = assemble(resolve(spec, settings(overrides, "model")))
        return Loaded(assembled, assembled.build_model().to(device).eval())
    opened = open_weights(experiment, spec, settings(overrides, "model"), device=device)
    return Loaded(opened.assembled, opened.model, opened.card, opened.path)


def predict(model: str | Loaded, images: Any, weights: str | None = None,
            device: str = "cpu") -> builtins.list[str]:
    """``zoo predict`` as a function: ``model`` is a :class:`Loaded` or an experiment name
    (its published weights, or ``weights``)."""
    if isinstance(model, Loaded):
        return model.predict(images)
    loaded = load(weights or model, device=device, experiment=model if weights else None)
    return loaded.predict(images)


# ------------------------------------------------------------------ training


@dataclass
class Run:
    """A finished training run: its directory and ``summary.json``."""

    dir: Path
    summary: dict[str, Any]

    @property
    def weights(self) -> Path:
        return self.dir / "model.safetensors"

    @property
    def test(self) -> dict[str, float]:
        """Test metrics of the final model."""
        return dict(self.summary.get("test", {}))

    def load(self, device: str = "cpu") -> Loaded:
        return load(self.weights, device=device)


def train(name: str, data: str | Path | None = None, out: str | Path | None = None,
          weights: str | None = None, progress: bool | None = False, overwrite: bool = False,
          **settings_: Any) -> Run:
    """``zoo run NAME`` as a function: ``zoo.train("clock.regression", epochs=1, max_steps=5)``.

    Plain keywords are training settings (``epochs``, ``max_steps``, ``batch_size``, ``lr``,
    ``device``…); ``model__width=64`` and the like reach other sections. ``data`` is ``--data``,
    ``out`` the run directory (``overwrite=True`` replaces a finished run there, as
    ``--overwrite``), ``weights`` initial weights (``--weights``).
    """
    from .experiment import resolve
    from .training.loop import train as run_training

    config = resolve(name, settings(settings_, "train"), data_path=None if data is None else str(data))
    summary = run_training(config, Path(out) if out is not None else None, init_weights=weights,
                           progress=progress, overwrite=overwrite)
    if not summary:  # a non-zero rank of a distributed run
        raise UsageError("this process is not the main rank: the run's summary is on rank 0")
    return Run(Path(summary["weights"]).parent, summary)
