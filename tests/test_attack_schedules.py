"""Attack schedules on real mnist5k digits and a smoke checkpoint: early-exit never reports more
robustness than the full loop, per example, and spends fewer passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.engine import run_vision_cell
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.threats import build_threat

N = 160
SETTINGS = [("pgd", 2 / 255), ("pgd", 8 / 255), ("pgd", 32 / 255), ("pgdl2", 0.5), ("fgsm", 8 / 255)]


@pytest.fixture(scope="module")
def model(smoke_checkpoints):
    return load_checkpoint(str(smoke_checkpoints["softmax"])).model.eval()


@pytest.fixture(scope="module")
def digits(smoke_checkpoints):
    return load_split("mnist5k", "test", N, load_checkpoint(str(smoke_checkpoints["softmax"])).meta)


def threat(name: str, eps: float, schedule: str):
    steps = {} if name == "fgsm" else {"steps": 10}
    return build_threat(name, eps=eps, schedule=schedule, **steps)


class CountingModel(nn.Module):
    """The wrapped model, counting the examples of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.examples = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.examples += len(images)
        return self.model(images)


@pytest.mark.parametrize(("name", "eps"), SETTINGS, ids=lambda value: str(value))
def test_early_exit_is_never_more_robust_than_full_on_any_example(name, eps, model, digits):
    images, labels = digits
    clean_correct = model(images).argmax(-1) == labels
    outcomes = {schedule: run_vision_cell(model, images, labels, threat(name, eps, schedule), 0, 64, "cpu")
                for schedule in ("early-exit", "full")}
    fast, full = outcomes["early-exit"].correct, outcomes["full"].correct
    assert not (fast & ~full).any(), "an example survived early-exit but not the full loop"
    assert not (fast & ~clean_correct).any(), "an example misclassified clean counted as robust"
    assert fast.sum() <= full.sum()


@pytest.mark.parametrize(("name", "eps"), [("pgd", 8 / 255), ("pgdl2", 0.5)])
def test_early_exit_pgd_follows_torchattacks_iterates_and_stops_on_broken_examples(name, eps, model, digits):
    images, labels = digits
    rng = ExampleRNG(0, range(N))
    fast = threat(name, eps, "early-exit").apply(images, labels, model, rng).detach()
    full = threat(name, eps, "full").apply(images, labels, model, rng).detach()
    with torch.no_grad():
        clean, broken_fast, broken_full = (model(batch).argmax(-1) != labels for batch in (images, fast, full))
    survivors = ~broken_fast
    assert survivors.sum() > 0 and broken_fast[~clean].sum() > 0
    torch.testing.assert_close(fast[survivors], full[survivors], atol=1e-6, rtol=0)
    assert torch.equal(fast[clean], images[clean]), "examples misclassified clean must not be attacked"
    moved = (fast - images).flatten(1)
    radius = moved.abs().amax(1) if name == "pgd" else moved.norm(dim=1)
    assert (radius <= eps + 1e-5).all() and fast.min() >= 0 and fast.max() <= 1
    assert broken_full.sum() <= broken_fast.sum()


def test_early_exit_spends_fewer_forward_passes(model, digits):
    images, labels = digits
    passes = {}
    for schedule in ("early-exit", "full"):
        counting = CountingModel(model)
        threat("pgd", 32 / 255, schedule).apply(images, labels, counting, ExampleRNG(0, range(N)))
        passes[schedule] = counting.examples
    assert passes["full"] == 10 * N
    assert passes["early-exit"] < 0.6 * passes["full"]


def test_rows_state_their_schedule_and_the_default_is_early_exit(smoke_checkpoints, tmp_path, run_bilat):
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    cells = plan_cells([info], [build_threat("pgd", eps=4 / 255, steps=3), build_threat("fgsm", eps=4 / 255),
                                build_threat("pgd", eps=4 / 255, steps=3, schedule="full")], n_examples=32)
    rows = run_cells(cells, out=tmp_path / "api", run="schedules", batch_size=32)
    schedules = sorted((row.threat, row.params["schedule"]) for row in rows if row.metric == "accuracy")
    assert schedules == [("fgsm", "early-exit"), ("pgd", "early-exit"), ("pgd", "full")]
    code, out, _ = run_bilat("--out", str(tmp_path / "cli"), "attack", str(smoke_checkpoints["softmax"]), "--pgd",
                             "--steps", "3", "--eps", "4/255", "--schedule", "full", "--n-examples", "32")
    assert code == 0 and "schedule full" in " ".join(out.split())
    code, _, err = run_bilat("--out", str(tmp_path / "cli"), "attack", str(smoke_checkpoints["softmax"]), "--pgd",
                             "--schedule", "fast")
    assert code == 2 and "'fast' is not one of 'early-exit', 'full'" in err and "Traceback" not in err
