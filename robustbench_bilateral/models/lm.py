"""A causal language model (pre-LN decoder, tied embeddings) on the same attention modules."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.attention.positions import coords_1d, sinusoidal_1d
from robustbench_bilateral.models.block import build_blocks, init_weights, position_width


class BilatCausalLM(nn.Module):
    """Word-level decoder: ``logits = norm(blocks(embed(ids) [+ positions])) @ E^T`` (E tied).

    Causal masking is always on. Positions follow the variant as in the vision model; sinusoidal
    and coordinate positions are computed for any length (so longer contexts can be evaluated),
    learned ones exist up to ``context_length``.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 128,
        embed_dim: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        attention: AttentionConfig = AttentionConfig(),
    ) -> None:
        super().__init__()
        self.attention_config = attention
        self.context_length = context_length
        self.position_width = position_width(attention, embed_dim, spatial_dims=1)
        self.additive_positions = attention.kernel == "softmax"
        self.tok_embed = nn.Embedding(vocab_size, embed_dim)
        if attention.pos_kernel == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, context_length, embed_dim))
            nn.init.normal_(self.pos_embed, std=0.02)
        self.blocks = build_blocks(embed_dim, depth, num_heads, mlp_ratio, attention)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.normal_(self.tok_embed.weight, std=0.02)
        self.apply(init_weights)

    def positions(self, length: int, device: torch.device) -> Tensor:
        """(length, P) position vectors of positions 0 .. length - 1."""
        kind = self.attention_config.pos_kernel
        if kind == "learned":
            if length > self.context_length:
                raise ValueError(f"learned positions exist up to {self.context_length} tokens, asked for {length}")
            return self.pos_embed[0, :length]
        table = coords_1d(length) if kind == "coords" else sinusoidal_1d(length, self.position_width)
        return table.to(device)

    def embed(self, ids: Tensor) -> Tensor:
        """Token embeddings (B, T, C), before positions."""
        return self.tok_embed(ids)

    def forward_embeddings(self, embeddings: Tensor) -> Tensor:
        """Logits (B, T, V) from token embeddings, so attacks can perturb the embeddings."""
        positions = self.positions(embeddings.shape[1], embeddings.device)
        x = embeddings + positions if self.additive_positions else embeddings
        for block in self.blocks:
            x = block(x, positions=positions, causal=True)
        return self.norm(x) @ self.tok_embed.weight.t()

    def forward(self, ids: Tensor) -> Tensor:
        """ids: (B, T) int64 -> next-token logits (B, T, V)."""
        return self.forward_embeddings(self.embed(ids))
