"""What the exports, plots and comparisons of result rows share: which metrics they show, which
parameters key a setting, and how values and settings are written.

Every parameter a row carries keys its setting, the ``batch_size`` of an attack with random
parts among them (its draws are seeded per batch; deterministic threats have none), except the
``DERIVED`` ones: entries a row records but that
follow from another parameter or from the model (an embedding attack's ``eps_rel``, equal to its
``eps``, and its absolute ``eps_abs`` / ``step_size_abs``, which depend on the model's embedding
scale): they stay in the exports but key nothing either (``keyed_params``). ``SWEEP_KEYS`` are the parameters a figure may
put on its x axis. A setting's readable text writes ``eps`` as ``k/255`` when ``255 * eps`` is a
whole number (to 1e-9) and it is not a short decimal such as ``0.2``, other numbers with ``%g``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from robustbench_bilateral.results.row import canonical_json

PRIMARY_METRICS = ("accuracy", "perplexity")
DERIVED = ("eps_rel", "eps_abs", "step_size_abs")
SWEEP_KEYS = ("eps", "severity", "strength", "rate", "context")


def keyed_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A row's params without the ``DERIVED`` entries: what keys its setting, so rows of two models
    under one embedding attack are one setting."""
    return {key: value for key, value in params.items() if key not in DERIVED}


def eps_text(eps: float) -> str:
    """``eps`` as ``k/255`` when ``255 * eps`` is a whole number and ``eps`` is not a decimal of at most
    three places (``4/255``, but ``0.2`` and ``0.05`` as they are, e.g. relative embedding radii), else ``%g``."""
    scaled = eps * 255
    if eps > 0 and math.isclose(scaled, round(scaled), abs_tol=1e-9) and not math.isclose(eps, round(eps, 3), abs_tol=1e-12):
        return f"{round(scaled)}/255"
    return f"{eps:g}"


def param_text(key: str, value: Any) -> str:
    """One parameter value as a reader writes it: ``eps`` by ``eps_text``, numbers ``%g``, ``None`` as ``null``."""
    if key == "eps" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return eps_text(float(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (bool, type(None))) or not isinstance(value, (int, str)):
        return canonical_json(value)
    return str(value)


def setting_text(name: str, params: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``name key=value ...`` over ``keys`` in order, e.g. ``pgd eps=4/255 steps=20``."""
    return " ".join([name, *(f"{key}={param_text(key, params[key])}" for key in keys if key in params)])


def varying_keys(params: Sequence[Mapping[str, Any]], always: Sequence[str] = ()) -> list[str]:
    """The keys whose values differ among ``params`` (a key missing from some counts as differing),
    plus ``always`` where present; ``eps``-like ``SWEEP_KEYS`` first, then sorted."""
    keys = {key for entry in params for key in entry}
    varying = {key for key in keys if len({canonical_json(entry.get(key)) for entry in params}) > 1}
    chosen = varying | (keys & set(always))
    return sorted(chosen, key=lambda key: (key not in SWEEP_KEYS, SWEEP_KEYS.index(key) if key in SWEEP_KEYS else 0, key))


def abbreviate_path(path: str, width: int) -> str:
    """``path`` cut to ``width`` characters by replacing leading folders with ``…``; the file name
    and its folder stay whole when they fit."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    while len(parts) > 2 and len("…/" + "/".join(parts[1:])) > width:
        parts = parts[1:]
    short = "…/" + "/".join(parts[1:]) if len(parts) > 1 else path
    return short if len(short) <= width else "…" + path[-(width - 1):]


def seedless_folder(checkpoint: str) -> str:
    """The checkpoint's folder with every ``seed<k>`` written ``seed*``: what checkpoints of one recipe share."""
    parts = checkpoint.replace("\\", "/").split("/")
    folder = parts[-2] if len(parts) > 1 else parts[-1]
    return re.sub(r"seed\d+", "seed*", folder)


def folder_seed(checkpoint: str) -> int | None:
    """The ``k`` of the first ``seed<k>`` in the checkpoint's folder name, or None."""
    parts = checkpoint.replace("\\", "/").split("/")
    found = re.search(r"seed(\d+)", parts[-2] if len(parts) > 1 else parts[-1])
    return int(found.group(1)) if found else None
