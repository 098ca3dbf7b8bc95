"""The pre-LN transformer block shared by the vision and language models, and its position input."""

from __future__ import annotations

from torch import Tensor, nn
from timm.layers import Mlp

from robustbench_bilateral.attention import AttentionConfig, build_attention
from robustbench_bilateral.errors import InputError


class Block(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, with timm's parameter names."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, config: AttentionConfig, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = build_attention(dim, num_heads, config, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor, positions: Tensor | None = None, causal: bool = False) -> Tensor:
        x = x + self.attn(self.norm1(x), positions=positions, causal=causal)
        return x + self.mlp(self.norm2(x))


def build_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float, config: AttentionConfig) -> nn.ModuleList:
    """``depth`` blocks; those outside ``config.layers`` get plain softmax attention."""
    plain = AttentionConfig(kernel="softmax", pos_kernel=config.pos_kernel)
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio, config if config.applies_to(i) else plain) for i in range(depth)
    )


def position_width(config: AttentionConfig, dim: int, spatial_dims: int) -> int:
    """Width P of the position vectors: the model width when added to tokens or learned,
    ``pos_dim`` for sinusoidal features in the kernel, 1 or 2 for raw coordinates."""
    if config.pos_kernel == "coords":
        if config.kernel == "softmax":
            raise InputError("pos_kernel 'coords' needs the bilateral kernel: use sinusoidal or learned with softmax")
        return spatial_dims
    if config.pos_kernel == "learned" or config.kernel == "softmax":
        return dim
    return config.pos_dim


def init_weights(module: nn.Module) -> None:
    """timm's ViT initialisation: truncated normal (std 0.02) linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
