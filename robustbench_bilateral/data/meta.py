"""What a data source is: its metadata and a loader for each of its splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum

import datasets


class Task(str, Enum):
    """The two kinds of evaluation the harness runs."""

    IMAGE_CLASSIFICATION = "image-classification"
    LANGUAGE_MODELING = "language-modeling"


@dataclass(frozen=True)
class DataMeta:
    """Metadata a model and a report need about a data source.

    ``mean``/``std`` are per-channel normalisation constants for pixels in [0, 1]; models hold
    them and normalise inside ``forward``. Image fields are empty for text sources.
    """

    name: str
    task: Task
    splits: tuple[str, ...]
    provided_by: str
    classes: tuple[str, ...] = ()
    image_size: int = 0
    channels: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        """JSON-safe form, as stored in checkpoints and result rows."""
        out = asdict(self)
        out["task"] = self.task.value
        return out


@dataclass(frozen=True)
class DataSource:
    """A named source: metadata plus one loader per split returning a ``datasets.Dataset``."""

    meta: DataMeta
    loaders: dict[str, Callable[[], datasets.Dataset]] = field(repr=False)

    def split(self, name: str) -> datasets.Dataset:
        """Load one split; an unknown split name is an input error that lists the valid ones."""
        from robustbench_bilateral.errors import InputError

        if name not in self.loaders:
            raise InputError(
                f"dataset '{self.meta.name}' has no split '{name}': choose one of {', '.join(self.loaders)}"
            )
        return self.loaders[name]()
