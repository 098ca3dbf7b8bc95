"""Position vectors ``p_i`` of tokens: fixed sinusoidal features, centred grid coordinates, or a table.

- ``sinusoidal_1d(n, dim)``: ``p_i = [sin(i w_0), cos(i w_0), sin(i w_1), ...]`` with
  ``w_k = 10000^(-2k/dim)``; ``|p_i - p_j|^2 = sum_k 2 (1 - cos((i - j) w_k))`` depends on the
  offset alone, so it extrapolates to longer sequences.
- ``sinusoidal_2d(rows, cols, dim)``: half the features encode the row, half the column.
- ``coords_1d`` / ``coords_2d``: raw grid coordinates centred on the grid's middle (squared
  distances of centred values keep float32 digits at long lengths), in grid steps.
A class token takes the reserved position ``0`` (the zero vector): for sinusoidal features that
is equally far from every patch, for centred coordinates it is the grid's centre.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sinusoidal_1d(length: int, dim: int, offset: int = 0) -> Tensor:
    """(length, dim) sin/cos features of positions ``offset .. offset + length - 1``."""
    index = torch.arange(offset, offset + length, dtype=torch.float64).unsqueeze(1)
    frequency = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = index * frequency
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, dim).float()


def sinusoidal_2d(rows: int, cols: int, dim: int) -> Tensor:
    """(rows * cols, dim) features of a row-major grid: row features, then column features."""
    row = sinusoidal_1d(rows, dim // 2).repeat_interleave(cols, dim=0)
    col = sinusoidal_1d(cols, dim // 2).repeat(rows, 1)
    return torch.cat([row, col], dim=1)


def coords_1d(length: int) -> Tensor:
    """(length, 1) positions ``i - (length - 1) / 2``."""
    return (torch.arange(length, dtype=torch.float32) - (length - 1) / 2).unsqueeze(1)


def coords_2d(rows: int, cols: int) -> Tensor:
    """(rows * cols, 2) centred (row, column) coordinates of a row-major grid."""
    r, c = torch.meshgrid(coords_1d(rows)[:, 0], coords_1d(cols)[:, 0], indexing="ij")
    return torch.stack([r.flatten(), c.flatten()], dim=1)


def with_class_token(table: Tensor) -> Tensor:
    """Prepend the class token's reserved position (the zero vector)."""
    return torch.cat([table.new_zeros(1, table.shape[1]), table])
