"""The README's "Extending" examples, run as the plugins they are: an attack, a corruption and a kernel."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cli.main import cli, load_plugin
from robustbench_bilateral.attention import KERNELS
from robustbench_bilateral.corruptions import CORRUPTIONS, apply_corruption, resolve_corruptions
from robustbench_bilateral.models import create_model
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.threats import THREATS, build_threat

README = Path(__file__).resolve().parents[1] / "README.md"


def example(heading: str) -> str:
    """The python block under ``### heading`` of the README's Extending section."""
    section = README.read_text(encoding="utf-8").split("## Extending", 1)[1].split("\n## ", 1)[0]
    body = section.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


@pytest.fixture
def plugin(tmp_path):
    """Load a README example as a plugin file; forget what it registered afterwards."""
    loaded: list[str] = []

    def load(heading: str, filename: str) -> None:
        path = tmp_path / filename
        path.write_text(example(heading), encoding="utf-8")
        load_plugin(str(path))
        loaded.append(path.stem)

    yield load
    THREATS.unregister("sign-steps")
    CORRUPTIONS.unregister("posterize")
    KERNELS.unregister("cosine")
    for name in loaded:
        sys.modules.pop(name, None)


def test_the_attack_example_gets_a_flag_and_runs(plugin, smoke_checkpoints, tmp_path):
    plugin("An attack", "my_attacks.py")
    assert build_threat("sign-steps", eps="4/255").params["rounds"] == 10
    result = CliRunner().invoke(cli, ["--out", str(tmp_path / "out"), "attack", "--sign-steps", "--steps", "3",
                                      "--eps", "0,8/255", "--n-examples", "48", str(smoke_checkpoints["softmax"])],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path / "out", "main") as store:
        correct = {(row.threat, row.params.get("eps")): row for row in store.rows() if row.metric == "accuracy"}
    assert correct[("sign-steps", 8 / 255)].params["rounds"] == 3
    assert correct[("sign-steps", 0.0)].n_correct == correct[("clean", None)].n_correct
    assert correct[("sign-steps", 8 / 255)].n_correct < correct[("clean", None)].n_correct


def test_the_corruption_example_is_a_corruption_everywhere(plugin):
    plugin("A corruption", "my_corruptions.py")
    images = torch.rand(3, 3, 32, 32)
    out = apply_corruption("posterize", images, 3, ExampleRNG(0, range(3)))
    assert torch.equal(out, (images * 2**4).floor() / 2**4)
    assert resolve_corruptions("all")[-1] == "posterize" and "posterize" in resolve_corruptions("digital")
    assert "posterize" not in resolve_corruptions("imagenet-c")
    assert build_threat("corruption", corruption="posterize", severity=5).params == {"corruption": "posterize", "severity": 5}


def test_the_kernel_example_builds_boosted_models_whose_fast_form_equals_its_logits(plugin):
    plugin("An attention kernel", "my_kernels.py")
    torch.manual_seed(0)
    model = create_model("bilat_vit_tiny_28", variant="cosine+boost").eval()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    attention = model.blocks[0].attn
    x = torch.randn(2, 17, 128)
    q, k, v = attention._heads(x)
    matrix = attention.attention_matrix(x)
    torch.testing.assert_close(attention.operator(q, k, None, False)(v), matrix @ v, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(matrix.sum(-1), torch.ones(matrix.shape[:-1]))
