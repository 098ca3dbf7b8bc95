"""What a data source is: its metadata and a loader for each of its splits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import datasets

from robustbench_bilateral.enums import Task


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
    loaders: Mapping[str, Callable[[], datasets.Dataset]] = field(repr=False)

    def split(self, name: str) -> datasets.Dataset:
        """Load one split; an unknown split name is an input error that lists the valid ones."""
        from robustbench_bilateral.errors import InputError

        if name not in self.loaders:
            raise InputError(
                f"dataset '{self.meta.name}' has no split '{name}': choose one of {', '.join(self.loaders)}"
            )
        return self.loaders[name]()


@dataclass(frozen=True)
class SourceEntry:
    """A registered data source: how to open it and the line ``bilat-eval list datasets`` shows.

    ``argument`` is empty for a source named alone (``fmnist``), opened by ``load()``; otherwise it
    is the placeholder of what follows the prefix (``npy:PATH``, ``hf:NAME[:CONFIG]``), and
    ``load(spec, text)`` receives the whole name and the text after the first ``:``.
    """

    load: Callable[..., DataSource]
    summary: str
    argument: str = ""

    @property
    def kind(self) -> str:
        """``built in`` or ``your files``."""
        return "your files" if self.argument else "built in"

    def usage(self, name: str) -> str:
        """How a user writes this source: ``fmnist`` or ``npy:PATH``."""
        return f"{name}:{self.argument}" if self.argument else name
