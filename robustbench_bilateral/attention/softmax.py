"""Softmax attention (the baseline kernel ``K_SA``) on PyTorch's fused kernel.

``a_ij = softmax_j(q_i . k_j / sqrt(d))``; positions, if any, were added to the tokens at the
input, so ``positions`` is ignored here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from robustbench_bilateral.attention.base import Attention, Mixer
from robustbench_bilateral.attention.registry import register_kernel


@register_kernel("softmax")
class SoftmaxAttention(Attention):
    def mixer(self, q: Tensor, k: Tensor, positions: Tensor | None, causal: bool) -> Mixer:
        return lambda values: F.scaled_dot_product_attention(q, k, values, is_causal=causal)
