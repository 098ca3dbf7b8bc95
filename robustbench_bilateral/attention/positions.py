"""Position vectors: fixed sinusoidal encodings, raw coordinates, and the plan a model follows.

A model lays its tokens on an axis grid ``shape``: ``(length,)`` for text, ``(rows, cols)`` for
image patches in row-major order, optionally preceded by a class token at a reserved position.

- sinusoidal: per axis ``s(t) = [sin(w_0 t) .. sin(w_(F-1) t), cos(w_0 t) .. cos(w_(F-1) t)]``,
  ``w_k = base^(-k / F)``; in 2-D the first half of the vector encodes the row, the second half
  the column. The class token gets the zero vector, equidistant from every patch
  (``|0 - p_j|^2 = F`` per axis, as every ``p_j`` has unit norm per sin/cos pair).
- coords: raw coordinates (row, column) in units of one patch, or the token index for text; the
  class token sits at the grid centre.
- learned: a trained table (the model owns it as ``pos_embed``).

Additive kernels (softmax) add encodings as wide as the model (``embed_dim``) to the tokens, with
the Transformer/MAE base 10000. Kernels that consume positions get vectors of width P
(``pos_dim``): sinusoidal default 8, with base = the longest axis length so the slowest
wavelength ``2 pi base^((F-1)/F)`` spans the axis even with few frequencies; coords 1 or 2 (the
grid's axes); learned default ``embed_dim``, so a DeiT ``pos_embed`` loads as the table. The fast
bilateral form costs about (d + P + 1) / d times softmax attention per head, so a narrow P
(e.g. ``pos_dim=8``) keeps learned positions cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import AttentionConfig
from .registry import kernel_class

ADDITIVE_BASE = 10000.0
DEFAULT_POS_DIM = 8


def sincos(index: Tensor, dim: int, base: float) -> Tensor:
    """Sinusoidal encoding (N, dim) of positions ``index`` (N,): sines then cosines of ``w_k t``."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even width per axis, got {dim}")
    freqs = base ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = index.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def grid_index(shape: tuple[int, ...]) -> Tensor:
    """Integer coordinates (N, len(shape)) of a row-major grid of ``shape``."""
    axes = torch.meshgrid(*(torch.arange(n) for n in shape), indexing="ij")
    return torch.stack([a.reshape(-1) for a in axes], dim=1)


def sinusoidal_positions(shape: tuple[int, ...], dim: int, base: float, cls_token: bool = False) -> Tensor:
    """Sinusoidal encodings (N, dim) of a grid, ``dim / len(shape)`` per axis; class token = zeros."""
    if dim % len(shape):
        raise ValueError(f"width {dim} does not split over {len(shape)} axes")
    index = grid_index(shape)
    table = torch.cat([sincos(index[:, a], dim // len(shape), base) for a in range(len(shape))], dim=1)
    return torch.cat([table.new_zeros(1, dim), table]) if cls_token else table


def coord_positions(shape: tuple[int, ...], cls_token: bool = False) -> Tensor:
    """Raw grid coordinates (N, len(shape)) as floats; class token at the grid centre."""
    table = grid_index(shape).float()
    centre = torch.tensor([(n - 1) / 2 for n in shape]).view(1, -1)
    return torch.cat([centre, table]) if cls_token else table


@dataclass(frozen=True)
class PositionPlan:
    """How a model feeds positions to its blocks.

    additive: True = add a (T, dim) table to the tokens at the input (kernels that ignore
              ``positions``); False = pass the (T, dim) vectors to every block.
    kind:     ``sinusoidal`` | ``coords`` | ``learned``.
    dim:      width of the position vectors.
    base:     sinusoidal base.
    """

    additive: bool
    kind: str
    dim: int
    base: float

    @property
    def learned(self) -> bool:
        return self.kind == "learned"

    @property
    def pos_dim(self) -> int | None:
        """The ``pos_dim`` argument that rebuilds this plan (None for additive plans)."""
        return None if self.additive else self.dim

    def apply(self, tokens: Tensor, table: Tensor) -> tuple[Tensor, Tensor | None]:
        """(tokens for the first block, positions for every block): ``(tokens + table, None)``
        for additive plans, ``(tokens, table)`` otherwise; ``table`` is (T, dim)."""
        return (tokens + table, None) if self.additive else (tokens, table)

    def table(self, shape: tuple[int, ...], cls_token: bool = False) -> Tensor:
        """Fixed position vectors (N, dim) of a grid (sinusoidal or coords plans only)."""
        if self.kind == "sinusoidal":
            return sinusoidal_positions(shape, self.dim, self.base, cls_token)
        if self.kind == "coords":
            return coord_positions(shape, cls_token)
        raise ValueError("learned positions have no fixed table")

    def init_learned(self, num_tokens: int) -> Tensor:
        """Initial learned table (1, N, dim): truncated normal, std 0.02 (timm's ``pos_embed``)."""
        return torch.nn.init.trunc_normal_(torch.empty(1, num_tokens, self.dim), std=0.02)


def plan_positions(config: AttentionConfig, embed_dim: int, shape: tuple[int, ...], pos_dim: int | None) -> PositionPlan:
    """The position plan of a model of width ``embed_dim`` on a grid ``shape`` for ``config``.

    Additive kernels use width ``embed_dim`` (``pos_dim`` must be None) and cannot use coords;
    consuming kernels use width ``pos_dim``, by default ``DEFAULT_POS_DIM`` (sinusoidal) or
    ``embed_dim`` (learned); coords always have width ``len(shape)``.
    """
    if not kernel_class(config.kernel).consumes_positions:
        if pos_dim is not None:
            raise ValueError(f"pos_dim applies only to kernels that take positions in every layer, not {config.kernel!r}")
        if config.pos_kernel == "coords":
            raise ValueError(f"coords positions cannot be added to the tokens of a {config.kernel!r} model")
        return PositionPlan(True, config.pos_kernel, embed_dim, ADDITIVE_BASE)
    if config.pos_kernel == "coords":
        if pos_dim not in (None, len(shape)):
            raise ValueError(f"coords positions have width {len(shape)} on this grid, got pos_dim={pos_dim}")
        dim = len(shape)
    else:
        dim = pos_dim or (embed_dim if config.pos_kernel == "learned" else DEFAULT_POS_DIM)
    return PositionPlan(False, config.pos_kernel, dim, float(max(shape)))
