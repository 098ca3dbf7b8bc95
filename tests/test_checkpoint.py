"""Checkpoints round-trip exactly, refuse damaged files with one line, and never run code."""

from __future__ import annotations

import pickle
import random
import subprocess

import pytest
import torch
from safetensors.torch import save_file

from robustbench_bilateral.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.models import create_model

SMALL_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mean": (0.286,), "std": (0.353,)}


def small_vit(variant: str = "bilateral+boost"):
    torch.manual_seed(0)
    return create_model("bilat_vit_tiny_28", variant=variant, **SMALL_VIT).eval()


@pytest.fixture()
def saved(tmp_path):
    model = small_vit()
    path = save_checkpoint(tmp_path / "model.safetensors", model, task="image-classification", dataset="fmnist",
                           recipe={"epochs": 1}, seed=3, metrics={"test_accuracy": 0.5})
    return model, path


def test_round_trip_rebuilds_the_same_model_bit_exactly(saved):
    model, path = saved
    loaded = load_checkpoint(path)
    assert loaded.variant == "bilateral+boost" and loaded.meta["seed"] == 3 and loaded.dataset == "fmnist"
    assert loaded.meta["versions"]["torch"] == torch.__version__.split("+")[0]
    original, rebuilt = model.state_dict(), loaded.model.state_dict()
    assert original.keys() == rebuilt.keys()
    assert all(torch.equal(original[key], rebuilt[key]) for key in original)
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(model(images), loaded.model(images))
    assert len(loaded.sha256) == 64


def test_truncated_file_gives_one_line_error(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BilatError, match="truncated or not a safetensors file") as caught:
        load_checkpoint(cut)
    assert "\n" not in str(caught.value)


def test_wrong_tensor_shapes_give_one_line_error(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    bigger = create_model("bilat_vit_tiny_28", variant="bilateral+boost", **{**SMALL_VIT, "embed_dim": 48})
    import json

    from safetensors.torch import save_model

    wrong = tmp_path / "wrong.safetensors"
    save_model(bigger, str(wrong), metadata={"bilat_eval": json.dumps(meta)})
    with pytest.raises(BilatError, match="does not match its own model description") as caught:
        load_checkpoint(wrong)
    assert "\n" not in str(caught.value)


def test_file_without_metadata_is_refused(tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file({"weight": torch.zeros(2)}, str(bare))
    with pytest.raises(BilatError, match="has no bilat-eval metadata: load it as plain weights with --model"):
        load_checkpoint(bare)


def test_state_dict_needs_a_model_name_and_loads_with_one(tmp_path):
    torch.manual_seed(1)
    model = create_model("bilat_vit_tiny_28", variant="softmax").eval()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(InputError, match="add --model NAME"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, model_name="bilat_vit_tiny_28")
    images = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.model(images), model(images))
    assert loaded.meta["source"] == "state dict weights.pt"


class _RunsCode:
    """Unpickling this object runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_bytes_that_are_no_pickle_are_refused_whatever_they_hold(tmp_path):
    garbage = tmp_path / "garbage.pt"
    for seed in range(200):  # random bytes fail inside torch.load in five different ways
        garbage.write_bytes(random.Random(seed).randbytes(300))
        with pytest.raises(InputError, match="refused to load"):
            load_checkpoint(garbage, model_name="bilat_vit_tiny_28")


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"weight": _RunsCode(marker)}, handle)
    with pytest.raises(BilatError, match="refused to load") as caught:
        load_checkpoint(evil, model_name="bilat_vit_tiny_28")
    assert caught.value.exit_code == 2
    assert not marker.exists()
