"""Plain weights into a model of another attention variant: shared tensors load, the rest is stated.

A state dict of the same architecture (timm's ``VisionTransformer`` names, or our own) loads
into a model of any variant when the only differences are

- tensors only the variant has, the attention modules' own parameters ``blocks.{i}.attn.<name>``
  (bilateral bandwidths ``log_h_y``, ``log_h_p``, boosting ``nu``): they keep their initial values,
  bandwidths ``h = (4d)^(1/4)`` (d = head width, the bandwidth at which softmax attention is a
  bilateral filter) and ``nu = nu_init``;
- the additive position table ``pos_embed``, which a model whose kernel takes fixed positions in
  every layer does not have: it is dropped.

``transfer_weights`` returns one line per such fact; anything else that differs is an error. A
``TimmBaseline`` takes the state dict of the timm module it wraps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from torch import Tensor, nn

from robustbench_bilateral.models.stack import AttentionModel
from robustbench_bilateral.models.timm_models import TimmBaseline

_VARIANT_ONLY = re.compile(r"blocks\.\d+\.attn\.[^.]+")
_BANDWIDTHS = ("log_h_y", "log_h_p")
LISTED = 5
"""How many key names an error message lists before "and N more"."""


def transfer_weights(model: nn.Module, state: Mapping[str, Tensor]) -> tuple[str, ...]:
    """Load ``state`` into ``model``; the lines say what was added, initialised or dropped.

    Raises ``ValueError`` on one line naming the unexpected, missing and reshaped keys otherwise.
    """
    if isinstance(model, TimmBaseline):
        model = model.net  # timm's own module, under timm's own names
    own = model.state_dict()
    plan = getattr(model, "position_plan", None)
    takes_positions = plan is not None and not plan.additive
    dropped = ["pos_embed"] if takes_positions and "pos_embed" in state and "pos_embed" not in own else []
    unexpected = [key for key in state if key not in own and key not in dropped]
    added = [key for key in own if key not in state]
    missing = [key for key in added if not _VARIANT_ONLY.fullmatch(key)]
    reshaped = [f"{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
                for key in state if key in own and own[key].shape != state[key].shape]
    problems = [f"{label} {listing(keys)}" for label, keys in
                (("unexpected keys", unexpected), ("missing keys", missing), ("shapes differ in", reshaped)) if keys]
    if problems:
        raise ValueError("; ".join(problems))
    model.load_state_dict({key: value for key, value in state.items() if key not in dropped}, strict=False)
    notes = _added_notes(model, added)
    if plan is not None and dropped:
        notes.append(f"dropped pos_embed: {_kernel(model)} takes {plan.kind} positions (P = {plan.dim}) in every layer")
    elif takes_positions and "pos_embed" in state:
        notes.append(f"pos_embed loads as the learned position table {_kernel(model)} takes in every layer")
    return tuple(notes)


def listing(keys: list[str]) -> str:
    """The first ``LISTED`` names joined by commas, then "and N more"."""
    shown = ", ".join(keys[:LISTED])
    return shown + (f" and {len(keys) - LISTED} more" if len(keys) > LISTED else "")


def _kernel(model: nn.Module) -> str:
    return model.attention_config.kernel if isinstance(model, AttentionModel) else type(model).__name__


def _added_notes(model: nn.Module, added: list[str]) -> list[str]:
    """One line per kind of variant-only tensor left at its initial value."""
    by_leaf: dict[str, list[str]] = {}
    for key in added:
        by_leaf.setdefault(key.rsplit(".", 1)[1], []).append(key)
    notes = []
    bandwidths = [leaf for leaf in _BANDWIDTHS if leaf in by_leaf]
    if bandwidths:
        first = by_leaf[bandwidths[0]][0]
        head_dim = int(getattr(model.get_submodule(first.rsplit(".", 1)[0]), "head_dim"))
        count = sum(len(by_leaf.pop(leaf)) for leaf in bandwidths)
        notes.append(f"added blocks.*.attn.{', '.join(bandwidths)} ({count} tensors) at the softmax-equivalent "
                     f"bandwidth (4d)^(1/4) = {math.pow(4 * head_dim, 0.25):.2f} (d = {head_dim})")
    for leaf, keys in by_leaf.items():
        start = model.state_dict()[keys[0]].flatten()[0].item()
        value = f"nu_init = {start:g}" if leaf == "nu" else "the kernel's initial values"
        notes.append(f"added blocks.*.attn.{leaf} ({len(keys)} tensors) at {value}")
    return notes
