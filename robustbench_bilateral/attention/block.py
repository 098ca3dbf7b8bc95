"""Pre-LN transformer block hosting one registered attention module, and the stack of blocks."""

from __future__ import annotations

from timm.layers import LayerNorm, Mlp
from torch import Tensor, nn

from .config import AttentionConfig
from .registry import build_attention

PLAIN = AttentionConfig()


class Block(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, with timm's ``Block`` parameter names."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, config: AttentionConfig, *, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = build_attention(dim, num_heads, config, qkv_bias=qkv_bias)
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: Tensor, positions: Tensor | None = None, causal: bool = False) -> Tensor:
        x = x + self.attn(self.norm1(x), positions, causal)
        return x + self.mlp(self.norm2(x))


def build_blocks(
    depth: int, dim: int, num_heads: int, mlp_ratio: float, config: AttentionConfig, *, qkv_bias: bool = True
) -> nn.ModuleList:
    """``depth`` blocks; block i uses ``config`` if ``config.applies_to(i)``, else plain softmax."""
    outside = [i for i in config.layers or () if i >= depth]
    if outside:
        raise ValueError(f"attention layers {outside} do not exist in a model of depth {depth}")
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio, config if config.applies_to(i) else PLAIN, qkv_bias=qkv_bias)
        for i in range(depth)
    )
