"""The Python API ``robustbench_bilateral.evaluate``: the README example, modules, tensors, the store, errors,
and the same rows as the command line and a TOML spec for the same settings."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import robustbench_bilateral as rb
from cli.main import cli
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.module_checkpoint import Normalized, state_dict_sha256
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import load_split

README = Path(__file__).resolve().parent.parent / "README.md"
FGSM = ("fgsm", {"eps": "4/255"})


def readme_example() -> str:
    """The python code block of the README's ``## Python API`` section."""
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readme_example_runs_and_prints_its_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    frame = namespace["frame"]
    assert list(frame.threat) == ["clean", "fgsm", "fgsm", "noise", "noise"]
    assert list(frame.metric) == ["accuracy", "accuracy", "success_rate", "accuracy", "success_rate"]
    assert set(frame.n[frame.metric == "accuracy"]) == {64} and set(frame.variant) == {"bilateral"}
    assert frame.value.between(0, 1).all() and (tmp_path / "checkpoints" / "bilateral").is_dir()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["variant", "threat", "metric", "value"]
    assert [line.split()[:3] for line in printed[1:]] == [["bilateral", threat, metric]
                                                         for threat, metric in zip(frame.threat, frame.metric)]


def test_import_is_light_and_help_documents_evaluate():
    code = ("import sys, pydoc, robustbench_bilateral as rb; light = 'torch' not in sys.modules; "
            "text = pydoc.render_doc(rb.evaluate, renderer=pydoc.plaintext); print(light, 'Returns:' in text, "
            "'Example:' in text, 'batch_size' in text)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True"]


def linear_classifier() -> nn.Module:
    """An untrained linear classifier of 28x28 grey images, fixed by its seed."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def test_a_module_with_given_mean_and_std_is_evaluated_as_normalised():
    model = linear_classifier()
    frame = rb.evaluate(model, "mnist5k", ["clean"], mean=(0.5,), std=(0.25,), n_examples=40)
    images, labels = load_split("mnist5k", "test", 40, {"task": "image-classification", "model": {"kwargs": {}}})
    with torch.no_grad():
        expected = (model((images - 0.5) / 0.25).argmax(-1) == labels).float().mean().item()
    (row,) = frame.itertuples()
    assert row.value == pytest.approx(expected, abs=1e-12) and row.n == 40 and row.variant == "Sequential"
    assert row.checkpoint == "module:Sequential"
    assert row.checkpoint_sha256 == state_dict_sha256(Normalized(model, (0.5,), (0.25,))) != state_dict_sha256(model)
    plain = rb.evaluate(model, "mnist5k", ["clean"], n_examples=40)
    assert plain.checkpoint_sha256[0] == state_dict_sha256(model) and plain.cell_key[0] != row.cell_key


def test_given_tensors_give_the_values_of_the_named_split(smoke_checkpoints):
    loaded = load_checkpoint(smoke_checkpoints["softmax"])
    images, labels = load_split("mnist5k", "test", 48, loaded.meta)
    threats = ["clean", FGSM, {"name": "noise", "kind": "gaussian", "strength": 0.2}]
    given = rb.evaluate(loaded.model, (images, labels), threats, seed=2, batch_size=16)
    named = rb.evaluate(loaded.model, "mnist5k", threats, n_examples=48, seed=2, batch_size=16)
    assert given.dataset.str.startswith("tensors:").all() and set(named.dataset) == {"mnist5k"}
    assert list(given.value) == list(named.value) and list(given.n_correct) == list(named.n_correct)
    again = rb.evaluate(loaded.model, (images.clone(), labels.clone()), threats, seed=2, batch_size=16)
    assert list(again.cell_key) == list(given.cell_key)


def test_out_writes_the_store_and_a_second_call_resumes(smoke_checkpoints, tmp_path):
    path = smoke_checkpoints["bilateral"]
    threats = ["clean", FGSM]
    first = rb.evaluate(path, threats=threats, n_examples=32, out=tmp_path, run="nb")
    with ResultStore.for_run(tmp_path, "nb") as store:
        stored = store.rows()
    assert [row.cell_key for row in stored] == list(first.cell_key) and [row.value for row in stored] == list(first.value)
    assert {file.name for file in (tmp_path / "nb").glob("results*")} >= {"results.sqlite", "results.csv", "results.json"}
    second = rb.evaluate(path, threats=threats, n_examples=32, out=tmp_path, run="nb")
    assert second.equals(first)  # wall_s included: every row came back from the store, none was recomputed
    fresh = rb.evaluate(path, threats=threats, n_examples=32, out=tmp_path, run="nb", fresh=True)
    assert list(fresh.value) == list(first.value) and list(fresh.wall_s) != list(first.wall_s)


@pytest.mark.parametrize("kwargs, field, problem", [
    ({"batch_size": 0}, "batch_size", "must be a whole number >= 1, got 0"),
    ({"n_examples": -1}, "n_examples", "must be a whole number >= 0"),
    ({"threats": [FGSM, ("fgsm", {"eps": "lots"})]}, "threats[1].eps", "bad number 'lots'"),
    ({"threats": [{"name": "noise", "kind": "gaussian", "strength": [0.1, "lots", [0.2]]}]},
     "threats[0].strength[1]", "bad number 'lots'"),
    ({"threats": ["pgdd"]}, "threats[0].name", "unknown threat 'pgdd'"),
    ({"threats": "clean"}, "threats", "must be a list of threat names"),
    ({"data": "nowhere"}, "data", "unknown dataset 'nowhere'"),
    ({"split": "valid"}, "split", "dataset 'mnist5k' has no split 'valid'"),
    ({"run": "a/b"}, "run", "'a/b' is not a plain folder name"),
    ({"mean": "0.5,lots"}, "mean", "must be numbers separated by commas"),
    ({"std": (0.5, 0.5)}, "std", "has 2 values but mean has 1"),
    ({"crop_pct": 0}, "crop_pct", "must be in (0, 1]"),
    ({"variant": "bilateral"}, "variant", "checkpoint "),
    ({"model_kwargs": "depth"}, "model_kwargs", "item 'depth' is not key=value"),
    ({"model": 42}, "model", "must be an nn.Module or a checkpoint path"),
    ({"model": "nowhere.safetensors"}, "model", "checkpoint nowhere.safetensors does not exist"),
])
def test_bad_arguments_are_named_as_python_spells_them(smoke_checkpoints, tmp_path, kwargs, field, problem):
    arguments = {"model": smoke_checkpoints["softmax"], "data": "mnist5k", "threats": ["clean"], "out": tmp_path, **kwargs}
    with pytest.raises(FieldError) as caught:
        rb.evaluate(**arguments)
    assert caught.value.field == field and caught.value.problem.startswith(problem)
    assert str(caught.value).count("\n") == 0 and not (tmp_path / "main").exists()


def test_a_module_needs_data_and_mean_with_std():
    with pytest.raises(FieldError, match=r"^data: an nn.Module has no dataset of its own"):
        rb.evaluate(linear_classifier())
    with pytest.raises(FieldError, match=r"^std: give mean and std together"):
        rb.evaluate(linear_classifier(), "mnist5k", mean=(0.5,))


def comparable(rows):
    """Rows without what legitimately differs between two runs: timing and the run's name."""
    return [dataclasses.replace(row, wall_s=0.0, run="") for row in rows]


def test_command_line_toml_and_python_give_the_same_rows(smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax+boost"])
    common = ["--device", "cpu", "--seed", "3", "--out", str(tmp_path)]
    attack = CliRunner().invoke(cli, [*common, "attack", "--fgsm", "--eps", "4/255", "--n-examples", "48",
                                      "--batch-size", "16", "--run", "cli", path])
    assert attack.exit_code == 0, attack.output
    spec = tmp_path / "same.toml"
    spec.write_text(f'n_examples = 48\nbatch_size = 16\ncheckpoints = ["{path}"]\n'
                    '[[threats]]\nname = "clean"\n[[threats]]\nname = "fgsm"\neps = "4/255"\n', encoding="utf-8")
    batch = CliRunner().invoke(cli, [*common, "batch", "--baseline", "softmax+boost", str(spec)])
    assert batch.exit_code == 0, batch.output
    frame = rb.evaluate(path, threats=["clean", FGSM], n_examples=48, batch_size=16, seed=3, out=tmp_path, run="py")
    rows = {}
    for run in ("cli", "same", "py"):
        with ResultStore.for_run(tmp_path, run) as store:
            rows[run] = store.rows()
    assert len(rows["py"]) == 3 and [row.metric for row in rows["py"]] == ["accuracy", "accuracy", "success_rate"]
    assert comparable(rows["cli"]) == comparable(rows["same"]) == comparable(rows["py"])
    assert list(frame.cell_key) == [row.cell_key for row in rows["cli"]]
