"""The schema of a checkpoint's bilat-eval metadata, checked before any model is built.

``validate_metadata`` checks types and allowed values, one field at a time, and raises an
``InputError`` whose one line names the checkpoint and the field (``task``, ``model.kwargs.img_size``,
``model.attention``, ...):

- the metadata is a JSON object with ``format`` equal to ``FORMAT``;
- ``task`` is a ``Task`` value; ``dataset`` a non-empty string;
- ``model`` an object: ``name`` a registered model (``bilat-eval list models``), ``kwargs`` an
  object whose shapes (``SHAPE_KWARGS``) are positive integers, ``attention`` an attention config
  (``AttentionConfig.from_dict``) of a registered kernel;
- ``variant`` a variant name (``parse_variant``) equal to the attention config's own name;
- a language model's ``vocab`` (a list of strings) and ``context_length`` (a positive integer).

``check_weights`` then checks the variant against the tensors the file holds: a bilateral kernel
has bandwidth tensors ``<...>.attn.log_h_y``/``log_h_p`` and a boosted variant its step tensors
``<...>.attn.nu``; a variant whose name says otherwise is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustbench_bilateral.attention import KERNELS, AttentionConfig, parse_variant
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models import model_entry

FORMAT = "bilat-eval-checkpoint/1"
METADATA_KEY = "bilat_eval"
"""The safetensors header key the metadata is stored under; it names the whole object in errors."""
SHAPE_KWARGS = ("img_size", "in_chans", "num_classes", "patch_size", "depth", "embed_dim", "num_heads",
                "vocab_size", "context_length")
"""Model arguments that, when present, must be positive integers."""
BANDWIDTH = re.compile(r"(^|\.)attn\.log_h_[yp]$")
BOOST_STEP = re.compile(r"(^|\.)attn\.nu$")
_FIX = "re-create the checkpoint with `bilat-eval train`, or load its weights as plain weights with --model NAME"


class MetadataError(InputError):
    """A checkpoint whose metadata field ``field`` is missing or malformed."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"checkpoint {path}: metadata field '{field}' {problem}: {_FIX}")


def validate_metadata(meta: Any, path: Path | str) -> dict:
    """``meta`` itself once every field named in the module docstring passed its check."""
    if not isinstance(meta, dict):
        raise MetadataError(path, METADATA_KEY, f"must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise MetadataError(path, "format", f"must be {FORMAT!r}, got {meta.get('format')!r}")
    task = _text(meta, "task", path)
    if task not in {member.value for member in Task}:
        raise MetadataError(path, "task", f"must be one of {', '.join(member.value for member in Task)}, got {task!r}")
    _text(meta, "dataset", path)
    model = _object(meta, "model", path)
    name = _text(model, "name", path, "model.")
    try:
        model_entry(name)
    except InputError:
        raise MetadataError(path, "model.name", f"names no registered model ({name!r}; see `bilat-eval list models`)") from None
    kwargs = _object(model, "kwargs", path, "model.")
    for key in SHAPE_KWARGS:
        if key in kwargs and not _positive_int(kwargs[key]):
            raise MetadataError(path, f"model.kwargs.{key}", f"must be a positive integer, got {kwargs[key]!r}")
    config = attention_config(_object(model, "attention", path, "model."), path)
    variant = _text(meta, "variant", path)
    try:
        parse_variant(variant)
    except InputError as error:
        raise MetadataError(path, "variant", f"is not a variant ({error})") from None
    if variant != config.name:
        raise MetadataError(path, "variant", f"is {variant!r} but model.attention describes {config.name!r}")
    if task == Task.LANGUAGE_MODELING.value:
        vocab = meta.get("vocab")
        if not isinstance(vocab, list) or not vocab or not all(isinstance(word, str) for word in vocab):
            raise MetadataError(path, "vocab", "must be a non-empty list of strings")
        if not _positive_int(meta.get("context_length")):
            raise MetadataError(path, "context_length", f"must be a positive integer, got {meta.get('context_length')!r}")
    return meta


def attention_config(value: Mapping[str, Any], path: Path | str) -> AttentionConfig:
    """The ``AttentionConfig`` of ``model.attention``, of a registered kernel."""
    kernel = value.get("kernel", "softmax")
    if kernel not in KERNELS:
        raise MetadataError(path, "model.attention.kernel",
                            f"names no registered kernel ({kernel!r}; see `bilat-eval list variants`, or load its --plugin)")
    try:
        return AttentionConfig.from_dict(dict(value))
    except (TypeError, ValueError) as error:
        raise MetadataError(path, "model.attention", f"is not an attention config ({error})") from None


def check_weights(meta: dict, keys: Iterable[str], path: Path | str) -> None:
    """Refuse a ``variant`` that contradicts the tensors: bandwidths present exactly for the
    ``bilateral`` kernel (other kernels than the built-ins are not checked for them), boosting
    steps ``nu`` present exactly for a boosted variant."""
    config = AttentionConfig.from_dict(meta["model"]["attention"])
    names = list(keys)
    bandwidths = any(BANDWIDTH.search(key) for key in names)
    steps = any(BOOST_STEP.search(key) for key in names)
    builtin = config.kernel in {"softmax", "bilateral"}
    if builtin and bandwidths != (config.kernel == "bilateral"):
        held = "holds" if bandwidths else "has no"
        raise MetadataError(path, "variant", f"is {meta['variant']!r} but the weights {held} bilateral bandwidth tensors (attn.log_h_y)")
    if steps != bool(config.boost_steps):
        held = "hold" if steps else "have no"
        raise MetadataError(path, "variant", f"is {meta['variant']!r} but the weights {held} boosting step tensors (attn.nu)")


def _text(table: Mapping[str, Any], key: str, path: Path | str, prefix: str = "") -> str:
    value = table.get(key)
    if value is None:
        raise MetadataError(path, prefix + key, "is missing")
    if not isinstance(value, str) or not value:
        raise MetadataError(path, prefix + key, f"must be a non-empty string, got {value!r}")
    return value


def _object(table: Mapping[str, Any], key: str, path: Path | str, prefix: str = "") -> dict:
    value = table.get(key)
    if value is None:
        raise MetadataError(path, prefix + key, "is missing")
    if not isinstance(value, dict):
        raise MetadataError(path, prefix + key, f"must be a JSON object, got {type(value).__name__}")
    return value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
