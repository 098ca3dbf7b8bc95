"""What every model of the zoo shares: the attention config, the position plan, pre-LN blocks, a
final norm, and the keyword arguments that rebuild the model.

A model is rebuilt by ``create_model(model.model_name, model.attention_config, **model.model_kwargs)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict

from timm.layers import LayerNorm
from torch import nn

from ..attention import AttentionConfig, build_blocks, plan_positions
from ..preprocessing import Preprocessing


class StackKwargs(TypedDict, total=False):
    """Shape of the block stack: width ``embed_dim`` (C), ``depth`` blocks, ``num_heads`` (H, head dim
    C / H), ``mlp_ratio`` (MLP hidden width / C) and ``pos_dim`` (P, the width of position vectors of
    kernels that consume them; None = the default of ``attention.positions``)."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    pos_dim: int | None


class AttentionModel(nn.Module):
    """Base of the zoo's models; a subclass sets ``STACK_DEFAULTS`` and, in its ``__init__``, calls
    ``init_stack`` first and ``add_blocks`` after creating its own embeddings (the order of
    parameter initialisation fixes the weights a seed gives)."""

    STACK_DEFAULTS: ClassVar[StackKwargs]
    model_name: str
    model_kwargs: dict[str, Any]
    preprocessing: Preprocessing | None = None
    """The input transform of an image model when set (timm-named models, ``set_preprocessing``);
    None = derived from its kwargs (``Preprocessing.derived``)."""

    def init_stack(self, attention: AttentionConfig, grid: tuple[int, ...], own: dict[str, Any],
                   stack: StackKwargs) -> None:
        """Record the config, plan positions on the token ``grid`` and the rebuilding kwargs: ``own``
        (the subclass's arguments) followed by the stack shape (``STACK_DEFAULTS`` updated by ``stack``)."""
        unknown = set(stack) - set(StackKwargs.__annotations__)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {', '.join(sorted(unknown))}")
        shape: dict[str, Any] = {"pos_dim": None, **self.STACK_DEFAULTS, **stack}
        self.attention_config = attention
        self.position_plan = plan_positions(attention, shape["embed_dim"], grid, shape["pos_dim"])
        self.model_kwargs = {**own, **shape, "mlp_ratio": float(shape["mlp_ratio"]), "pos_dim": self.position_plan.pos_dim}

    def add_blocks(self) -> None:
        """The ``blocks`` of the stack and its final ``norm``; ``qkv`` has a bias unless ``qkv_bias=False``."""
        kwargs = self.model_kwargs
        self.blocks = build_blocks(kwargs["depth"], kwargs["embed_dim"], kwargs["num_heads"], kwargs["mlp_ratio"],
                                   self.attention_config, qkv_bias=kwargs.get("qkv_bias", True))
        self.norm = LayerNorm(kwargs["embed_dim"])
