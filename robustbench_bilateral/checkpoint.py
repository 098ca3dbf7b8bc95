"""Checkpoints: one safe format that rebuilds and describes its model; loading never runs code.

Format: a ``.safetensors`` file whose header metadata holds, under the key ``bilat_eval``, a JSON
object with everything needed to rebuild and judge the model::

    {"format": "bilat-eval-checkpoint/1",
     "model": {"name", "kwargs", "attention"},   # models.model_spec(): rebuilds the architecture
     "variant": "bilateral+boost", "task": "image-classification", "dataset": "fmnist",
     "preprocessing": {"mean", "std", "input_size", "resize", "crop_pct", "interpolation"},
     "normalization": {"mean": [...], "std": [...]}, "recipe": {...}, "seed": 0,
     "metrics": {...}, "versions": {...}, ...}   # language models add "vocab" and "context_length"

Checkpoints made before ``preprocessing`` was recorded get the one derived from their model
kwargs (``Preprocessing.derived``), so they evaluate as before. Other inputs load as plain weights:

- ``.pt``/``.pth``/``.bin`` state dicts through ``torch.load(weights_only=True)`` (a pickle that
  would run code is refused), and ``.safetensors`` state dicts, into ``create_model(model_name)``;
- ``timm:NAME``: a timm model's pretrained weights, only from the local Hugging Face cache, into
  ``create_model(NAME)`` unless a model name is given.

Plain weights may load into another attention variant (``models.transfer_weights``): what loading
added, initialised or dropped is in ``LoadedCheckpoint.notes``, one line each.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from robustbench_bilateral.atomic import atomic_file
from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.checkpoint_schema import FORMAT, METADATA_KEY, check_weights, validate_metadata
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.models import (
    create_model,
    model_preprocessing,
    model_spec,
    set_preprocessing,
    transfer_weights,
)
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.versions import versions

STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin")


@dataclass
class LoadedCheckpoint:
    """A rebuilt model (eval mode, on CPU) with its metadata, file, content hash and loading notes."""

    model: nn.Module
    meta: dict
    path: Path
    sha256: str
    notes: tuple[str, ...] = ()
    """One line each saying what loading added, initialised or dropped; empty when the weights loaded as they are."""

    @property
    def variant(self) -> str:
        return self.meta["variant"]

    @property
    def task(self) -> Task:
        return Task(self.meta["task"])

    @property
    def dataset(self) -> str:
        return self.meta["dataset"]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path: Path, model: nn.Module, **meta) -> Path:
    """Write ``model``'s weights and ``meta`` (task, dataset, recipe, seed, metrics, ...) atomically.

    The architecture (``model_spec``), variant name, format tag and library versions are added
    here, so every checkpoint carries them; so is an image model's ``preprocessing`` (a
    ``Preprocessing`` or its dict), by default the model's own (``models.model_preprocessing``).
    Written through ``atomic.atomic_file``.
    """
    given = meta.pop("preprocessing", None) or model_preprocessing(model)
    full = _describe(model, versions=versions(), **meta)
    if given is not None:
        full["preprocessing"] = given.to_dict() if isinstance(given, Preprocessing) else dict(given)
    path = Path(path)
    with atomic_file(path) as partial:
        save_model(model, str(partial), metadata={METADATA_KEY: json.dumps(full, sort_keys=True)})
    return path


def read_metadata(path: Path) -> dict:
    """The bilat-eval metadata of a safetensors checkpoint, checked by ``checkpoint_schema`` (fields,
    then the variant against the tensors), or a one-line ``InputError`` saying why not.

    An image checkpoint made before preprocessing was recorded gets ``Preprocessing.derived``.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            keys = list(handle.keys())
            if keys:
                handle.get_slice(keys[0])
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(
            f"checkpoint {path} is truncated or not a safetensors file ({_first_line(error)}): copy it again or re-create it with `bilat-eval train`"
        ) from error
    if METADATA_KEY not in header:
        raise InputError(
            f"checkpoint {path} has no bilat-eval metadata: load it as plain weights with --model NAME"
        )
    try:
        parsed = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise InputError(f"checkpoint {path}: its metadata is not JSON ({error}): re-create it with `bilat-eval train`") from None
    meta = validate_metadata(parsed, path)
    check_weights(meta, keys, path)
    if "preprocessing" not in meta:
        derived = Preprocessing.derived(meta["model"]["kwargs"])
        meta.update({} if derived is None else {"preprocessing": derived.to_dict()})
    return meta


def load_checkpoint(
    path: str | Path,
    model_name: str | None = None,
    *,
    variant: str | AttentionConfig | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
) -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint file, a plain state dict (needs ``model_name``) or ``timm:NAME``.

    ``variant`` (a name or a config; None = softmax) and ``model_kwargs`` (e.g. ``{"patch_size": 7}``)
    build the model plain weights load into; a bilat-eval checkpoint rebuilds its own model, so
    for it ``variant`` may only be None or its own and ``model_kwargs`` must be empty.
    ``preprocessing`` overrides fields of the checkpoint's ``Preprocessing`` (``mean``, ``std``,
    ``crop_pct``, ``interpolation``, ...); the model's mean/std follow. Bad values raise a
    ``FieldError`` on ``variant``, ``model_kwargs`` or the preprocessing field.
    """
    text = str(path)
    build = _Build(variant, model_kwargs, preprocessing)
    if text.startswith("timm:"):
        return _load_timm(text[len("timm:") :], model_name, build)
    path = Path(text)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist: pass the path of a .safetensors file from `bilat-eval train`")
    if path.suffix in STATE_DICT_SUFFIXES:
        return _load_state_dict_file(path, model_name, build)
    if model_name is not None:
        return _load_weights(path, _weights_file(path), model_name, build, f"weights file {path.name}")
    return _load_own(path, build)


def _load_own(path: Path, build: _Build) -> LoadedCheckpoint:
    """A bilat-eval checkpoint: its model rebuilt from its metadata, the preprocessing overrides applied."""
    meta = read_metadata(path)
    spec = meta["model"]
    own = AttentionConfig.from_dict(spec["attention"])
    variant = build.variant
    if variant is not None and (variant != own if isinstance(variant, AttentionConfig) else variant != own.name):
        raise FieldError("variant", f"checkpoint {path} is a {own.name} model and rebuilds as one: "
                                    "leave the variant out, or load its weights saved as a plain state dict")
    if build.model_kwargs:
        raise FieldError("model_kwargs", f"checkpoint {path} rebuilds its own model from its metadata: leave them out")
    try:
        model = create_model(spec["name"], variant=own, **spec["kwargs"])
    except (TypeError, ValueError, ZeroDivisionError, AssertionError) as error:
        raise InputError(f"checkpoint {path}: metadata field 'model.kwargs' does not build model {spec['name']} "
                         f"({_first_line(error)}): re-create it with `bilat-eval train`") from error
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, SafetensorError) as error:
        raise InputError(
            f"checkpoint {path} does not match its own model description ({_first_line(error)}): the file was altered; re-create it"
        ) from error
    stored = meta.get("preprocessing")
    if stored is None and build.preprocessing:
        raise FieldError("preprocessing", f"checkpoint {path} takes no images: leave the preprocessing out")
    chosen = None if stored is None else build.apply(model, Preprocessing.from_dict(stored)).to_dict()
    if chosen != stored:
        meta.update(preprocessing=chosen, model=model_spec(model))
    return LoadedCheckpoint(model.eval(), meta, path, file_sha256(path))


@dataclass(frozen=True)
class _Build:
    """What the caller asked of the model: variant, model kwargs, preprocessing overrides."""

    variant: str | AttentionConfig | None
    model_kwargs: Mapping[str, Any] | None
    preprocessing: Mapping[str, Any] | None

    def model(self, name: str) -> nn.Module:
        """``create_model(name)`` with the variant (None = softmax) and kwargs; a model kwarg that does
        not fit is a ``FieldError`` on ``model_kwargs``."""
        try:
            return create_model(name, variant=self.variant or "softmax", **dict(self.model_kwargs or {}))
        except (TypeError, ValueError, ZeroDivisionError, AssertionError) as error:
            raise FieldError("model_kwargs", f"model {name} cannot be built with {dict(self.model_kwargs or {})} "
                                             f"({_first_line(error)}): see `bilat-eval list models`") from error

    def apply(self, model: nn.Module, base: Preprocessing) -> Preprocessing:
        """``base`` with the overrides, set on ``model`` (which a checkpoint saved from it then records)."""
        wanted = base.with_overrides(self.preprocessing or {})
        set_preprocessing(model, wanted)
        return wanted


def _describe(model: nn.Module, **meta: Any) -> dict:
    """Format tag, architecture and variant of ``model``, then ``meta``."""
    spec = model_spec(model)
    return {"format": FORMAT, "model": spec, "variant": AttentionConfig.from_dict(spec["attention"]).name, **meta}


def _load_state_dict_file(path: Path, model_name: str | None, build: _Build) -> LoadedCheckpoint:
    if model_name is None:
        raise InputError(f"{path} is a plain state dict: add --model NAME (see `bilat-eval list models`)")
    try:
        with warnings.catch_warnings():  # bytes that are no pickle may name any "protocol"; the refusal below says it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, ValueError, IndexError, KeyError) as error:
        raise InputError(
            f"refused to load {path}: it is not a plain state dict of tensors (it holds other objects, and loading them "
            "would run code, or it is no pickle at all); save a plain state dict or a .safetensors file"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise InputError(f"{path} is not a readable state dict ({_first_line(error)}): copy it again") from error
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a state dict: save model.state_dict()")
    return _load_weights(path, state, model_name, build, f"state dict {path.name}")


def _load_weights(path: Path, state: dict, model_name: str, build: _Build, source: str) -> LoadedCheckpoint:
    """Plain weights into ``build.model(model_name)``; metadata says where they came from."""
    model = build.model(model_name)
    try:
        notes = transfer_weights(model, state)
    except ValueError as error:
        other_variant = re.search(r"unexpected keys blocks\.\d+\.attn\.(log_h_y|log_h_p|nu)\b", str(error))
        hint = " (the unexpected keys are another attention variant's: add --variant)" if other_variant else ""
        raise InputError(f"{source} does not fit model {model_name} ({_first_line(error)}): "
                         f"pick the matching --model and --model-kwargs{hint}") from error
    base = model_preprocessing(model)
    chosen = None if base is None else build.apply(model, base)
    spec = model_spec(model)
    meta = _describe(
        model,
        task=Task.IMAGE_CLASSIFICATION.value,
        dataset="imagenet",
        normalization={"mean": list(spec["kwargs"].get("mean", ())), "std": list(spec["kwargs"].get("std", ()))},
        source=source,
        **({} if chosen is None else {"preprocessing": chosen.to_dict()}),
    )
    return LoadedCheckpoint(model.eval(), meta, path, file_sha256(path), notes)


def _load_timm(name: str, model_name: str | None, build: _Build) -> LoadedCheckpoint:
    """timm's pretrained weights from the local Hugging Face cache into ``model_name`` (default: ``name``); never downloads."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg, split_model_name_tag

    ours = model_name or split_model_name_tag(name)[0]
    config = get_pretrained_cfg(name)
    if config is None:
        raise InputError(f"timm:{name} names no pretrained timm weights: use a name from `timm.list_pretrained()` or add --model NAME")
    cached = try_to_load_from_cache(config.hf_hub_id, "model.safetensors") if config.hf_hub_id else None
    if not isinstance(cached, str):
        raise InputError(
            f"timm:{name} weights are not in the local Hugging Face cache: fetch them once online with "
            f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"`, or pass the weights file with --model {ours}"
        )
    return _load_weights(Path(cached), load_file(cached), ours, build, f"timm:{name}")


def _weights_file(path: Path) -> dict:
    """The tensors of a ``.safetensors`` weights file; an unreadable one is a one-line ``InputError``."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"weights file {path} is truncated or not a safetensors file ({_first_line(error)}): copy it again") from error


def _first_line(error: BaseException) -> str:
    """An error's message folded onto one line and cut to 200 characters."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text[:200] or type(error).__name__
