"""Full-context perplexity (stride 1), the strided approximation, and evaluation at other context lengths.

``language_checkpoints`` (smoke-trained softmax with sinusoidal positions and bilateral, context
32) comes from ``conftest``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import robustbench_bilateral as rb
from cli.main import cli
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.engine import Clean
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.text.windows import sliding_window_nll, window_plan

WORDS = 120


@pytest.fixture(scope="module")
def learned_lm(tmp_path_factory):
    """A softmax language model with a learned position table of 32 tokens (``smoke`` preset)."""
    from robustbench_bilateral.training import train

    root = tmp_path_factory.mktemp("learned")
    return train("shakespeare", "softmax", "smoke", root / "softmax", attention={"pos_kernel": "learned"}).checkpoint


def full_context_nll(model: torch.nn.Module, ids: torch.Tensor, context: int) -> float:
    """sum over targets t >= 1 of -log p(id_t | the min(t, context) ids before it), one forward pass per target."""
    total = 0.0
    with torch.no_grad():
        for t in range(1, len(ids)):
            logits = model(ids[max(0, t - context) : t].unsqueeze(0))[0, -1]
            total -= float(F.log_softmax(logits.double(), dim=-1)[ids[t]])
    return total


@pytest.mark.parametrize(("length", "context", "stride"), [(2, 2, 1), (10, 32, 1), (100, 8, 1), (100, 8, 3), (101, 8, 8)])
def test_every_target_is_scored_once_with_the_stated_left_context(length, context, stride):
    plan = window_plan(length, context, stride)
    scored = [(t, t - start) for start, end, first in plan for t in range(first, end + 1)]
    assert [t for t, _ in scored] == list(range(1, length))
    assert all(end - start <= context for start, end, _ in plan)
    for t, left in scored:
        if stride == 1:
            assert left == min(t, context)
        else:
            assert left >= min(t, context - stride + 1)
    if stride == 1:
        assert len(plan) == max(1, length - context)


@pytest.mark.parametrize("variant", ["softmax", "bilateral"])
def test_stride_one_is_exp_total_nll_per_word_from_one_forward_per_token(language_checkpoints, variant, tmp_path):
    path = str(language_checkpoints[variant])
    checkpoint = load_checkpoint(path)
    model, context = checkpoint.model.eval(), checkpoint.meta["context_length"]
    ids = load_split("shakespeare", "test", WORDS, checkpoint.meta).ids(Clean(), 0)
    nll, counts = sliding_window_nll(model, ids, context, stride=1, batch_size=5)
    assert int(counts.sum()) == WORDS - 1 and len(counts) == WORDS - context
    assert float(nll.sum()) == pytest.approx(full_context_nll(model, ids, context), rel=1e-6)
    (row,) = run_cells(plan_cells([describe_checkpoint(path)], [Clean()], n_examples=WORDS), out=tmp_path, batch_size=16)
    assert (row.n, row.windows, row.params) == (WORDS - 1, WORDS - context, {"context": context, "stride": 1})
    assert row.value == pytest.approx(math.exp(full_context_nll(model, ids, context) / (WORDS - 1)), rel=1e-6)
    assert row.ci_low < row.value < row.ci_high
    with ResultStore.for_run(tmp_path, "main") as store:
        assert store.rows() == [row] and store.rows()[0].windows == WORDS - context


@pytest.mark.parametrize("variant", ["softmax", "bilateral"])
def test_sinusoidal_and_bilateral_positions_evaluate_at_other_context_lengths(language_checkpoints, variant, tmp_path):
    path = str(language_checkpoints[variant])
    model = load_checkpoint(path).model.eval()
    ids = load_split("shakespeare", "test", WORDS, load_checkpoint(path).meta).ids(Clean(), 0)
    values = {}
    for context in (16, 64):
        args = ["--out", str(tmp_path), "--quiet", "evaluate", path, "--n-examples", str(WORDS), "--context", str(context)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        (row,) = [r for r in ResultStore.for_run(tmp_path, "main").rows() if r.params["context"] == context]
        assert row.params["stride"] == 1 and row.n == WORDS - 1 and row.windows == max(1, WORDS - context)
        assert row.value == pytest.approx(math.exp(full_context_nll(model, ids, context) / (WORDS - 1)), rel=1e-6)
        values[context] = row.value
    assert values[16] != values[64]


def test_a_context_beyond_a_learned_table_fails_with_one_line(learned_lm, tmp_path):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "evaluate", str(learned_lm), "--context", "64"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --context: 64 is beyond the learned positions of softmax")
    assert "cover 32 tokens" in lines[0] and "context of 32 or less" in lines[0]
    shorter = CliRunner().invoke(cli, ["--out", str(tmp_path), "--quiet", "evaluate", str(learned_lm), "--context", "16",
                                       "--n-examples", "60"])
    assert shorter.exit_code == 0, shorter.output
    with pytest.raises(FieldError, match="^context: 64 is beyond"):
        rb.evaluate(str(learned_lm), context=64)


@pytest.mark.parametrize(("args", "message"), [
    (["--context", "1"], "error: --context: must be a whole number >= 2"),
    (["--stride", "0"], "error: --stride: must be a whole number >= 1"),
    (["--context", "8", "--stride", "9"], "error: --stride: 9 is longer than the context 8"),
    (["--stride", "33"], "error: --stride: 33 is longer than the context 32"),
])
def test_bad_context_or_stride_is_one_line_naming_the_flag(language_checkpoints, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "wordswap", str(language_checkpoints["softmax"]), *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()] and result.output.startswith(message)


def test_batch_specs_and_the_api_take_context_and_stride(language_checkpoints, tmp_path):
    path = language_checkpoints["bilateral"]
    spec = tmp_path / "lm.toml"
    spec.write_text(f'checkpoints = ["{path}"]\nn_examples = {WORDS}\ncontext = 48\n\n'
                    '[[threats]]\nname = "clean"\n\n'
                    '[[threats]]\nname = "wordswap"\nrate = 0.1\nstride = 4\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "--quiet", "batch", str(spec), "--baseline", "bilateral"])
    assert result.exit_code == 0, result.output
    rows = ResultStore.for_run(tmp_path, "lm").rows()
    assert [(row.threat, row.params["context"], row.params["stride"]) for row in rows] == [
        ("clean", 48, 1), ("wordswap", 48, 4)]
    assert rows[1].windows == 1 + math.ceil((WORDS - 1 - 48) / 4)
    frame = rb.evaluate(str(path), n_examples=WORDS, context=48, out=tmp_path, run="lm")
    assert frame["value"].tolist() == [rows[0].value]
    spec.write_text(f'checkpoints = ["{path}"]\n\n[[threats]]\nname = "clean"\nstride = 0\n', encoding="utf-8")
    bad = CliRunner().invoke(cli, ["--out", str(tmp_path), "batch", str(spec), "--baseline", "bilateral"])
    assert bad.exit_code == 2 and bad.output.startswith("error: threats[0].stride: must be a whole number >= 1")


def test_a_list_of_contexts_in_a_spec_table_evaluates_its_threats_at_each_length(language_checkpoints, tmp_path):
    path = language_checkpoints["bilateral"]
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'checkpoints = ["{path}"]\nn_examples = {WORDS}\n\n'
                    '[[threats]]\nname = "clean"\ncontext = [16, 48]\nstride = 4\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "--quiet", "batch", str(spec), "--baseline", "bilateral"])
    assert result.exit_code == 0, result.output
    rows = ResultStore.for_run(tmp_path, "sweep").rows()
    assert sorted((row.params["context"], row.params["stride"]) for row in rows) == [(16, 4), (48, 4)]
    single = rb.evaluate(str(path), n_examples=WORDS, context=16, stride=4, out=tmp_path, run="sweep")
    assert single["value"].tolist() == [next(row.value for row in rows if row.params["context"] == 16)]
    spec.write_text(f'checkpoints = ["{path}"]\n\n[[threats]]\nname = "clean"\ncontext = [16, 1]\n', encoding="utf-8")
    bad = CliRunner().invoke(cli, ["--out", str(tmp_path), "batch", str(spec), "--baseline", "bilateral"])
    assert bad.exit_code == 2 and bad.output.startswith("error: threats[0].context[1]: must be a whole number >= 2")
