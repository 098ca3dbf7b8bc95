"""Models named by timm: ViT-family names rebuilt as our ``ViT``, every other architecture as a softmax baseline.

``build_timm_model(name, variant, **kwargs)`` first creates timm's own model on the meta device
(no memory, no weights, never a download) with the timm keyword arguments in ``kwargs`` (timm's
names: ``img_size``, ``patch_size``, ``depth``, ``embed_dim``, ``num_heads``, ``num_classes``, ...),
and reads its architecture:

- a plain ``VisionTransformer`` that our ``ViT`` reproduces (class token, learned position table,
  token pooling, pre-LN blocks without layer scale or extra norms, GELU, LayerNorm eps 1e-6)
  becomes our ``ViT`` with the same img_size, patch_size, in_chans, num_classes, embed_dim,
  depth, num_heads, mlp_ratio and qkv_bias, hosting any attention variant; parameter names and
  shapes are timm's, so timm's state dict of that model loads as it is;
- any other architecture (``resnet18``, a ViT with register tokens, ...) is timm's module itself,
  wrapped by ``TimmBaseline`` to take pixels in [0, 1], as a softmax baseline.

``mean``, ``std`` (and ``pos_dim`` for ViTs) are our arguments, not timm's; mean/std default to
the model's pretrained config, which also gives its ``Preprocessing`` (``model.preprocessing``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import timm
import torch
from timm.models import split_model_name_tag
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn

from robustbench_bilateral.attention import AttentionConfig, kernel_class, parse_variant
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.models.vit import ViT
from robustbench_bilateral.preprocessing import DEFAULT_INTERPOLATION, INTERPOLATIONS, Preprocessing

OUR_KWARGS = ("mean", "std", "pos_dim")
"""Keyword arguments of a timm-named model that are ours, not timm's."""


def is_timm_name(name: str) -> bool:
    """Whether timm's registry knows ``name`` (an optional ``.tag`` is ignored)."""
    return isinstance(name, str) and timm.is_model(split_model_name_tag(name)[0])


class TimmBaseline(nn.Module):
    """timm's model ``name`` taking images (B, C, H, W) in [0, 1]: ``net((x - mean) / std)``, softmax attention.

    ``net`` holds timm's module with timm's parameter names, so timm's state dict loads into it.
    """

    mean: Tensor
    std: Tensor
    model_kwargs: dict[str, Any]
    preprocessing: Preprocessing | None = None

    def __init__(self, name: str, timm_kwargs: dict[str, Any], mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = timm.create_model(name, pretrained=False, **timm_kwargs)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.model_name = name
        self.model_kwargs = {**timm_kwargs, "mean": list(mean), "std": list(std)}
        self.attention_config = AttentionConfig()

    def forward(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> logits (B, num_classes)."""
        return self.net((images - self.mean) / self.std)


def build_timm_model(name: str, variant: str | AttentionConfig = "softmax", **kwargs: Any) -> nn.Module:
    """timm's model ``name`` as one of ours (see the module docstring); bad kwargs are a ``FieldError``.

    A variant other than softmax for a model that is not ViT-family is a ``FieldError`` on ``variant``.
    """
    ours = {key: kwargs.pop(key) for key in OUR_KWARGS if key in kwargs}
    reference = _meta_model(name, kwargs)
    config: dict[str, Any] = dict(getattr(reference, "pretrained_cfg", {}))
    in_chans = int(kwargs.get("in_chans", config["input_size"][0]))
    mean = tuple(ours.get("mean", channel_statistic(config["mean"], in_chans)))
    std = tuple(ours.get("std", channel_statistic(config["std"], in_chans)))
    if len(mean) != in_chans or len(std) != in_chans:
        raise FieldError("mean", f"{name} takes {in_chans} channels but mean/std have {len(mean)}/{len(std)} values: "
                                 f"give {in_chans} values each, e.g. --model-kwargs in_chans={in_chans},mean=(...),std=(...)")
    shape = vit_arguments(reference)
    model: ViT | TimmBaseline
    if isinstance(shape, dict):
        model = ViT(attention=vit_attention(variant), **shape, mean=mean, std=std, pos_dim=ours.get("pos_dim"))
        size = shape["img_size"]
    else:
        attention = variant if isinstance(variant, AttentionConfig) else parse_variant(variant)
        if attention != AttentionConfig() or ours.get("pos_dim") is not None:
            raise FieldError("variant", f"timm model {name} is not a ViT our attention fits ({shape}): "
                                        "it loads only as the softmax baseline; leave the variant out")
        model = TimmBaseline(name, kwargs, mean, std)
        size = int(kwargs.get("img_size", config["input_size"][-1]))
    model.model_name = name
    interpolation = str(config.get("interpolation"))
    interpolation = interpolation if interpolation in INTERPOLATIONS else DEFAULT_INTERPOLATION
    model.preprocessing = Preprocessing(mean, std, size, crop_pct=float(config.get("crop_pct") or 0.875),
                                        interpolation=interpolation)
    return model


def channel_statistic(values: tuple[float, ...], in_chans: int) -> tuple[float, ...]:
    """A pretrained per-channel mean or std for ``in_chans`` channels: as it is when the counts
    agree, the average over the channels for grey (1-channel) inputs, else unchanged (and refused)."""
    values = tuple(float(value) for value in values)
    if in_chans == 1 and len(values) > 1:
        return (sum(values) / len(values),)
    return values


def vit_attention(variant: str | AttentionConfig) -> AttentionConfig:
    """The attention of a timm-named ViT: a config as it is; a variant name with learned positions
    for kernels that add them at the input (so timm's ``pos_embed`` loads) and sinusoidal positions
    for kernels that take positions in every layer."""
    if isinstance(variant, AttentionConfig):
        return variant
    config = parse_variant(variant)
    return config if kernel_class(config.kernel).consumes_positions else replace(config, pos_kernel="learned")


def vit_arguments(net: nn.Module) -> dict[str, Any] | str:
    """Our ``ViT`` arguments reproducing timm's module ``net``, or the reason they cannot."""
    if not isinstance(net, VisionTransformer) or type(net) is not VisionTransformer:
        return f"a {type(net).__name__}"
    block: Any = net.blocks[0]  # timm's Block; its layers are read by name
    img, patch = net.patch_embed.img_size, net.patch_embed.patch_size
    unsupported = {
        "non-square images or patches": img is None or img[0] != img[1] or patch[0] != patch[1],
        "no class token": net.cls_token is None,
        "register tokens": net.num_reg_tokens > 0,
        "no learned position table": net.pos_embed is None or net.no_embed_class,
        f"{net.global_pool!r} pooling": net.global_pool != "token",
        "dynamic image size": net.dynamic_img_size,
        "extra norms": any(not isinstance(m, nn.Identity) for m in (net.norm_pre, net.fc_norm, net.patch_embed.norm)),
        "a block other than timm's pre-LN Block": type(block) is not Block or not isinstance(block.ls1, nn.Identity),
        "query/key norms": not isinstance(block.attn.q_norm, nn.Identity),
        "an activation other than GELU": type(block.mlp.act) is not nn.GELU or block.mlp.act.approximate != "none",
        "LayerNorm eps other than 1e-6": not isinstance(block.norm1, nn.LayerNorm) or block.norm1.eps != 1e-6,
    }
    reasons = [reason for reason, found in unsupported.items() if found]
    if reasons:
        return ", ".join(reasons)
    embed_dim = int(net.embed_dim)
    shape = dict(img_size=int(img[0]), patch_size=int(patch[0]), in_chans=int(net.patch_embed.proj.in_channels),
                 num_classes=int(net.num_classes), qkv_bias=block.attn.qkv.bias is not None, embed_dim=embed_dim,
                 depth=len(net.blocks), num_heads=int(block.attn.num_heads),
                 mlp_ratio=block.mlp.fc1.out_features / embed_dim)
    return shape if _same_tensors(net, shape) else "parameters our ViT does not have"


def _same_tensors(net: nn.Module, shape: dict[str, Any]) -> bool:
    """Whether our softmax ViT with learned positions of ``shape`` has exactly ``net``'s tensor names and shapes."""
    with torch.device("meta"):
        ours = ViT(attention=AttentionConfig(pos_kernel="learned"), **shape,
                   mean=(0.5,) * shape["in_chans"], std=(0.5,) * shape["in_chans"])
    theirs = {key: value.shape for key, value in net.state_dict().items()}
    return theirs == {key: value.shape for key, value in ours.state_dict().items()}


def _meta_model(name: str, timm_kwargs: dict[str, Any]) -> nn.Module:
    """timm's model ``name`` on the meta device: its architecture and pretrained config, no weights."""
    try:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False, **timm_kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        problem = " ".join(str(error).split())[:200] or type(error).__name__
        raise FieldError("model_kwargs", f"timm model {name} does not take {timm_kwargs} ({problem}): "
                                         "use timm's argument names, e.g. img_size=32,patch_size=8,num_classes=10") from error
