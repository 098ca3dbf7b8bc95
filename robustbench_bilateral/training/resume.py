"""Optimiser state in a safetensors file, so an interrupted run resumes where its last epoch ended."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from robustbench_bilateral.atomic import atomic_file
from robustbench_bilateral.errors import BilatError

STATE_KEY = "bilat_eval_resume"


def save_resume_state(path: Path, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> None:
    """Write the optimiser's tensors (``<param index>.<name>``) and its settings, atomically."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    meta = {"epoch": epoch, "step": step, "param_groups": state["param_groups"]}
    with atomic_file(path) as partial:
        save_file(tensors, str(partial), metadata={STATE_KEY: json.dumps(meta)})


def load_resume_state(path: Path, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """Restore the optimiser from ``path``; returns the (epoch, step) it was saved after."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[STATE_KEY])
        tensors = load_file(str(path))
    except Exception as error:
        raise BilatError(f"resume state {path} is unreadable ({error}): delete it or rerun with --fresh") from error
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    return int(meta["epoch"]), int(meta["step"])
