"""Vision transformers hosting any attention variant, with timm-compatible parameter names.

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed`` when learned, ``blocks.{i}.norm1`` / ``attn.qkv`` / ``attn.proj`` / ``norm2`` /
``mlp.fc1`` / ``mlp.fc2``, ``norm``, ``head``), so a timm state dict of the softmax variant with
learned positions loads as it is. Inputs are images in [0, 1] of shape (B, C, H, W); the model
normalises them with its own ``mean`` / ``std`` buffers, ``(x - mean) / std`` per channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import LayerNorm, PatchEmbed
from timm.models import register_model
from torch import Tensor, nn

from ..attention import AttentionConfig, as_config, build_blocks, plan_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)



@dataclass(frozen=True)
class Preset:
    """A named ViT: constructor defaults, the position kernel a variant name gets, a one-line summary."""

    kwargs: dict[str, Any]
    pos_kernel: str
    summary: str


PRESETS: dict[str, Preset] = {
    "bilat_vit_tiny_28": Preset(
        dict(img_size=28, in_chans=1, patch_size=4, embed_dim=128, depth=4, num_heads=4, mlp_ratio=2.0,
             num_classes=10, mean=(0.2860,), std=(0.3530,)),
        "sinusoidal", "28 px grey images (Fashion-MNIST): patch 4, dim 128, depth 4, 4 heads, mlp 2, 10 classes",
    ),
    "bilat_vit_tiny_32": Preset(
        dict(img_size=32, in_chans=3, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0,
             num_classes=10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
        "sinusoidal", "32 px RGB images (CIFAR-10): patch 4, dim 192, depth 6, 3 heads, mlp 4, 10 classes",
    ),
    "bilat_deit_tiny_224": Preset(
        dict(img_size=224, in_chans=3, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
             num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "learned", "DeiT-Tiny at 224 px: patch 16, dim 192, depth 12, 3 heads, learned positions (loads deit_tiny_patch16_224)",
    ),
    "bilat_deit_small_224": Preset(
        dict(img_size=224, in_chans=3, patch_size=16, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0,
             num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "learned", "DeiT-Small at 224 px: patch 16, dim 384, depth 12, 6 heads, learned positions (loads deit_small_patch16_224)",
    ),
}
# Keyword arguments timm's create_model passes to every entrypoint; no weights ship, so they go unused.
_TIMM_FACTORY_KEYS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


class ViT(nn.Module):
    """ViT with a class token: patches -> blocks -> ``norm`` -> ``head`` on the class token.

    Positions (see ``attention.positions``): kernels that ignore ``positions`` (softmax) get them
    added to the tokens at the input (learned ``pos_embed`` (1, T, embed_dim) or fixed 2-D
    sinusoidal, class token at its reserved position); kernels that consume them (bilateral) get
    the (T, P) position vectors in every block and nothing is added. ``pos_dim`` sets P.
    """

    def __init__(
        self,
        *,
        attention: AttentionConfig,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pos_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean and std need {in_chans} values each, got {len(mean)} and {len(std)}")
        self.attention_config = attention
        grid = (img_size // patch_size, img_size // patch_size)
        self.position_plan = plan_positions(attention, embed_dim, grid, pos_dim)
        self.model_kwargs = dict(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=float(mlp_ratio),
            mean=[float(m) for m in mean], std=[float(s) for s in std], pos_dim=self.position_plan.pos_dim,
        )
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.position_plan.learned:
            self.pos_embed = nn.Parameter(self.position_plan.init_learned(1 + grid[0] * grid[1]))
        else:
            self.register_buffer("pos_table", self.position_plan.table(grid, cls_token=True), persistent=False)
        self.blocks = build_blocks(depth, embed_dim, num_heads, mlp_ratio, attention)
        self.norm = LayerNorm(embed_dim)
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


def create_vit(name: str, variant: str | AttentionConfig = "softmax", **kwargs: Any) -> ViT:
    """ViT preset ``name`` (a key of ``PRESETS``) with attention ``variant``; kwargs override the preset.

    A variant given by name gets the preset's position kernel (learned for the DeiT shapes, so
    timm DeiT weights load); a config is used as it is.
    """
    preset = PRESETS[name]
    model = ViT(attention=as_config(variant, preset.pos_kernel), **{**preset.kwargs, **kwargs})
    model.model_name = name
    return model


def load_timm_state_dict(model: ViT, state_dict: Mapping[str, Tensor], *, strict: bool = True) -> list[str]:
    """Load a timm ``VisionTransformer`` state dict (or our own) into ``model``.

    Names map one to one (timm's identity layers hold no tensors), so no key is renamed. Every key
    of ``state_dict`` must exist in ``model`` with the same shape, else ``RuntimeError``. With
    ``strict`` (default) every model parameter must be covered as well, as in a strict
    ``load_state_dict``; with ``strict=False`` the parameters only this variant has (bandwidths
    ``log_h_y`` / ``log_h_p``, boosting ``nu``) keep their initial values, and their names are
    returned, e.g. to fine-tune a DeiT checkpoint as a bilateral model. Returns [] when strict.
    """
    own = model.state_dict()
    unexpected = [key for key in state_dict if key not in own]
    reshaped = [key for key in state_dict if key in own and own[key].shape != state_dict[key].shape]
    missing = [key for key in own if key not in state_dict]
    problems = [f"unexpected keys {unexpected}"] * bool(unexpected) + [f"shape mismatch in {reshaped}"] * bool(reshaped)
    if strict and missing:
        problems.append(f"missing keys {missing}")
    if problems:
        raise RuntimeError(f"state dict does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=False)
    return missing


def _timm_entrypoint(name: str, pretrained: bool, kwargs: dict[str, Any]) -> ViT:
    if pretrained:
        raise ValueError(f"{name} ships no pretrained weights; load a checkpoint instead")
    for key in _TIMM_FACTORY_KEYS:
        kwargs.pop(key, None)
    return create_vit(name, **kwargs)


@register_model
def bilat_vit_tiny_28(pretrained: bool = False, **kwargs: Any) -> ViT:
    """28 px, 1 channel, patch 4, dim 128, depth 4, 4 heads, mlp_ratio 2, 10 classes (Fashion-MNIST)."""
    return _timm_entrypoint("bilat_vit_tiny_28", pretrained, kwargs)


@register_model
def bilat_vit_tiny_32(pretrained: bool = False, **kwargs: Any) -> ViT:
    """32 px, 3 channels, patch 4, dim 192, depth 6, 3 heads, 10 classes (CIFAR-10 statistics)."""
    return _timm_entrypoint("bilat_vit_tiny_32", pretrained, kwargs)


@register_model
def bilat_deit_tiny_224(pretrained: bool = False, **kwargs: Any) -> ViT:
    """DeiT-Tiny shape: 224 px, patch 16, dim 192, depth 12, 3 heads, 1000 classes, ImageNet mean/std."""
    return _timm_entrypoint("bilat_deit_tiny_224", pretrained, kwargs)


@register_model
def bilat_deit_small_224(pretrained: bool = False, **kwargs: Any) -> ViT:
    """DeiT-Small shape: 224 px, patch 16, dim 384, depth 12, 6 heads, 1000 classes, ImageNet mean/std."""
    return _timm_entrypoint("bilat_deit_small_224", pretrained, kwargs)
