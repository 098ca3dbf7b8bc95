"""Per-example random streams, so random threats do not depend on batch size or batch order.

Example ``i`` of an evaluation draws all its random numbers from its own ``torch.Generator``
seeded by ``example_seed(seed, i)``; a batch stacks the draws of its examples. The same
(seed, example index) therefore gives the same noise whether the example sits in a batch of 1 or
of 64, on any rank of a sharded run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

_MASK64 = (1 << 64) - 1


def example_seed(seed: int, index: int) -> int:
    """Mix ``seed`` and an example ``index`` into a 63-bit seed (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


class ExampleRNG:
    """Random draws for a batch of examples, one independent CPU generator per example.

    Every method returns a tensor of shape ``(N, *shape)`` on ``device``: row ``n`` comes only
    from example ``indices[n]``'s generator, in the order of calls.
    """

    def __init__(self, seed: int, indices: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.seed = seed
        self.indices = [int(i) for i in indices]
        self.device = torch.device(device)
        self._generators = []
        for index in self.indices:
            generator = torch.Generator()
            generator.manual_seed(example_seed(seed, index))
            self._generators.append(generator)

    def rows(self, start: int, stop: int) -> ExampleRNG:
        """The examples ``start .. stop - 1`` of this batch, drawing from the same generators: a
        draw there advances them here too."""
        part = type(self).__new__(type(self))
        part.seed, part.indices, part.device = self.seed, self.indices[start:stop], self.device
        part._generators = self._generators[start:stop]
        return part

    def __len__(self) -> int:
        return len(self._generators)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform draws in [0, 1)."""
        return self._fill(torch.float32, shape, lambda g, row: torch.rand(shape, generator=g, out=row))

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal draws."""
        return self._fill(torch.float32, shape, lambda g, row: torch.randn(shape, generator=g, out=row))

    def randint(self, low: int, high: int, *shape: int) -> torch.Tensor:
        """Integers uniform in [low, high)."""
        return self._fill(torch.int64, shape, lambda g, row: torch.randint(low, high, shape, generator=g, out=row))

    def _fill(
        self, dtype: torch.dtype, shape: tuple[int, ...], draw: Callable[[torch.Generator, torch.Tensor], object]
    ) -> torch.Tensor:
        """An (N, *shape) CPU tensor whose row n ``draw`` fills from generator n, moved to ``device``.

        Each row is drawn in place (the numbers a plain per-generator call would give), so no
        per-example tensors are stacked.
        """
        rows = torch.empty((len(self._generators), *shape), dtype=dtype)
        for generator, row in zip(self._generators, rows):
            draw(generator, row)
        return rows.to(self.device)
