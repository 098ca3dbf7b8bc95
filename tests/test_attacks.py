"""Attacks and their sanity checks on real mnist5k digits, smoke checkpoints, the real store and CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from cli.attack_cmd import parse_eps
from cli.main import cli
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.data import image_tensors, load_source
from robustbench_bilateral.engine import Clean, Engine, run_vision_cell
from robustbench_bilateral.engine.model_checks import model_flags
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.sanity import (
    GRADIENT_MASKING,
    NON_MONOTONE_EPS,
    NONDETERMINISTIC_FORWARD,
    PGD_ABOVE_FGSM,
    cross_cell_flags,
)
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.threats import BUILTIN_THREATS, THREATS, adversarial_threats, build_threat

N_BALL = 12
SMALL_SETTINGS = {
    "fgsm": {},
    "pgd": {"steps": 5},
    "pgdl2": {"steps": 5},
    "spsa": {"nb_iter": 3, "nb_sample": 16, "max_batch_size": 16},
    "autoattack": {"n_iter": 2, "n_target_classes": 2, "n_queries": 20},
    "autoattack-torchattacks": {},
    "square": {"n_queries": 30},
}


@pytest.fixture(scope="module")
def softmax_checkpoint(smoke_checkpoints):
    return load_checkpoint(str(smoke_checkpoints["softmax"]))


@pytest.fixture(scope="module")
def digits(softmax_checkpoint):
    """The first 64 mnist5k test digits as the smoke model reads them."""
    return load_split("mnist5k", "test", 64, softmax_checkpoint.meta)


def comparable(rows):
    return [dataclasses.replace(row, wall_s=0.0, run="") for row in rows]


def accuracy_of(rows):
    """``{(threat, eps): n_correct}`` of the accuracy rows."""
    return {(row.threat, row.params.get("eps")): row.n_correct for row in rows if row.metric == "accuracy"}


@pytest.mark.parametrize("name", list(SMALL_SETTINGS))
def test_every_attack_stays_in_its_ball_and_in_valid_pixels(name, softmax_checkpoint, digits):
    images, labels = digits[0][:N_BALL], digits[1][:N_BALL]
    eps = 1.0 if name == "pgdl2" else 0.1
    records_batch = any(param.name == "batch_size" for param in THREATS.get(name).parameters)
    threat = build_threat(name, eps=eps, **({"batch_size": N_BALL} if records_batch else {}), **SMALL_SETTINGS[name])
    adversarial = threat.apply(images, labels, softmax_checkpoint.model, ExampleRNG(0, range(N_BALL)))
    delta = (adversarial - images).flatten(1)
    size = delta.norm(dim=1) if name == "pgdl2" else delta.abs().amax(dim=1)
    assert size.max() <= eps + 1e-5
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    assert size.max() > eps / 10, "the attack did not move the images"


def test_normalized_space_bounds_the_normalised_perturbation_and_keeps_eval_mode(softmax_checkpoint, digits):
    model = softmax_checkpoint.model.eval()
    images, labels = digits[0][:N_BALL], digits[1][:N_BALL]
    threat = build_threat("pgd", eps=0.3, space="normalized", steps=5, batch_size=N_BALL)
    adversarial = threat.apply(images, labels, model, ExampleRNG(0, range(N_BALL)))
    normalised = ((adversarial - images) / model.std).abs().amax()
    assert 0.29 < normalised <= 0.3 + 1e-4
    assert not model.training


def test_eps_zero_gives_the_clean_accuracy(smoke_checkpoints, tmp_path):
    info = describe_checkpoint(str(smoke_checkpoints["bilateral"]))
    threats = [Clean(), build_threat("fgsm", eps=0.0), build_threat("pgd", eps=0.0, batch_size=32)]
    rows = run_cells(plan_cells([info], threats, n_examples=48), out=tmp_path, batch_size=32)
    counts = accuracy_of(rows)
    assert counts[("fgsm", 0.0)] == counts[("pgd", 0.0)] == counts[("clean", None)] > 0
    assert {row.value for row in rows if row.metric == "success_rate"} == {0.0}


def test_pgd_is_at_most_fgsm_is_at_most_clean_and_seeds_repeat(smoke_checkpoints, tmp_path):
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    eps = 8 / 255
    threats = [Clean(), build_threat("fgsm", eps=eps), build_threat("pgd", eps=eps, steps=10, batch_size=32)]
    cells = plan_cells([info], threats, n_examples=48, seed=3)
    first = run_cells(cells, out=tmp_path, run="first", batch_size=32)
    counts = accuracy_of(first)
    assert counts[("pgd", eps)] <= counts[("fgsm", eps)] < counts[("clean", None)]
    assert not any(row.flags for row in first)
    assert comparable(run_cells(cells, out=tmp_path, run="again", batch_size=32)) == comparable(first)


def two_digit_classifier(images: torch.Tensor, labels: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """A linear 0-vs-1 classifier ``logit_1 - logit_0 = v . x + c`` from the class means, and ``v`` (float64).

    ``v = a (mean_1 - mean_0)`` with ``a`` such that the clean margins have standard deviation 3
    (far from softmax saturation), ``c`` puts the boundary half way between the means.
    """
    flat = images.flatten(1).double()
    direction = flat[labels == 1].mean(0) - flat[labels == 0].mean(0)
    offset = -direction @ (flat[labels == 1].mean(0) + flat[labels == 0].mean(0)) / 2
    scale = 3.0 / (flat @ direction + offset).std()
    v, c = (direction * scale).float(), float(offset * scale)
    linear = nn.Linear(flat.shape[1], 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([-v / 2, v / 2]))
        linear.bias.copy_(torch.tensor([-c / 2, c / 2]))
    return nn.Sequential(nn.Flatten(), linear), v.double()


def test_fgsm_on_a_linear_classifier_flips_exactly_the_examples_the_formula_predicts():
    """For labels y in {0, 1} and s = 2y - 1 the true-class margin is m = s (v . x + c). FGSM moves
    pixel i by eps against s v_i, clamped to [0, 1], so the margin after the attack is
    m' = m - sum_i |v_i| min(eps, room_i), room_i = x_i where s v_i > 0 (moving down) and 1 - x_i
    elsewhere; an example stays correct exactly when m' > 0."""
    images, labels = image_tensors(load_source("mnist5k").split("test"), 400)
    keep = labels <= 1
    images, labels = images[keep], labels[keep]
    model, v = two_digit_classifier(images, labels)
    bias = model[1].bias.detach().double()
    eps = 0.05

    flat, sign = images.flatten(1).double(), (2 * labels - 1).double()
    margin = sign * (flat @ v + (bias[1] - bias[0]))
    moving_down = sign[:, None] * v[None, :] > 0
    room = torch.where(moving_down, flat, 1 - flat)
    predicted = margin - (v.abs()[None, :] * room.clamp(max=eps)).sum(1)
    assert margin.abs().max() < 12 and predicted.abs().min() > 1e-3

    outcome = run_vision_cell(model, images, labels, build_threat("fgsm", eps=eps), 0, 32, "cpu")
    assert torch.equal(outcome.correct, predicted > 0)
    flipped = (margin > 0) & (predicted <= 0)
    assert 0 < int(flipped.sum()) < int((margin > 0).sum())


class RoundedInput(nn.Module):
    """A classifier behind a rounding of its input to 8-bit levels: zero input gradients everywhere."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(images * 255) / 255)


class NoisyLogits(nn.Module):
    """A randomised classifier: Gaussian noise on the logits of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(images)
        return logits + torch.randn_like(logits)


@pytest.mark.parametrize(("front", "flag"), [(RoundedInput, GRADIENT_MASKING), (NoisyLogits, NONDETERMINISTIC_FORWARD)])
def test_a_broken_model_gets_its_flag_on_every_stored_row(front, flag, smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    info = describe_checkpoint(path)
    cells = plan_cells([info], [Clean(), build_threat("fgsm", eps=4 / 255)], n_examples=32)

    def load_wrapped(checkpoint: str):
        loaded = load_checkpoint(checkpoint)
        return dataclasses.replace(loaded, model=front(loaded.model))

    with ResultStore.for_run(tmp_path, "broken") as store:
        rows = Engine(store, "cpu", 32, "broken").run(cells, load_wrapped, load_split)
    assert {row.flags for row in rows if row.threat == "fgsm"} == {(flag,)}
    assert {row.flags for row in rows if row.threat == "clean"} == {()}
    plain = run_cells(cells, out=tmp_path, run="plain", batch_size=32)
    assert {row.flags for row in plain} == {()}


def test_the_model_checks_pass_a_trained_smoke_model(softmax_checkpoint, digits):
    assert model_flags(softmax_checkpoint.model, *digits, "cpu") == ()


def test_a_pgd_weaker_than_fgsm_is_flagged_on_the_stored_rows(smoke_checkpoints, tmp_path):
    """PGD with step size 0 is only its random start, so FGSM beats it."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    eps = 16 / 255
    threats = [Clean(), build_threat("fgsm", eps=eps), build_threat("pgd", eps=eps, steps=1, step_size=0.0, batch_size=32)]
    cells = plan_cells([info], threats, n_examples=64)
    rows = run_cells(cells, out=tmp_path, batch_size=32)
    counts = accuracy_of(rows)
    assert counts[("pgd", eps)] > counts[("fgsm", eps)]
    assert {row.flags for row in rows if row.threat == "pgd"} == {(PGD_ABOVE_FGSM,)}
    assert {row.flags for row in rows if row.threat != "pgd"} == {()}
    assert run_cells(cells, out=tmp_path, batch_size=32) == rows, "checking the same rows again changes nothing"
    assert "pgd>fgsm" in (tmp_path / "main" / "results.csv").read_text()


def test_accuracy_rising_with_eps_is_flagged(smoke_checkpoints, tmp_path):
    """Real rows of an FGSM series, with the count at the larger eps raised above the smaller one's."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    threats = [Clean(), build_threat("fgsm", eps=2 / 255), build_threat("fgsm", eps=8 / 255)]
    rows = run_cells(plan_cells([info], threats, n_examples=48), out=tmp_path, batch_size=48)
    assert cross_cell_flags(rows) == {}
    small = next(row for row in rows if row.metric == "accuracy" and row.params.get("eps") == 2 / 255)
    raised = [dataclasses.replace(row, n_correct=small.n_correct + 1)
              if row.metric == "accuracy" and row.params.get("eps") == 8 / 255 else row for row in rows]
    large_key = next(row.cell_key for row in rows if row.params.get("eps") == 8 / 255)
    assert cross_cell_flags(raised) == {large_key: (NON_MONOTONE_EPS,)}


def test_eps_strings_parse_and_bad_ones_are_named():
    assert parse_eps("1/255, 0.5,1/255,0") == [("1/255", 1 / 255), ("0.5", 0.5), ("0", 0.0)]
    for bad, problem in (("1/0", "division by zero"), ("abc", "not a number"), ("-1/255", ">= 0"), ("nan", "finite")):
        with pytest.raises(InputError, match=f"bad eps '{bad}': .*{problem}"):
            parse_eps(f"1/255,{bad}")


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "120"}).invoke(cli, list(args))


def test_attack_prints_one_table_of_variants_by_eps_with_intervals(smoke_checkpoints, tmp_path):
    paths = [str(smoke_checkpoints["softmax"]), str(smoke_checkpoints["bilateral"])]
    result = invoke("--out", str(tmp_path), "attack", "--pgd", "--eps", "1/255,4/255", "--n-examples", "32",
                    "--steps", "3", "--batch-size", "32", *paths)
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path, "main") as store:
        rows = [row for row in store.rows() if row.metric == "accuracy"]
    assert result.output.count("robust accuracy") == 1
    header = next(line for line in result.output.splitlines() if "variant" in line)
    assert header.index("clean") < header.index("eps=1/255") < header.index("eps=4/255")
    lines = result.output.splitlines()
    for variant in ("softmax", "bilateral"):
        first = next(i for i, line in enumerate(lines) if f"│ {variant} " in line)
        by_column = [row for row in rows if row.variant == variant]
        by_column.sort(key=lambda row: row.params.get("eps", 0.0))
        assert [row.threat for row in by_column] == ["clean", "pgd", "pgd"]
        for row in by_column:
            assert f"{row.value:.4f}" in lines[first]
            assert f"[{row.ci_low:.4f}, {row.ci_high:.4f}]" in lines[first + 1]


@pytest.mark.parametrize("attack", [cls for cls in adversarial_threats() if cls in BUILTIN_THREATS], ids=lambda cls: cls.name)
def test_eps_above_one_in_pixel_space_is_one_line_for_every_vision_attack(attack, smoke_checkpoints, tmp_path):
    """Pixels lie in [0, 1]: a radius above 1 is refused before anything runs, from the flag and from a spec."""
    path = str(smoke_checkpoints["softmax"])
    option = "--eps-l2" if attack.norm == "L2" else "--eps"
    result = invoke("--out", str(tmp_path), "attack", f"--{attack.name}", option, "1.5", path)
    assert result.exit_code == 2 and result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"error: {option}: must be at most 1 in pixel space (pixels lie in [0, 1]), got 1.5")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'checkpoints = ["{path}"]\n[[threats]]\nname = "{attack.name}"\neps = "300/255"\n', encoding="utf-8")
    result = invoke("--out", str(tmp_path), "batch", str(spec))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: threats[0].eps: must be at most 1 in pixel space")
    assert not (tmp_path / "main").exists() and not (tmp_path / "spec").exists()
    assert build_threat(attack.name, eps=1.5, space="normalized").params["eps"] == 1.5, "normalised units have no bound"


def test_attack_refuses_bad_input_in_one_line(smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    for args, message in (
        (["--pgd", "--eps", "1/0"], "bad eps '1/0': division by zero"),
        (["--eps", "1/255"], "no attack chosen"),
        (["--pgdl2"], "--pgdl2 needs its L2 radii"),
        (["--pgd", "--steps", "0"], "--steps: 0 is out of range: give a whole number >= 1"),
        (["--spsa", "--steps", "0"], "--steps: 0 is out of range: give a whole number >= 1"),
        (["--pgdl2", "--eps-l2", "0.5", "--batch-size", "0"], "--batch-size: 0 is out of range"),
    ):
        result = invoke("--out", str(tmp_path), "attack", *args, path)
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "main").exists()
