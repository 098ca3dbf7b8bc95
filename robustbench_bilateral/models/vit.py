"""Vision transformers hosting any attention variant, with timm-compatible parameter names.

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed`` when learned, ``blocks.{i}.norm1`` / ``attn.qkv`` / ``attn.proj`` / ``norm2`` /
``mlp.fc1`` / ``mlp.fc2``, ``norm``, ``head``), so a timm state dict of the softmax variant with
learned positions loads as it is. Inputs are images in [0, 1] of shape (B, C, H, W); the model
normalises them with its own ``mean`` / ``std`` buffers, ``(x - mean) / std`` per channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import torch
from timm.layers import PatchEmbed
from torch import Tensor, nn

from ..attention import AttentionConfig, as_config
from ..normalization import IMAGENET_MEAN, IMAGENET_STD
from .stack import AttentionModel, StackKwargs


class ViT(AttentionModel):
    """ViT with a class token: patches -> blocks -> ``norm`` -> ``head`` on the class token.

    Positions (see ``attention.positions``): kernels that ignore ``positions`` (softmax) get them
    added to the tokens at the input (learned ``pos_embed`` (1, T, embed_dim) or fixed 2-D
    sinusoidal, class token at its reserved position); kernels that consume them (bilateral) get
    the (T, P) position vectors in every block and nothing is added. ``stack`` sets the shape of the
    blocks (``StackKwargs``: embed_dim, depth, num_heads, mlp_ratio, pos_dim = P); ``qkv_bias``
    whether the ``qkv`` projections have a bias (timm's argument of that name).
    """

    STACK_DEFAULTS = StackKwargs(embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0)
    mean: Tensor
    std: Tensor
    pos_table: Tensor

    def __init__(
        self,
        *,
        attention: AttentionConfig,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        qkv_bias: bool = True,
        **stack: Unpack[StackKwargs],
    ) -> None:
        super().__init__()
        if len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean and std need {in_chans} values each, got {len(mean)} and {len(std)}")
        grid = (img_size // patch_size, img_size // patch_size)
        own = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                   mean=[float(m) for m in mean], std=[float(s) for s in std], qkv_bias=bool(qkv_bias))
        self.init_stack(attention, grid, own, stack)
        embed_dim = self.model_kwargs["embed_dim"]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.position_plan.learned:
            self.pos_embed = nn.Parameter(self.position_plan.init_learned(1 + grid[0] * grid[1]))
        else:
            self.register_buffer("pos_table", self.position_plan.table(grid, cls_token=True), persistent=False)
        self.add_blocks()
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> logits (B, num_classes)."""
        x = self.patch_embed((images - self.mean) / self.std)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        table = self.pos_embed[0] if self.position_plan.learned else self.pos_table
        x, positions = self.position_plan.apply(x, table)
        for block in self.blocks:
            x = block(x, positions)
        return self.head(self.norm(x)[:, 0])


@dataclass(frozen=True)
class ViTPreset:
    """A named ViT: constructor defaults, the position kernel a variant name gets, a one-line summary.

    ``models/__init__.py`` registers each preset with the model registry and with timm.
    """

    name: str
    kwargs: dict[str, Any]
    pos_kernel: str
    summary: str

    def build(self, variant: str | AttentionConfig = "softmax", **kwargs: Any) -> ViT:
        """This ViT with attention ``variant``; kwargs override the preset.

        A variant given by name gets the preset's position kernel (learned for the DeiT shapes, so
        timm DeiT weights load); a config is used as it is.
        """
        model = ViT(attention=as_config(variant, self.pos_kernel), **{**self.kwargs, **kwargs})
        model.model_name = self.name
        return model

    def timm_entrypoint(self) -> Callable[..., ViT]:
        """A timm model entrypoint named after the preset (for ``timm.models.register_model``)."""

        def entrypoint(pretrained: bool = False, **kwargs: Any) -> ViT:
            if pretrained:
                raise ValueError(f"{self.name} ships no pretrained weights; load a checkpoint instead")
            for key in _TIMM_FACTORY_KEYS:
                kwargs.pop(key, None)
            return self.build(**kwargs)

        entrypoint.__name__ = entrypoint.__qualname__ = self.name
        entrypoint.__doc__ = self.summary
        return entrypoint


# Keyword arguments timm's create_model passes to every entrypoint; no weights ship, so they go unused.
_TIMM_FACTORY_KEYS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


