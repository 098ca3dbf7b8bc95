"""Model keyword arguments written as text: ``patch_size=7,depth=4,mlp_ratio=2.0,qkv_bias=False``."""

from __future__ import annotations

import ast
from typing import Any

from robustbench_bilateral.errors import FieldError

_OPEN, _CLOSE = "([{", ")]}"


def parse_model_kwargs(text: str) -> dict[str, Any]:
    """``key=value`` items separated by commas -> a dict of typed values.

    Each value is read with ``ast.literal_eval`` (ints, floats, booleans, None, tuples such as
    ``mean=(0.5,0.5,0.5)``), falling back to the plain string, as timm's ``--model-kwargs``
    does. Commas inside brackets belong to the value. An item without ``=``, an empty or
    non-identifier key, or a key given twice is a ``FieldError`` on ``model_kwargs``.
    """
    out: dict[str, Any] = {}
    for item in _split_items(text):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key.isidentifier():
            raise FieldError("model_kwargs", f"item {item.strip()!r} is not key=value: write e.g. patch_size=7,depth=4")
        if key in out:
            raise FieldError("model_kwargs", f"{key} is given twice: keep one")
        out[key] = _value(value)
    return out


def _split_items(text: str) -> list[str]:
    """``text`` split at the commas outside brackets; empty items (a trailing comma) are left out."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += (char in _OPEN) - (char in _CLOSE)
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return [item for item in items if item.strip()]


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
