"""The reference AutoAttack (``autoattack``, pyautoattack) beside torchattacks' one: classes from the model,
every budget on the rows, seeded rows, small class counts, and the command line."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import robustbench_bilateral as rb
from cli.main import cli
from robustbench_bilateral.data import image_tensors, load_source
from robustbench_bilateral.engine import Clean
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import describe_checkpoint
from robustbench_bilateral.threats import build_threat

N = 4
QUICK = {"n_iter": 1, "n_target_classes": 1, "n_queries": 5}
"""Budgets small enough for a test on two CPU cores; the rows record them."""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), terminal_width=200)


def comparable(rows):
    return [dataclasses.replace(row, wall_s=0.0, run="") for row in rows]


def accuracy(rows, threat: str):
    return next(row for row in rows if row.threat == threat and row.metric == "accuracy")


def test_classes_come_from_the_model_and_the_rows_carry_every_budget(smoke_checkpoints, tmp_path):
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    defaults = [build_threat("autoattack", eps=8 / 255), build_threat("autoattack-torchattacks", eps=8 / 255)]
    assert {threat.params["n_classes"] for threat in defaults} == {None}
    planned = [cell.threat.params for cell in plan_cells([info], defaults, n_examples=N)]
    assert planned[0]["n_classes"] == planned[1]["n_classes"] == 10, "the smoke model has 10 classes"
    assert (planned[0]["n_iter"], planned[0]["n_target_classes"], planned[0]["n_queries"], planned[0]["n_restarts"]) == (100, 9, 5000, 1)
    assert planned[0]["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]

    threats = [Clean(), build_threat("autoattack", eps=8 / 255, batch_size=N, **QUICK)]
    rows = run_cells(plan_cells([info], threats, n_examples=N), out=tmp_path, batch_size=N)
    reference = accuracy(rows, "autoattack")
    assert reference.params == {"eps": 8 / 255, "norm": "Linf", "space": "pixel", "labels": "true", "version": "standard",
                                "n_classes": 10, "n_iter": 1, "n_target_classes": 1, "n_queries": 5, "n_restarts": 1,
                                "attacks": ["apgd-ce", "apgd-t", "fab-t", "square"], "batch_size": N}
    assert reference.seed == 0 and reference.n_correct <= accuracy(rows, "clean").n_correct


def test_the_same_seed_gives_the_same_rows(smoke_checkpoints, tmp_path):
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    threat = build_threat("autoattack", eps=8 / 255, batch_size=N, **QUICK)
    first = run_cells(plan_cells([info], [threat], n_examples=N, seed=5), out=tmp_path, run="first", batch_size=N)
    again = run_cells(plan_cells([info], [threat], n_examples=N, seed=5), out=tmp_path, run="again", batch_size=N)
    assert comparable(again) == comparable(first)
    with ResultStore.for_run(tmp_path, "first") as one, ResultStore.for_run(tmp_path, "again") as other:
        key = accuracy(first, "autoattack").cell_key
        assert (one.outcomes(key)["predictions"] == other.outcomes(key)["predictions"]).all()
    other_seed = plan_cells([info], [threat], n_examples=N, seed=6)
    assert {cell.key for cell in other_seed}.isdisjoint(row.cell_key for row in first)


def two_digit_classifier() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A 2-class classifier of real mnist5k 0s and 1s that outputs probabilities (logistic regression on the
    pixels, then a softmax: the reference code's checks warn about such outputs), and its digits."""
    images, labels = image_tensors(load_source("mnist5k").split("test"), 300)
    keep = labels <= 1
    images, labels = images[keep], labels[keep]
    linear = nn.Sequential(nn.Flatten(), nn.Linear(images[0].numel(), 2))
    optimiser = torch.optim.SGD(linear.parameters(), lr=0.5)
    for _ in range(30):
        optimiser.zero_grad()
        nn.functional.cross_entropy(linear(images), labels).backward()
        optimiser.step()
    return nn.Sequential(linear, nn.Softmax(dim=-1)).eval(), images[:16], labels[:16]


def test_a_two_class_model_runs_without_apgd_t_with_one_target_and_prints_nothing(tmp_path, capsys):
    model, images, labels = two_digit_classifier()
    threats = ["clean", ("autoattack", {"eps": 0.2, "n_iter": 5, "n_queries": 10})]
    frame = rb.evaluate(model, (images, labels), threats, out=tmp_path, batch_size=16)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", "the reference code's log stays off the terminal"
    rows = frame[frame.metric == "accuracy"].set_index("threat")
    assert rows.loc["clean", "value"] > 0.9
    assert rows.loc["autoattack", "value"] < rows.loc["clean", "value"]
    assert rows.loc["autoattack", "n_classes"] == 2 and rows.loc["autoattack", "n_target_classes"] == 1
    assert rows.loc["autoattack", "attacks"] == '["apgd-ce","fab-t","square"]'
    with pytest.raises(FieldError, match=r"^threats\[0\]\.n_classes: the model has 2 classes, too few for torchattacks' AutoAttack"):
        rb.evaluate(model, (images, labels), [("autoattack-torchattacks", {"eps": 0.2})], batch_size=16)


def test_a_budget_that_does_not_fit_the_model_is_one_line_naming_it(smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    for table, message in (("n_classes = 5", "threats[0].n_classes: is 5 but"),
                           ("n_target_classes = 12", "threats[0].n_target_classes: 12 is more than the 9 other classes")):
        spec = tmp_path / "spec.toml"
        spec.write_text(f'n_examples = 8\ncheckpoints = ["{path}"]\n[[threats]]\nname = "autoattack"\neps = "8/255"\n{table}\n',
                        encoding="utf-8")
        result = invoke("--out", str(tmp_path / "out"), "batch", str(spec))
        assert result.exit_code == 2 and result.output.startswith(f"error: {message}"), result.output
        assert result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_attack_command_runs_the_reference_under_its_plain_name(smoke_checkpoints, tmp_path):
    """At eps 0.6 APGD-CE fools every digit in one iteration, so the later attacks have nothing left to do."""
    path = str(smoke_checkpoints["softmax"])
    result = invoke("--out", str(tmp_path), "attack", "--autoattack", "--eps", "0.6", "--steps", "1",
                    "--n-examples", str(N), "--batch-size", str(N), path)
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path, "main") as store:
        row = accuracy(store.rows(), "autoattack")
    assert row.params["n_iter"] == 1 and row.params["n_classes"] == 10 and row.params["n_queries"] == 5000
    assert row.n_correct == 0 and "autoattack: robust accuracy" in result.output
    help_text = " ".join(invoke("attack", "--help").output.split())
    assert "--autoattack AutoAttack, the reference code" in help_text
    assert "--autoattack-torchattacks torchattacks' AutoAttack re-implementation" in help_text


@pytest.mark.slow
def test_the_standard_budgets_on_a_few_examples_are_at_most_pgd(smoke_checkpoints, tmp_path):
    """The standard version (100 iterations, 9 targets, 5,000 Square queries) beats PGD-20 or ties it."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    eps = 4 / 255
    threats = [Clean(), build_threat("pgd", eps=eps, batch_size=8), build_threat("autoattack", eps=eps, batch_size=8)]
    rows = run_cells(plan_cells([info], threats, n_examples=8), out=tmp_path, batch_size=8)
    reference = accuracy(rows, "autoattack")
    assert (reference.params["n_iter"], reference.params["n_target_classes"], reference.params["n_queries"]) == (100, 9, 5000)
    assert reference.n_correct <= accuracy(rows, "pgd").n_correct <= accuracy(rows, "clean").n_correct
