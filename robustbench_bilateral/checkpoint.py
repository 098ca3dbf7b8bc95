"""Checkpoints: one safe format that rebuilds and describes its model; loading never runs code.

Format: a ``.safetensors`` file whose header metadata holds, under the key ``bilat_eval``, a JSON
object with everything needed to rebuild and judge the model::

    {"format": "bilat-eval-checkpoint/1",
     "model": {"name", "kwargs", "attention"},   # models.model_spec(): rebuilds the architecture
     "variant": "bilateral+boost", "task": "image-classification", "dataset": "fmnist",
     "normalization": {"mean": [...], "std": [...]}, "recipe": {...}, "seed": 0,
     "metrics": {...}, "versions": {...}, ...}   # language models add "vocab" and "context_length"

Other inputs load as plain weights only:

- ``.pt``/``.pth``/``.bin`` state dicts through ``torch.load(weights_only=True)`` (a pickle that
  would run code is refused) into ``create_model(model_name)``;
- ``timm:NAME``: a timm model's pretrained weights, only from the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from robustbench_bilateral.atomic import atomic_file
from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.models import create_model, model_spec
from robustbench_bilateral.versions import versions

FORMAT = "bilat-eval-checkpoint/1"
METADATA_KEY = "bilat_eval"
STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin")
TIMM_TO_OURS = {
    "deit_tiny_patch16_224": "bilat_deit_tiny_224",
    "deit_small_patch16_224": "bilat_deit_small_224",
}


@dataclass
class LoadedCheckpoint:
    """A rebuilt model (eval mode, on CPU) with its metadata, file and content hash."""

    model: nn.Module
    meta: dict
    path: Path
    sha256: str

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
    here, so every checkpoint carries them. Written through ``atomic.atomic_file``.
    """
    spec = model_spec(model)
    full = {
        "format": FORMAT,
        "model": spec,
        "variant": AttentionConfig.from_dict(spec["attention"]).name,
        "versions": versions(),
        **meta,
    }
    path = Path(path)
    with atomic_file(path) as partial:
        save_model(model, str(partial), metadata={METADATA_KEY: json.dumps(full, sort_keys=True)})
    return path


def read_metadata(path: Path) -> dict:
    """The bilat-eval metadata of a safetensors checkpoint, or a one-line error saying why not."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            if handle.keys():
                handle.get_slice(next(iter(handle.keys())))
    except (SafetensorError, OSError, ValueError) as error:
        raise BilatError(
            f"checkpoint {path} is truncated or not a safetensors file ({_first_line(error)}): copy it again or re-create it with `bilat-eval train`"
        ) from error
    if METADATA_KEY not in header:
        raise BilatError(
            f"checkpoint {path} has no bilat-eval metadata: load it as plain weights with --model NAME"
        )
    meta = json.loads(header[METADATA_KEY])
    if meta.get("format") != FORMAT:
        raise BilatError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}: re-create it")
    return meta


def load_checkpoint(path: str | Path, model_name: str | None = None, variant: str = "softmax") -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint file, a plain state dict (needs ``model_name``) or ``timm:NAME``."""
    text = str(path)
    if text.startswith("timm:"):
        return _load_timm(text[len("timm:") :], model_name, variant)
    path = Path(text)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist: pass the path of a .safetensors file from `bilat-eval train`")
    if path.suffix in STATE_DICT_SUFFIXES:
        return _load_state_dict_file(path, model_name, variant)
    if model_name is not None:
        return _load_weights(path, load_file(str(path)), model_name, variant, f"weights file {path.name}")
    meta = read_metadata(path)
    spec = meta["model"]
    model = create_model(spec["name"], variant=AttentionConfig.from_dict(spec["attention"]), **spec["kwargs"])
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, SafetensorError) as error:
        raise BilatError(
            f"checkpoint {path} does not match its own model description ({_first_line(error)}): the file was altered; re-create it"
        ) from error
    return LoadedCheckpoint(model.eval(), meta, path, file_sha256(path))


def _load_state_dict_file(path: Path, model_name: str | None, variant: str) -> LoadedCheckpoint:
    if model_name is None:
        raise InputError(f"{path} is a plain state dict: add --model NAME (see `bilat-eval list models`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise BilatError(
            f"refused to load {path}: it holds objects other than tensors, and loading them would run code; save a plain state dict or a .safetensors file"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise BilatError(f"{path} is not a readable state dict ({_first_line(error)}): copy it again") from error
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise BilatError(f"{path} holds a {type(state).__name__}, not a state dict: save model.state_dict()")
    return _load_weights(path, state, model_name, variant, f"state dict {path.name}")


def _load_weights(path: Path, state: dict, model_name: str, variant: str, source: str, **kwargs) -> LoadedCheckpoint:
    """Plain weights into ``create_model(model_name, variant)``; metadata says where they came from."""
    from robustbench_bilateral.models.vit import load_timm_state_dict

    model = create_model(model_name, variant=variant, **kwargs)
    try:
        load_timm_state_dict(model, state)
    except RuntimeError as error:
        raise BilatError(f"{source} does not fit model {model_name} ({_first_line(error)}): pick the matching --model") from error
    spec = model_spec(model)
    meta = {
        "format": FORMAT,
        "model": spec,
        "variant": AttentionConfig.from_dict(spec["attention"]).name,
        "task": Task.IMAGE_CLASSIFICATION.value,
        "dataset": "imagenet",
        "normalization": {"mean": list(spec["kwargs"].get("mean", ())), "std": list(spec["kwargs"].get("std", ()))},
        "source": source,
    }
    return LoadedCheckpoint(model.eval(), meta, path, file_sha256(path))


def _load_timm(name: str, model_name: str | None, variant: str) -> LoadedCheckpoint:
    """timm's pretrained weights from the local Hugging Face cache; never downloads."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    base = name.split(".")[0]
    ours = model_name or TIMM_TO_OURS.get(base)
    config = get_pretrained_cfg(name if "." in name else f"{name}.fb_in1k") or get_pretrained_cfg(name)
    if ours is None or config is None:
        raise InputError(f"timm:{name} has no matching bilat-eval model: choose one of {', '.join(TIMM_TO_OURS)} or add --model NAME")
    cached = try_to_load_from_cache(config.hf_hub_id, "model.safetensors") if config.hf_hub_id else None
    if not isinstance(cached, str):
        raise BilatError(
            f"timm:{name} weights are not in the local Hugging Face cache: fetch them once online with "
            f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"`, or pass the weights file with --model {ours}"
        )
    return _load_weights(
        Path(cached), load_file(cached), ours, variant, f"timm:{name}", mean=tuple(config.mean), std=tuple(config.std)
    )


def _first_line(error: BaseException) -> str:
    """An error's message folded onto one line and cut to 200 characters."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text[:200] or type(error).__name__
