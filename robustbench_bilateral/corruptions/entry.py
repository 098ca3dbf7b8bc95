"""The entries of the corruption and noise registries, each declared once next to its function.

A corruption carries its group, its flags and its severity tables, five rows each (row k for
severity k + 1): ``small`` (CIFAR-10-C), optional ``medium`` (Tiny-ImageNet-C) and ``large``
(ImageNet-C); ``severity`` states which image sizes each serves. Its function gets ``level = (row, scale)``, the row for the batch's image size
and the pixel scale for the row's [px] entries::

    @corruption("digital", is_random=False, held_out=True, small=(6, 5, 4, 3, 2), large=(5, 4, 3, 2, 1))
    def posterize(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
        steps = 2 ** level.row
        return (images * steps).floor() / steps

An entry is called like the function it wraps, with the severity (or the noise strength).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from robustbench_bilateral.corruptions.chunking import in_chunks
from robustbench_bilateral.corruptions.severity import SEVERITIES, Level, level
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.rng import ExampleRNG

GROUPS = ("noise", "blur", "weather", "digital")

CorruptionFn = Callable[[torch.Tensor, Level, ExampleRNG], torch.Tensor]
NoiseFn = Callable[[torch.Tensor, float, ExampleRNG], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """One common corruption: ``fn(images, level, rng)`` with ``level`` from ``small``, ``medium``
    (None: ``small`` serves its sizes too) or ``large``.

    ``is_random``: it draws from the rng (otherwise the output depends on the images only);
    ``held_out``: outside the 15 of ImageNet-C (set ``held-out``, not ``imagenet-c``);
    ``colour_only``: it needs RGB input and raises ValueError on grey images;
    ``whole_batch``: it runs on the whole batch at once, because part of its cost is per call
    (loops over image rows), not per example; the others run in chunks (``chunking.in_chunks``).
    A group outside ``GROUPS`` or a table without exactly 5 rows is a ``FieldError``.
    """

    name: str
    group: str
    fn: CorruptionFn
    small: tuple
    large: tuple
    is_random: bool
    held_out: bool = False
    colour_only: bool = False
    medium: tuple | None = None
    whole_batch: bool = False

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise FieldError("group", f"corruption {self.name!r} has group {self.group!r}: use one of {', '.join(GROUPS)}")
        for field, table in (("small", self.small), ("medium", self.medium), ("large", self.large)):
            if field == "medium" and table is None:
                continue
            if not isinstance(table, tuple) or len(table) != len(SEVERITIES):
                raise FieldError(field, f"corruption {self.name!r} needs a tuple of 5 rows, one per severity 1-5, got {table!r}")

    def __call__(self, images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
        """The images at ``severity`` (1..5): ``fn(images, level(small, medium, large, severity, images), rng)``,
        in chunks unless ``whole_batch``."""
        row = level(self.small, self.medium, self.large, severity, images)
        if self.whole_batch:
            return self.fn(images, row, rng)
        return in_chunks(lambda part, part_rng: self.fn(part, row, part_rng), images, rng)


def corruption(
    group: str,
    *,
    small: tuple,
    large: tuple,
    is_random: bool,
    held_out: bool = False,
    colour_only: bool = False,
    medium: tuple | None = None,
    whole_batch: bool = False,
) -> Callable[[CorruptionFn], Corruption]:
    """Decorator: the ``Corruption`` named after the decorated function, with these tables and flags."""
    return lambda fn: Corruption(fn.__name__, group, fn, small, large, is_random, held_out, colour_only, medium, whole_batch)


@dataclass(frozen=True)
class Noise:
    """An additive noise threat ``fn(images, strength, rng)``; ``strength`` is its ``unit``, at
    most ``max_strength`` where it has a bound."""

    name: str
    fn: NoiseFn
    unit: str
    max_strength: float | None = None

    def __call__(self, images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
        """``fn(images, strength, rng)``, unchecked."""
        return self.fn(images, strength, rng)


def additive_noise(name: str, unit: str, max_strength: float | None = None) -> Callable[[NoiseFn], Noise]:
    """Decorator: the ``Noise`` ``name`` made of the decorated function."""
    return lambda fn: Noise(name, fn, unit, max_strength)
