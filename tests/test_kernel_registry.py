"""A kernel registered at run time is a variant everywhere: listed, trained by the CLI, rebuilt from its checkpoint."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from cli.main import cli
from robustbench_bilateral.attention import KERNELS, SoftmaxAttention, register_kernel, variant_names
from robustbench_bilateral.checkpoint import load_checkpoint, read_metadata
from robustbench_bilateral.data import image_tensors, load_source
from robustbench_bilateral.models import create_model

NAME = "hot_softmax_test"


class HotSoftmax(SoftmaxAttention):
    """Softmax attention at temperature 2: ``A = softmax(q_i . k_j / (2 sqrt(d)))``."""

    formula = "A = softmax(q_i . k_j / (2 sqrt(d))), softmax at temperature 2"

    def operator(self, q, k, positions, causal):
        return super().operator(q * 0.5, k, positions, causal)

    def logits(self, q, k, positions):
        return super().logits(q * 0.5, k, positions)


@pytest.fixture
def hot_kernel():
    register_kernel(NAME)(HotSoftmax)
    yield NAME
    KERNELS.unregister(NAME)


def test_a_registered_kernel_is_listed_only_while_registered(hot_kernel):
    listed = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["list", "variants"])
    assert listed.exit_code == 0, listed.output
    assert f"{NAME}+boost" in listed.output and "softmax at temperature 2" in listed.output
    assert variant_names()[:5] == ("softmax", "bilateral", "softmax+boost", "bilateral+boost", "twicing")
    KERNELS.unregister(NAME)
    assert NAME not in CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["list", "variants"]).output


def test_the_cli_trains_a_registered_kernel_and_its_checkpoint_rebuilds_it(hot_kernel, tmp_path):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", NAME,
                                      "--preset", "smoke"])
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "checkpoints" / "mnist5k" / "smoke" / f"{NAME}-seed0" / "model.safetensors"
    meta = read_metadata(checkpoint)
    assert meta["variant"] == NAME and meta["model"]["attention"]["kernel"] == NAME
    loaded = load_checkpoint(checkpoint)
    assert all(type(block.attn) is HotSoftmax for block in loaded.model.blocks)
    images, _ = image_tensors(load_source("mnist5k").split("test"), 8)
    again = load_checkpoint(checkpoint)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(images), again.model(images), rtol=0, atol=0)
        plain = type(loaded.model)(attention=loaded.model.attention_config, **loaded.model.model_kwargs).eval()
        plain.load_state_dict(loaded.model.state_dict())
        torch.testing.assert_close(plain(images), loaded.model(images), rtol=0, atol=0)
        softmax = create_model(meta["model"]["name"], "softmax", **meta["model"]["kwargs"]).eval()
        softmax.load_state_dict(loaded.model.state_dict())
        assert not torch.allclose(softmax(images), loaded.model(images))


def test_an_unknown_variant_is_a_one_line_error_listing_the_live_names(hot_kernel, tmp_path):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "train", "--task", "mnist5k", "--variant", "nope",
                                      "--preset", "smoke"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --variant: unknown variant 'nope': choose one of softmax, bilateral")
    assert f"{NAME}+boost" in result.output and result.output.count("\n") == 1
