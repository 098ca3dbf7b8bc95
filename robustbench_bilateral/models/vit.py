"""Vision transformers whose blocks take any registered attention, registered with timm.

``timm.create_model("bilat_vit_tiny_28", variant="bilateral+boost")`` builds one; parameter names
follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.{i}.attn.qkv``, ..., ``norm``, ``head``), so with ``softmax`` and learned positions a timm
state dict loads as it is and gives identical logits. Models take images in [0, 1] and normalise
inside ``forward`` with their own ``mean``/``std``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import PatchEmbed
from torch import Tensor, nn

from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.attention.positions import coords_2d, sinusoidal_2d, with_class_token
from robustbench_bilateral.models.block import build_blocks, init_weights, position_width


class BilatVisionTransformer(nn.Module):
    """ViT: patches + class token, ``depth`` pre-LN blocks, class-token head.

    Positions: softmax kernel -> added to the tokens at the input (learned ``pos_embed`` or fixed
    2-D sinusoidal); bilateral kernel -> not added, every block gets the (T, P) position vectors.
    """

    def __init__(
        self,
        img_size: int = 28,
        in_chans: int = 1,
        patch_size: int = 4,
        embed_dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        num_classes: int = 10,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        attention: AttentionConfig = AttentionConfig(),
    ) -> None:
        super().__init__()
        self.attention_config = attention
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        rows, cols = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        width = position_width(attention, embed_dim, spatial_dims=2)
        self.additive_positions = attention.kernel == "softmax"
        if attention.pos_kernel == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, rows * cols + 1, embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            grid = coords_2d(rows, cols) if attention.pos_kernel == "coords" else sinusoidal_2d(rows, cols, width)
            self.register_buffer("position_table", with_class_token(grid).unsqueeze(0), persistent=False)
        self.blocks = build_blocks(embed_dim, depth, num_heads, mlp_ratio, attention)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(init_weights)

    def positions(self) -> Tensor:
        """(1, T, P) position vectors of the class token and the patches."""
        return self.pos_embed if self.attention_config.pos_kernel == "learned" else self.position_table

    def forward(self, images: Tensor) -> Tensor:
        """images: (B, C, H, W) in [0, 1] -> logits (B, num_classes)."""
        x = self.patch_embed((images - self.mean) / self.std)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        positions = self.positions()
        if self.additive_positions:
            x = x + positions
        for block in self.blocks:
            x = block(x, positions=positions[0])
        return self.head(self.norm(x)[:, 0])


def load_timm_state_dict(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    """Load a timm ``VisionTransformer`` (or our own) state dict strictly.

    timm keeps no extra tensors for the layers it leaves as identities, so the names match one to
    one; a missing or unexpected key, or a shape mismatch, raises ``RuntimeError``.
    """
    model.load_state_dict(state_dict, strict=True)
