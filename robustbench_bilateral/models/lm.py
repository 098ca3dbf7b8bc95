"""Causal word-level language model hosting any attention variant (``bilat_lm``)."""

from __future__ import annotations

import math
from typing import Any, Unpack

import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import AttentionConfig, as_config
from .stack import AttentionModel, StackKwargs

LM_NAME = "bilat_lm"


class CausalLM(AttentionModel):
    """Pre-LN causal decoder with tied input/output embeddings; the causal mask is always on.

    ``embed(ids) = sqrt(C) * E[ids]`` with ``E`` (``tok_embed.weight``, V x C) initialised
    N(0, 1/C), so token embeddings start at unit RMS; ``logits = norm(h) E^T``.
    Positions as in ``attention.positions``: 1-D sinusoidal / learned encodings of width C added
    to the embeddings for kernels that ignore ``positions`` (softmax), or (T, P) vectors passed to
    every block for kernels that consume them (bilateral; P = ``pos_dim``). Fixed positions are
    tabled once for ``context_length`` tokens; longer inputs are encoded on the fly (learned
    positions cannot go past ``context_length``). ``stack`` sets the shape of the blocks
    (``StackKwargs``), by default dim 256, depth 4, 4 heads, mlp ratio 4.
    """

    STACK_DEFAULTS = StackKwargs(embed_dim=256, depth=4, num_heads=4, mlp_ratio=4.0)
    pos_table: Tensor

    def __init__(
        self, *, attention: AttentionConfig, vocab_size: int, context_length: int = 128, **stack: Unpack[StackKwargs]
    ) -> None:
        super().__init__()
        self.init_stack(attention, (context_length,), dict(vocab_size=vocab_size, context_length=context_length), stack)
        self.model_name = LM_NAME
        self.context_length = context_length
        embed_dim = self.model_kwargs["embed_dim"]
        self.tok_embed = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.tok_embed.weight, std=embed_dim**-0.5)
        if self.position_plan.learned:
            self.pos_embed = nn.Parameter(self.position_plan.init_learned(context_length))
        else:
            self.register_buffer("pos_table", self.position_plan.table((context_length,)), persistent=False)
        self.add_blocks()

    def embed(self, ids: Tensor) -> Tensor:
        """Token embeddings (B, T, C) of ids (B, T), before positions."""
        return self.tok_embed(ids) * math.sqrt(self.tok_embed.embedding_dim)

    def forward(self, ids: Tensor, tail: int | None = None) -> Tensor:
        """Token ids (B, T) int64 -> next-token logits (B, T, V), or of the last ``tail`` positions (B, tail, V)."""
        return self.forward_embeddings(self.embed(ids), tail)

    def forward_embeddings(self, emb: Tensor, tail: int | None = None) -> Tensor:
        """Token embeddings (B, T, C) (as from ``embed``, possibly perturbed) -> logits (B, T, V),
        or only those of the last ``tail`` positions (B, tail, V), which saves the output layer's cost."""
        x, positions = self.position_plan.apply(emb, self._positions(emb.shape[1]).to(emb.dtype))
        for block in self.blocks:
            x = block(x, positions, causal=True)
        if tail is not None:
            x = x[:, x.shape[1] - tail :]
        return F.linear(self.norm(x), self.tok_embed.weight)

    def mean_embedding_norm(self) -> float:
        """``mean over the vocabulary v of ||embed(v)||_2``: the scale of embedding-space radii."""
        return float(self.tok_embed.weight.detach().norm(dim=1).mean()) * math.sqrt(self.tok_embed.embedding_dim)

    def _positions(self, length: int) -> Tensor:
        """Position vectors (length, width)."""
        if self.position_plan.learned:
            if length > self.context_length:
                raise ValueError(f"{length} tokens exceed the learned positions' context length {self.context_length}")
            return self.pos_embed[0, :length]
        if length <= self.context_length:
            return self.pos_table[:length]
        return self.position_plan.table((length,)).to(self.pos_table.device)


def create_lm(variant: str | AttentionConfig = "softmax", **kwargs: Any) -> CausalLM:
    """``bilat_lm`` with attention ``variant``; kwargs as ``CausalLM`` (``vocab_size`` required)."""
    return CausalLM(attention=as_config(variant), **kwargs)
