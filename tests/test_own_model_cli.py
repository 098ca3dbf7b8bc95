"""Own models through every evaluating door: a timm ViT state dict made here, loaded under its timm name
with model arguments, as softmax or built with another attention, with preprocessing overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from click.testing import CliRunner
from report_rows import stored_rows

import robustbench_bilateral as rb
from cli.main import cli
from robustbench_bilateral.checkpoint import file_sha256
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.evaluation import plan_evaluation
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import LoadSettings, load_split
from robustbench_bilateral.spec import EvaluationSpec

TIMM_NAME = "vit_tiny_patch16_224"
KWARGS = {"num_classes": 10, "in_chans": 1, "img_size": 28, "patch_size": 7, "depth": 2}
KWARGS_TEXT = ",".join(f"{key}={value}" for key, value in KWARGS.items())
N = 64


@pytest.fixture(scope="module")
def timm_vit() -> torch.nn.Module:
    """timm's own small ViT for 28 px grey images, random weights fixed by the seed, never downloaded."""
    torch.manual_seed(0)
    return timm.create_model(TIMM_NAME, pretrained=False, **KWARGS).eval()


@pytest.fixture(scope="module")
def weights(timm_vit, tmp_path_factory) -> Path:
    """The timm ViT's state dict saved as a plain ``.pth``."""
    path = tmp_path_factory.mktemp("own") / "vit.pth"
    torch.save(timm_vit.state_dict(), path)
    return path


def evaluate(out: Path, *args: str):
    """``bilat-eval --out OUT evaluate --dataset mnist5k --n-examples 64 ARGS`` through the real CLI."""
    return CliRunner().invoke(cli, ["--out", str(out), "--device", "cpu", "evaluate", "--dataset", "mnist5k",
                                    "--n-examples", str(N), *args], terminal_width=200)


def own_model(*extra: str) -> list[str]:
    return ["--model", TIMM_NAME, "--model-kwargs", KWARGS_TEXT, *extra]


def stored_predictions(out: Path, cell_key: str) -> torch.Tensor:
    with ResultStore.for_run(out, "main") as store:
        return torch.from_numpy(store.outcomes(cell_key)["predictions"])


def test_a_timm_state_dict_evaluates_under_its_timm_name_as_timm_computes(timm_vit, weights, tmp_path):
    result = evaluate(tmp_path, *own_model(), str(weights))
    assert result.exit_code == 0, result.output
    (row,) = stored_rows(tmp_path)
    assert (row.checkpoint, row.variant, row.threat, row.n) == (str(weights), "softmax", "clean", N)
    plan = plan_evaluation(EvaluationSpec([str(weights)], ["clean"], dataset="mnist5k", n_examples=N, model=TIMM_NAME,
                                          model_kwargs=KWARGS))
    (info,) = plan.checkpoints
    assert info.sha256 == row.checkpoint_sha256 and plan.cells[0].key == row.cell_key
    images, labels = load_split("mnist5k", "test", N, info.meta)
    mean, std = (torch.tensor(info.meta["preprocessing"][name]).view(1, -1, 1, 1) for name in ("mean", "std"))
    with torch.no_grad():
        predictions = timm_vit((images - mean) / std).argmax(-1)
    assert torch.equal(stored_predictions(tmp_path, row.cell_key), predictions)
    assert row.n_correct == int((predictions == labels).sum())


def test_another_variant_says_what_loading_changed_and_gets_its_own_cells(weights, tmp_path):
    softmax = evaluate(tmp_path, *own_model(), str(weights))
    bilateral = evaluate(tmp_path, *own_model("--variant", "bilateral"), str(weights))
    assert softmax.exit_code == 0 and bilateral.exit_code == 0, bilateral.output
    notes = [line for line in bilateral.output.splitlines() if line.startswith(f"{weights}: ")]
    assert any("added" in line and "log_h_y" in line for line in notes), bilateral.output
    assert any(line.startswith(f"{weights}: dropped pos_embed") for line in notes), bilateral.output
    assert not [line for line in softmax.output.splitlines() if line.startswith(f"{weights}: ")]
    first, second = stored_rows(tmp_path)
    assert (first.variant, second.variant) == ("softmax", "bilateral")
    assert first.cell_key != second.cell_key and first.checkpoint_sha256 != second.checkpoint_sha256
    assert 0 <= second.value <= 1 and second.n == N
    again = evaluate(tmp_path, *own_model("--variant", "bilateral"), str(weights))
    assert again.exit_code == 0 and stored_rows(tmp_path) == [first, second]  # resumed: the same cell, not rerun


@pytest.mark.parametrize("args, message", [
    (["--model", TIMM_NAME, "--model-kwargs", "patch_size"], "error: --model-kwargs: item 'patch_size' is not key=value"),
    (["--model", "vit_nowhere_patch3", "--model-kwargs", KWARGS_TEXT], "error: --model: unknown model 'vit_nowhere_patch3'"),
    (own_model("--variant", "bilaterall"), "error: --variant: unknown variant 'bilaterall'"),
    (own_model("--mean", "0.5,lots"), "error: --mean: must be numbers separated by commas"),
    (own_model("--crop-pct", "1.5"), "error: --crop-pct: must be in (0, 1]"),
    (own_model("--interpolation", "cubic"), "error: --interpolation: unknown interpolation 'cubic'"),
    (own_model("--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"), "error: --mean: "),
])
def test_a_bad_loading_option_is_one_line_naming_its_flag(weights, tmp_path, args, message):
    result = evaluate(tmp_path, *args, str(weights))
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "main").exists()


def test_a_state_dict_that_does_not_fit_names_the_keys_in_one_line(weights, tmp_path):
    deeper = KWARGS_TEXT.replace("depth=2", "depth=3")
    result = evaluate(tmp_path, "--model", TIMM_NAME, "--model-kwargs", deeper, str(weights))
    assert result.exit_code == 2 and result.output.startswith("error: CHECKPOINT 1: "), result.output
    assert "blocks.2." in result.output and result.output.count("\n") == 1


def test_mean_and_std_overrides_change_the_rows_and_are_recorded(weights, tmp_path):
    assert evaluate(tmp_path, *own_model(), str(weights)).exit_code == 0
    shifted = evaluate(tmp_path, *own_model("--mean", "0.1", "--std", "0.9"), str(weights))
    assert shifted.exit_code == 0, shifted.output
    plain, moved = stored_rows(tmp_path)
    assert plain.cell_key != moved.cell_key and plain.checkpoint_sha256 != moved.checkpoint_sha256
    assert not torch.equal(stored_predictions(tmp_path, plain.cell_key), stored_predictions(tmp_path, moved.cell_key))
    plan = plan_evaluation(EvaluationSpec([str(weights)], ["clean"], dataset="mnist5k", n_examples=N, model=TIMM_NAME,
                                          model_kwargs=KWARGS_TEXT, mean="0.1", std=[0.9]))
    (info,) = plan.checkpoints
    assert info.sha256 == moved.checkpoint_sha256 and plan.cells[0].key == moved.cell_key
    assert (info.meta["preprocessing"]["mean"], info.meta["preprocessing"]["std"]) == ([0.1], [0.9])


def write_spec(folder: Path, weights: Path, settings: str) -> Path:
    spec = folder / "own.toml"
    spec.write_text(f'dataset = "mnist5k"\nn_examples = {N}\n{settings}\ncheckpoints = ["{weights}"]\n'
                    '[[threats]]\nname = "clean"\n', encoding="utf-8")
    return spec


def test_a_toml_spec_takes_the_same_settings_and_gives_the_same_cells(weights, tmp_path):
    cli_run = evaluate(tmp_path, *own_model("--variant", "bilateral"), str(weights))
    assert cli_run.exit_code == 0, cli_run.output
    table = ", ".join(f"{key} = {value}" for key, value in KWARGS.items())
    spec = write_spec(tmp_path, weights, f'model = "{TIMM_NAME}"\nmodel_kwargs = {{{table}}}\nvariant = "bilateral"')
    batch = CliRunner().invoke(cli, ["--out", str(tmp_path), "batch", "--baseline", "bilateral", str(spec)])
    assert batch.exit_code == 0, batch.output
    (from_cli,), (from_spec,) = stored_rows(tmp_path), stored_rows(tmp_path, "own")
    assert from_spec.variant == "bilateral" and from_spec.cell_key == from_cli.cell_key
    assert from_spec.value == from_cli.value


@pytest.mark.parametrize("settings, message", [
    (f'model = "{TIMM_NAME}"\nmodel_kwargs = "patch_size"', "error: model_kwargs: item 'patch_size' is not key=value"),
    (f'model = "{TIMM_NAME}"\nmodel_kwargs = 7', "error: model_kwargs: must be key=value pairs"),
    ('model = "vit_nowhere_patch3"', "error: model: unknown model 'vit_nowhere_patch3'"),
    (f'model = "{TIMM_NAME}"\nmodel_kwargs = "{KWARGS_TEXT}"\ncrop_pct = 0', "error: crop_pct: must be in (0, 1]"),
])
def test_a_bad_toml_setting_is_named_by_its_key(weights, tmp_path, settings, message):
    spec = write_spec(tmp_path, weights, settings)
    result = CliRunner().invoke(cli, ["--out", str(tmp_path / "out"), "batch", str(spec)])
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "out").exists()


def test_the_python_api_takes_model_name_kwargs_and_variant(weights, tmp_path):
    cli_run = evaluate(tmp_path, *own_model("--variant", "bilateral"), str(weights))
    assert cli_run.exit_code == 0, cli_run.output
    frame = rb.evaluate(weights, "mnist5k", ["clean"], n_examples=N, model_name=TIMM_NAME, model_kwargs=KWARGS,
                        variant="bilateral")
    (from_cli,) = stored_rows(tmp_path)
    assert list(frame.variant) == ["bilateral"] and list(frame.cell_key) == [from_cli.cell_key]
    assert list(frame.value) == [from_cli.value]
    assert any(note.startswith(f"{weights}: dropped pos_embed") for note in frame.attrs["notes"])


@pytest.mark.parametrize("kwargs, field, problem", [
    ({"model_kwargs": "patch_size"}, "model_kwargs", "item 'patch_size' is not key=value"),
    ({"model_kwargs": ["patch_size=7"]}, "model_kwargs", "must be key=value pairs"),
    ({"model_name": "vit_nowhere_patch3"}, "model_name", "unknown model 'vit_nowhere_patch3'"),
    ({"variant": "bilaterall"}, "variant", "unknown variant 'bilaterall'"),
    ({"interpolation": "cubic"}, "interpolation", "unknown interpolation 'cubic'"),
])
def test_a_bad_python_argument_is_named_as_python_spells_it(weights, tmp_path, kwargs, field, problem):
    arguments = {"model_name": TIMM_NAME, "model_kwargs": KWARGS, **kwargs}
    with pytest.raises(FieldError) as caught:
        rb.evaluate(weights, "mnist5k", ["clean"], out=tmp_path, **arguments)
    assert caught.value.field == field and caught.value.problem.startswith(problem), caught.value
    assert str(caught.value).count("\n") == 0 and not (tmp_path / "main").exists()


def test_a_module_refuses_what_only_a_checkpoint_file_takes(timm_vit):
    with pytest.raises(FieldError, match=r"^variant: applies to a checkpoint file only"):
        rb.evaluate(timm_vit, "mnist5k", variant="bilateral")


def test_the_model_a_file_loads_into_is_part_of_its_identity(weights):
    named = LoadSettings(model=TIMM_NAME, model_kwargs=KWARGS)
    loaded = named.load(str(weights))
    assert loaded.sha256 == named.load(str(weights)).sha256  # the same settings, the same cells
    deit = LoadSettings(model="deit_tiny_patch16_224", model_kwargs=KWARGS).load(str(weights))
    assert torch.equal(deit.model.patch_embed.proj.weight, loaded.model.patch_embed.proj.weight)
    assert len({loaded.sha256, deit.sha256, file_sha256(weights)}) == 3
