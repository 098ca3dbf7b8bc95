"""Bilateral attention: a Gaussian kernel in content and in position, with untied bandwidths.

Per head, with ``q_i``, ``k_j`` the projected content and ``p_i`` the position vectors::

    logit_ij = -|q_i - k_j|^2 / h_y^2 - |p_i - p_j|^2 / h_p^2     (plus the causal mask)
    out_i    = sum_j softmax_j(logit_ij) v_j

``h_y`` and ``h_p`` are learnable per head (``h^2 = exp(log_h2)``), both initialised to
``(4d)^(1/4)``, the bandwidth at which softmax attention is a bilateral filter (variants.md, 1).

Fast form: dropping the terms constant in j (they cancel in the softmax), the logit is the dot
product of augmented vectors::

    q~_i = [2 q_i / h_y^2, 2 p_i / h_p^2, 1]
    k~_j = [k_j, p_j, -|k_j|^2 / h_y^2 - |p_j|^2 / h_p^2]

(the two constant columns of the textbook form ``[.., 1, .., 1]`` merged into one), so the layer
runs on ``scaled_dot_product_attention`` with ``scale=1``; values are zero-padded to the same
head width ``d + P + 1`` (the fused kernel needs one width) and the output sliced back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustbench_bilateral.attention.base import Attention, Mixer
from robustbench_bilateral.attention.config import AttentionConfig
from robustbench_bilateral.attention.registry import register_kernel


def initial_log_h2(head_dim: int) -> float:
    """``log h^2`` for ``h = (4d)^(1/4)``, i.e. ``h^2 = sqrt(4d)``."""
    return math.log(math.sqrt(4 * head_dim))


@register_kernel("bilateral")
class BilateralAttention(Attention):
    def __init__(self, dim: int, num_heads: int, config: AttentionConfig, *, qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads, config, qkv_bias=qkv_bias)
        start = initial_log_h2(self.head_dim)
        self.log_h2_content = nn.Parameter(torch.full((num_heads,), start))
        self.log_h2_position = nn.Parameter(torch.full((num_heads,), start))

    def bandwidths(self) -> tuple[Tensor, Tensor]:
        """``(h_y^2, h_p^2)`` per head, shape (H,)."""
        return self.log_h2_content.exp(), self.log_h2_position.exp()

    def mixer(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> Mixer:
        if positions is None:
            raise ValueError("bilateral attention needs position vectors (T, P)")
        h2_content, h2_position = (h.view(1, -1, 1, 1).to(q.dtype) for h in self.bandwidths())
        batch, heads, length, width = q.shape
        p = positions.to(q.dtype).view(1, 1, length, -1)
        expand = (batch, heads, -1, -1)
        q_aug = torch.cat([2 * q / h2_content, (2 * p / h2_position).expand(expand), q.new_ones(batch, heads, length, 1)], -1)
        squares = k.pow(2).sum(-1, keepdim=True) / h2_content + p.pow(2).sum(-1, keepdim=True) / h2_position
        k_aug = torch.cat([k, p.expand(expand), -squares], -1)
        pad = q_aug.shape[-1] - width

        def mix(values: Tensor) -> Tensor:
            out = F.scaled_dot_product_attention(q_aug, k_aug, F.pad(values, (0, pad)), is_causal=causal, scale=1.0)
            return out[..., :width]

        return mix
