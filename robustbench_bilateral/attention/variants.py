"""Variant names, read from the kernel registry: ``<kernel>[+boost]`` and the alias ``twicing``.

Every registered kernel ``k`` gives the variants ``k`` (plain attention ``A V``) and ``k+boost``
(boosted, variants.md section 3); ``twicing`` is ``softmax+boost`` with K = 1, nu = 1, i.e.
``(2A - A^2) V``. The built-in kernels and their boosted forms come first, then ``twicing``,
then ``k`` and ``k+boost`` of every kernel registered later.
"""

from __future__ import annotations

from typing import Any

from robustbench_bilateral.errors import FieldError

from .config import BOOST_SUFFIX, AttentionConfig
from .registry import KERNELS, RESERVED

TWICING = RESERVED
TWICING_FORMULA = "(2A - A^2) V with A = softmax attention: softmax+boost at K = 1, nu = 1"
BOOST_FORMULA = "u_0 = A V, u_(k+1) = u_k + nu A (V - u_k) for K steps = [I - (I - nu A)^K (I - A)] V"


def variant_names() -> tuple[str, ...]:
    """Every variant name of the registered kernels, built-ins first (softmax, bilateral, softmax+boost,
    bilateral+boost, twicing), then ``k`` and ``k+boost`` for every further kernel ``k``."""
    builtin = [name for name, entry in KERNELS.items() if entry.builtin]
    extra = [name for name, entry in KERNELS.items() if not entry.builtin]
    return (*builtin, *(k + BOOST_SUFFIX for k in builtin), TWICING, *(n for k in extra for n in (k, k + BOOST_SUFFIX)))


def describe_variants() -> list[tuple[str, str]]:
    """(name, one-line formula) for every variant name, from the registry alone (no kernel is imported)."""
    rows = []
    for name in variant_names():
        kernel, _, boost = name.partition("+")
        if name == TWICING:
            rows.append((name, TWICING_FORMULA))
        elif boost:
            rows.append((name, f"{BOOST_FORMULA}, A = {kernel} attention"))
        else:
            rows.append((name, KERNELS.get(kernel).formula))
    return rows


def parse_variant(name: str, **overrides: Any) -> AttentionConfig:
    """Config of variant ``name``; ``overrides`` set the other fields (pos_kernel, layers, ...).

    ``k+boost`` defaults to K = 1 and needs K >= 1; a plain kernel needs K = 0; ``twicing`` fixes
    kernel softmax, K = 1, nu = 1. The kernel always comes from the name. Bad input raises a
    ``FieldError`` naming the field (``variant``, ``kernel``, ``boost_steps``, ``nu_init``).
    """
    if name not in variant_names():
        raise FieldError("variant", f"unknown variant {name!r}: choose one of {', '.join(variant_names())} "
                                    "(see `bilat-eval list variants`)")
    if "kernel" in overrides:
        raise FieldError("kernel", "the kernel comes from the variant name; do not override it")
    if name == TWICING:
        fixed = {"boost_steps": 1, "nu_init": 1.0}
        clash = sorted(k for k in fixed if k in overrides and overrides[k] != fixed[k])
        if clash:
            raise FieldError(clash[0], "twicing fixes boost_steps=1 and nu_init=1.0: leave it out or use softmax+boost")
        return AttentionConfig(kernel="softmax", **{**overrides, **fixed})
    kernel, _, boost = name.partition("+")
    steps = overrides.pop("boost_steps", 1 if boost else 0)
    if bool(boost) != (steps > 0):
        raise FieldError("boost_steps", f"variant {name!r} needs boost_steps {'>= 1' if boost else '= 0'}, got {steps}")
    return AttentionConfig(kernel=kernel, boost_steps=steps, **overrides)


def as_config(variant: str | AttentionConfig, pos_kernel: str = "sinusoidal") -> AttentionConfig:
    """``variant`` itself if it is a config, else ``parse_variant(variant, pos_kernel=pos_kernel)``."""
    return variant if isinstance(variant, AttentionConfig) else parse_variant(variant, pos_kernel=pos_kernel)
