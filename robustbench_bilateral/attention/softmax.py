"""Softmax attention (the baseline kernel K_SA, variants.md section 1)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Attention, ValueOperator


class SoftmaxAttention(Attention):
    """``a_ij = softmax_j(q_i . k_j / sqrt(d))``.

    Positions are added to the tokens at the model input (``x_i = e_i + p_i``), so this layer
    ignores ``positions``. With identity projections its kernel is
    ``K_SA = exp((y_i + p_i).(y_j + p_j) / sqrt(d))``. Registered as ``softmax`` in ``attention/__init__.py``.
    """

    def operator(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> ValueOperator:
        return lambda values: F.scaled_dot_product_attention(q, k, values, is_causal=causal)

    def logits(self, q: Tensor, k: Tensor, positions: Tensor | None) -> Tensor:
        return q @ k.transpose(-2, -1) * self.head_dim**-0.5
