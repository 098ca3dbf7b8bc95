"""``bilat-eval train`` from pretrained weights and with every variant setting, on real mnist5k.

Weights are made here: a timm ``VisionTransformer`` created without download and saved with
``torch.save(model.state_dict())``; the CLI runs through click's CliRunner.
"""

from __future__ import annotations

import re

import pytest
import timm
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from safetensors.torch import load_file

from cli.main import cli
from robustbench_bilateral.attention import AttentionConfig
from robustbench_bilateral.checkpoint import load_checkpoint, read_metadata
from robustbench_bilateral.data import image_tensors, load_source
from robustbench_bilateral.models import create_model, parse_model_kwargs
from robustbench_bilateral.training import train

TIMM_NAME = "vit_tiny_patch16_224"
TIMM_KWARGS = "patch_size=7,depth=2"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), terminal_width=400, env={"COLUMNS": "400"})


@pytest.fixture(scope="module")
def mnist_batch():
    """The first 256 mnist5k test images and labels."""
    return image_tensors(load_source("mnist5k").split("test"), n=256)


@pytest.fixture(scope="module")
def timm_state_dict(tmp_path_factory):
    """A timm ViT for 28 px grey digits (patch 7, depth 2, 10 classes), random weights, saved as .pth."""
    torch.manual_seed(0)
    model = timm.create_model(TIMM_NAME, pretrained=False, in_chans=1, img_size=28, patch_size=7, depth=2, num_classes=10)
    path = tmp_path_factory.mktemp("timm") / "vit.pth"
    torch.save(model.state_dict(), path)
    return path


def batch_loss(model, batch) -> float:
    images, labels = batch
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(images), labels))


def test_train_init_from_a_timm_state_dict_as_bilateral_improves_the_loss(tmp_path, timm_state_dict, mnist_batch):
    result = invoke("--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", "bilateral", "--preset", "smoke",
                    "--init", str(timm_state_dict), "--model", TIMM_NAME, "--model-kwargs", TIMM_KWARGS)
    assert result.exit_code == 0, result.output
    assert "dropped pos_embed" in result.output and "log_h_y" in result.output, result.output
    checkpoint = next(tmp_path.glob("checkpoints/mnist5k/smoke/bilateral-seed0-*/model.safetensors"))
    meta = read_metadata(checkpoint)
    assert meta["init"]["source"] == str(timm_state_dict) and len(meta["init"]["sha256"]) == 64
    assert meta["overrides"]["model"] == TIMM_NAME and meta["variant"] == "bilateral"
    start = load_checkpoint(timm_state_dict, TIMM_NAME, variant="bilateral",
                            model_kwargs={**parse_model_kwargs(TIMM_KWARGS), "img_size": 28, "in_chans": 1,
                                          "num_classes": 10, "mean": (0.1307,), "std": (0.3081,)})
    trained = load_checkpoint(checkpoint)
    assert set(trained.model.state_dict()) == set(start.model.state_dict())
    assert batch_loss(trained.model, mnist_batch) < batch_loss(start.model, mnist_batch) - 0.2


FLAGS = ["--pos-kernel", "sinusoidal", "--pos-dim", "4", "--boost-steps", "2", "--nu", "0.5", "--layers", "1",
         "--depth", "2", "--dim", "48", "--heads", "3", "--patch", "4", "--model-kwargs", "mlp_ratio=3.0",
         "--mean", "0.2", "--std", "0.4", "--crop-pct", "0.9", "--interpolation", "bicubic"]


def test_every_train_flag_lands_in_the_checkpoint_and_rebuilds_the_same_model(tmp_path, mnist_batch):
    args = ["--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", "bilateral+boost", "--preset", "smoke"]
    result = invoke(*args, *FLAGS)
    assert result.exit_code == 0, result.output
    (checkpoint,) = tmp_path.glob("checkpoints/mnist5k/smoke/bilateral-boost-seed0-*/model.safetensors")
    meta = read_metadata(checkpoint)
    kwargs, attention = meta["model"]["kwargs"], meta["model"]["attention"]
    assert {key: kwargs[key] for key in ("pos_dim", "depth", "embed_dim", "num_heads", "patch_size", "mlp_ratio",
                                         "mean", "std")} == {
        "pos_dim": 4, "depth": 2, "embed_dim": 48, "num_heads": 3, "patch_size": 4, "mlp_ratio": 3.0,
        "mean": [0.2], "std": [0.4]}
    assert attention == {"name": "bilateral+boost", "kernel": "bilateral", "pos_kernel": "sinusoidal",
                         "boost_steps": 2, "nu_init": 0.5, "layers": [1]}
    assert meta["preprocessing"] == {"mean": [0.2], "std": [0.4], "input_size": 28, "resize": None, "crop_pct": 0.9,
                                     "interpolation": "bicubic"}
    assert meta["overrides"]["attention"] == {"pos_kernel": "sinusoidal", "boost_steps": 2, "nu_init": 0.5, "layers": [1]}
    loaded = load_checkpoint(checkpoint)
    stored = load_file(str(checkpoint))
    assert set(loaded.model.state_dict()) == set(stored)
    assert all(torch.equal(loaded.model.state_dict()[key], stored[key]) for key in stored)
    rebuilt = create_model(meta["model"]["name"], variant=AttentionConfig.from_dict(attention), **kwargs)
    rebuilt.load_state_dict(stored, strict=True)
    with torch.no_grad():
        assert torch.equal(loaded.model(mnist_batch[0]), rebuilt.eval()(mnist_batch[0]))
    first, second = (block.attn for block in loaded.model.blocks)
    assert type(first).__name__ == "SoftmaxAttention" and first.nu is None
    assert type(second).__name__ == "BilateralAttention" and second.config.boost_steps == 2
    again = invoke(*args, *FLAGS)
    assert again.exit_code == 0 and again.output.strip().startswith("reused"), again.output
    changed = invoke(*args, *FLAGS[:-2], "--interpolation", "bilinear")
    assert changed.exit_code == 0 and "trained: " in changed.output, changed.output
    assert len(list(tmp_path.glob("checkpoints/mnist5k/smoke/bilateral-boost-seed0-*/model.safetensors"))) == 2


@pytest.mark.parametrize("args, message", [
    (["--nu", "nan"], "error: --nu: must be a finite number"),
    (["--layers", "0,x"], "error: --layers: must be block indices separated by commas"),
    (["--layers", "3"], "error: --layers: block 3 does not exist: the model has blocks 0..0"),
    (["--pos-kernel", "polar"], "error: --pos-kernel: unknown position kernel 'polar'"),
    (["--depth", "0"], "error: --depth: must be a whole number >= 1, got 0"),
    (["--heads", "5"], "error: --heads:"),
    (["--mean", "0.1,0.2", "--std", "0.3,0.3"], "error: --mean: needs 1 value(s), one per channel of 'mnist5k'"),
    (["--interpolation", "cubic"], "error: --interpolation: unknown interpolation 'cubic'"),
    (["--model-kwargs", "depth"], "error: --model-kwargs: item 'depth' is not key=value"),
    (["--depth", "2", "--model-kwargs", "depth=3"], "error: --depth: is also in --model-kwargs"),
])
def test_a_bad_train_flag_is_one_line_naming_it(tmp_path, args, message):
    result = invoke("--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", "bilateral", "--preset", "smoke",
                    *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.output
    assert not list(tmp_path.glob("checkpoints/*/*/*/model.safetensors"))


def test_a_state_dict_that_does_not_fit_fails_in_one_line_naming_the_keys(tmp_path, timm_state_dict):
    result = invoke("--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", "softmax", "--preset", "smoke",
                    "--init", str(timm_state_dict), "--model", TIMM_NAME, "--model-kwargs", "patch_size=7,depth=1")
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert "blocks.1." in result.stderr, result.output


def listed_model_kwargs(preset: str, task: str) -> tuple[str, str]:
    """(model, --model-kwargs) of the row ``preset`` x ``task`` of `bilat-eval list models`."""
    result = invoke("list", "models")
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    (row,) = [row for row in rows if row[:2] == [preset, task]]
    return row[2], "" if row[3] == "(none)" else row[3]


def test_list_models_shows_the_fmnist_presets_train_patch_7():
    assert listed_model_kwargs("quick", "fmnist") == ("bilat_vit_tiny_28", "patch_size=7,embed_dim=64,depth=2")
    assert listed_model_kwargs("standard", "fmnist") == ("bilat_vit_tiny_28", "patch_size=7")


def test_a_smoke_checkpoint_saved_as_pth_loads_with_the_listed_model_kwargs(tmp_path, mnist_batch):
    checkpoint = train("mnist5k", "softmax", "smoke", tmp_path / "run").checkpoint
    own = load_checkpoint(checkpoint)
    pth = tmp_path / "smoke.pth"
    torch.save(own.model.state_dict(), pth)
    model, text = listed_model_kwargs("smoke", "mnist5k")
    assert re.fullmatch(r"[\w=(),.]+", text), text
    plain = load_checkpoint(pth, model, model_kwargs=parse_model_kwargs(text))
    assert plain.notes == ()
    with torch.no_grad():
        assert torch.equal(plain.model(mnist_batch[0]), own.model(mnist_batch[0]))
