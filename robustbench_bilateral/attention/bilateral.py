"""Bilateral attention (variants.md section 2): untied bandwidths, no token-position cross term."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, ValueOperator
from .config import AttentionConfig


def centre(positions: Tensor) -> Tensor:
    """Position vectors (T, P) minus their mean over the T tokens.

    Pairwise distances ``|p_i - p_j|`` do not change; the norms ``|p_j|^2`` entering the fast
    form shrink, so float32 keeps its digits at long sequence lengths.
    """
    return positions - positions.mean(dim=0, keepdim=True)


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|^2`` for a (..., T, n), b (..., S, n) -> (..., T, S), computed from differences."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


HEAD_ALIGN = 8
"""The augmented head width is padded with zero columns to a multiple of HEAD_ALIGN. CUDA's fused
kernels need head dims divisible by 4 (float32) or 8 (half precision), else SDPA takes the math
path; the CPU kernel takes any width but runs whole vector blocks fastest: forward + backward of
``scaled_dot_product_attention`` alone, 6 heads, 2 threads, relative to head dim 64 (T = 197 /
512 / 2048): width 73 (d = 64, P = 8, one constant column) 1.28x / 1.35x / 1.46x, padded to 80
1.27x / 1.22x / 1.23x, width 72 1.14x / 1.15x / 1.15x."""


class BilateralAttention(Attention):
    """Bilateral filter attention, per head:

        logit_ij = -|q_i - k_j|^2 / h_y^2  -  |p_i - p_j|^2 / h_p^2   (plus the causal mask)
        out_i    = sum_j softmax_j(logit_ij) v_j

    ``positions`` (T, P) are the position vectors ``p`` (None drops the position term); they are
    not added to the tokens. ``h_y`` and ``h_p`` are positive and learnable per head, stored as
    ``log_h_y``, ``log_h_p`` (h = exp(log_h)), both initialised to ``(4d)^(1/4)``, the bandwidth
    at which softmax attention is a bilateral filter (variants.md section 1).

    Fast form: with ``p`` centred (``centre``), the logit is the dot product of

        q~_i = [2 q_i / h_y^2,  2 p_i / h_p^2,  1]
        k~_j = [k_j,            p_j,            -|k_j|^2 / h_y^2 - |p_j|^2 / h_p^2]

    up to ``|q_i|^2 / h_y^2 + |p_i|^2 / h_p^2``, constant in j, which the softmax removes. (This is
    variants.md's augmented pair with its two constant columns merged into one.) q~ and k~ have
    width D = d + P + 1, rounded up with zero columns to a multiple of ``HEAD_ALIGN``; ``v`` is
    padded with zeros to D too, so all three share one head dim and
    ``scaled_dot_product_attention`` (scale = 1) runs its fused kernel; the output is sliced back to d.
    Registered as ``bilateral`` in ``attention/__init__.py``.
    """

    consumes_positions = True

    def __init__(self, dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads, config, qkv_bias=qkv_bias)
        log_h0 = math.log((4 * self.head_dim) ** 0.25)
        self.log_h_y = nn.Parameter(torch.full((num_heads,), log_h0))
        self.log_h_p = nn.Parameter(torch.full((num_heads,), log_h0))

    def bandwidths(self) -> tuple[Tensor, Tensor]:
        """(h_y, h_p), each of shape (H,)."""
        return self.log_h_y.exp(), self.log_h_p.exp()

    def logits(self, q: Tensor, k: Tensor, positions: Tensor | None) -> Tensor:
        inv_hy2, inv_hp2 = self._inverse_squared_bandwidths()
        out = -squared_distances(q, k) * inv_hy2
        if positions is not None:
            p = positions.to(q.dtype)
            out = out - squared_distances(p, p) * inv_hp2
        return out

    def operator(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> ValueOperator:
        q_aug, k_aug = self._augment(q, k, positions)
        pad = q_aug.shape[-1] - self.head_dim

        def apply(values: Tensor) -> Tensor:
            out = F.scaled_dot_product_attention(q_aug, k_aug, F.pad(values, (0, pad)), is_causal=causal, scale=1.0)
            return out[..., : self.head_dim]

        return apply

    def _inverse_squared_bandwidths(self) -> tuple[Tensor, Tensor]:
        """(1 / h_y^2, 1 / h_p^2), each shaped (1, H, 1, 1)."""
        return (-2 * self.log_h_y).exp().view(1, -1, 1, 1), (-2 * self.log_h_p).exp().view(1, -1, 1, 1)

    def _augment(self, q: Tensor, k: Tensor, positions: Tensor | None) -> tuple[Tensor, Tensor]:
        """The augmented q~, k~ (B, H, T, D) of the fast form."""
        inv_hy2, inv_hp2 = (factor.to(q.dtype) for factor in self._inverse_squared_bandwidths())
        batch_heads_tokens = q.shape[:-1]
        q_parts = [q * (2 * inv_hy2)]
        k_parts = [k]
        norms = k.pow(2).sum(dim=-1, keepdim=True) * inv_hy2
        if positions is not None:
            p = centre(positions.to(q.dtype))
            q_parts.append(p * (2 * inv_hp2))
            k_parts.append(p)
            norms = norms + p.pow(2).sum(dim=-1, keepdim=True) * inv_hp2
        fill = -(sum(part.shape[-1] for part in q_parts) + 1) % HEAD_ALIGN
        q_parts += [q.new_ones(1), q.new_zeros(fill)]
        k_parts += [-norms, k.new_zeros(fill)]
        return _cat_broadcast(q_parts, batch_heads_tokens), _cat_broadcast(k_parts, batch_heads_tokens)


def _cat_broadcast(parts: list[Tensor], leading: torch.Size) -> Tensor:
    """Concatenate along the last dim after broadcasting every part to ``(*leading, width)``."""
    return torch.cat([part.expand(*leading, part.shape[-1]) for part in parts], dim=-1)
