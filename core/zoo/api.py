"""The interfaces a plugin implements: Task, Dataset, Model, and the Experiment recipe.

These classes import no torch: registering and listing names must stay fast. Implementations
import torch inside their methods (or keep their ``nn.Module`` code in a module imported there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    Batch = Any  # whatever the dataset's items collate to, usually a tuple of tensors


@dataclass
class NoConfig:
    """Settings of a component that has none."""


@dataclass(frozen=True)
class Spec:
    """What a model must fit: the dataset's sample shape and the task's named outputs."""

    input_shape: tuple[int, ...]
    outputs: Mapping[str, tuple[int, ...]]


class Component:
    """Base of Task, Dataset and Model: a typed ``Config`` dataclass and a docstring."""

    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()


class Task(Component):
    """What is predicted and how it is judged. Knows no architecture.

    The trainer runs, for every batch, one phase per name in ``phases``: ``loss(model, batch,
    phase)`` → backward → that phase's optimizer. A classifier has the single phase ``"main"``; a
    GAN declares ``("discriminator", "generator")`` and picks each phase's parameters in
    ``parameters``. That is the whole multi-optimizer contract.
    """

    main_metric: ClassVar[str] = "loss"
    higher_is_better: ClassVar[bool] = False
    phases: ClassVar[tuple[str, ...]] = ("main",)  # one optimizer each

    def outputs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Named outputs and their per-sample shapes that ``forward`` returns."""
        raise NotImplementedError

    def forward(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Run the model on a batch; the default feeds the batch's first element."""
        out = model(batch[0])
        if isinstance(out, Mapping):
            return dict(out)
        (name,) = self.outputs(tuple(batch[0].shape[1:]))
        return {name: out}

    def loss(
        self, model: nn.Module, batch: Batch, phase: str = "main"
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar to minimise in ``phase`` and named values to log."""
        raise NotImplementedError

    def parameters(self, model: nn.Module, phase: str = "main") -> Iterable[torch.nn.Parameter]:
        """The parameters ``phase``'s optimizer updates."""
        return model.parameters()

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        """Metrics over a whole split (``main_metric`` among them); batches come on the device."""
        raise NotImplementedError

    def decode(self, outputs: Mapping[str, torch.Tensor]) -> list[str]:
        """Human-readable predictions, one per sample (e.g. ``"11:55"``)."""
        raise NotImplementedError

    def predict(self, outputs: Mapping[str, torch.Tensor], top: int = 1
                ) -> list[list[tuple[str, float | None]]]:
        """Per sample, up to ``top`` readings with their probabilities, for ``zoo predict``.

        The first reading is always what ``decode`` says (what ``zoo eval`` scores); the others
        follow, most likely first. A probability is ``None`` where the task has no honest one
        (a plain regression), and then only the decoded reading is given.
        """
        return [[(text, None)] for text in self.decode(outputs)]

    def figures(self, model: nn.Module, batches: Iterable[Batch], out_dir: Path) -> list[Path]:
        """Write figures of a trained model into ``out_dir``; the default writes none."""
        return []


class Dataset(Component):
    """Where samples come from: deterministic train/val/test splits and the sample shape."""

    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    # What a ``--data`` folder must hold for this dataset, in a few words: the error for a folder
    # that no candidate dataset ``accepts`` lists each one's layout.
    data_layout: ClassVar[str] = ""

    @classmethod
    def accepts(cls, path: Path) -> bool:
        """Whether ``--data path`` looks like this dataset's files (cheap: names, not contents).

        Used when an experiment offers several datasets for ``--data`` (``data_path_dataset`` a
        tuple): the first that accepts the path is used.
        """
        return False

    def input_shape(self) -> tuple[int, ...]:
        """Shape of one model input, e.g. ``(1, 150, 150)``; must not need the data on disk."""
        raise NotImplementedError

    def split(self, name: str, seed: int) -> torch.utils.data.Dataset:
        """A map-style dataset for ``name``; the same seed gives the same split everywhere."""
        raise NotImplementedError

    def device_batch(self, split: str, seed: int, indices: torch.Tensor) -> Batch:
        """Optional: build the batch of samples ``indices`` directly on ``indices.device``.

        A dataset that can generate its samples with tensor ops (no files, no PIL) sets
        ``on_device = True`` and implements this; the trainer then skips the DataLoader and its
        workers and asks for each batch on the GPU, in the same resumable order.
        """
        raise NotImplementedError

    on_device: ClassVar[bool] = False

    def load_image(self, path: Path) -> torch.Tensor:
        """One image file converted exactly as training inputs are (for ``zoo predict``)."""
        raise NotImplementedError

    def skipped(self, split: str, seed: int) -> int:
        """How many samples of ``split`` could not be read and were left out (each already
        reported in one line on stderr); ``zoo eval`` reports the count. Default: none."""
        return 0


class Model(Component):
    """Builds an ``nn.Module`` that fits a Spec."""

    def build(self, spec: Spec) -> nn.Module:
        raise NotImplementedError


@dataclass(frozen=True)
class Experiment:
    """A named recipe: task + dataset + model (by name) + settings in ``--set`` syntax.

    ``settings`` maps ``"train.epochs"``, ``"model.width"``… to values; ``data_path_dataset``
    names the dataset used instead when the user passes ``--data DIR`` and the default dataset
    takes no ``root`` (e.g. synthetic clocks → the assignment's .npy files). A tuple of names
    offers several: the first whose ``Dataset.accepts(DIR)`` is true is used.
    """

    name: str
    task: str
    dataset: str
    model: str
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    data_path_dataset: str | tuple[str, ...] | None = None

    @property
    def data_path_datasets(self) -> tuple[str, ...]:
        """``data_path_dataset`` as a tuple (empty when ``--data`` has no dataset to switch to)."""
        if not self.data_path_dataset:
            return ()
        if isinstance(self.data_path_dataset, str):
            return (self.data_path_dataset,)
        return tuple(self.data_path_dataset)
