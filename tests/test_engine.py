"""The evaluation engine on a real small classifier trained on scikit-learn's digits."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from robustbench_bilateral.engine import Cell, Engine, Param, Threat, run_vision_cell
from robustbench_bilateral.enums import Task, ThreatFamily
from robustbench_bilateral.errors import BilatError, FieldError, InputError
from robustbench_bilateral.models.lm import create_lm
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.threats import THREATS, build_threat, register_threat

N_EVAL = 150


class GaussianNoise(Threat):
    """Additive Gaussian pixel noise drawn from each example's own stream."""

    name = "test-gaussian"
    family = ThreatFamily.NOISE
    parameters = (Param("sigma", float, 0.3, "standard deviation in pixel units", minimum=0.0),)

    def apply(self, images, labels, model, rng: ExampleRNG):
        return (images + self.params["sigma"] * rng.randn(*images.shape[1:])).clamp(0, 1)


class SignGradient(Threat):
    """One L-inf gradient-sign step (needs gradients)."""

    name = "test-fgsm"
    family = ThreatFamily.ADVERSARIAL
    parameters = (Param("eps", float, 0.3, "radius in pixel units", minimum=0.0),)

    def apply(self, images, labels, model, rng):
        images = images.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(images), labels)
        (grad,) = torch.autograd.grad(loss, images)
        return (images + self.params["eps"] * grad.sign()).clamp(0, 1)


def make_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))


@dataclass
class Loaded:
    model: nn.Module
    meta: dict
    path: Path
    sha256: str


@pytest.fixture(scope="module")
def digits():
    """Digits as (N, 1, 8, 8) floats in [0, 1] and int64 labels: train on the first 1,200, evaluate on the rest."""
    data = load_digits()
    images = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(data.target, dtype=torch.int64)
    return images[:1200], labels[:1200], images[1200:], labels[1200:]


@pytest.fixture(scope="module")
def checkpoint_file(digits, tmp_path_factory) -> Path:
    train_images, train_labels, _, _ = digits
    torch.manual_seed(0)
    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(train_images), train_labels).backward()
        optimiser.step()
    path = tmp_path_factory.mktemp("checkpoints") / "mlp.pt"
    torch.save(model.state_dict(), path)
    return path


class Loaders:
    """Real loaders of the test checkpoint and split that count their calls and the model's forwards."""

    def __init__(self, digits) -> None:
        self.eval_images, self.eval_labels = digits[2], digits[3]
        self.checkpoint_loads = 0
        self.split_loads = 0
        self.forwards = 0

    def load_checkpoint(self, path: str) -> Loaded:
        self.checkpoint_loads += 1
        model = make_model()
        model.load_state_dict(torch.load(path, weights_only=True))
        model.register_forward_hook(lambda *_: setattr(self, "forwards", self.forwards + 1))
        meta = {"task": Task.IMAGE_CLASSIFICATION.value, "variant": "mlp", "dataset": "digits"}
        return Loaded(model, meta, Path(path), hashlib.sha256(Path(path).read_bytes()).hexdigest())

    def load_split(self, dataset: str, split: str, n: int, meta: dict):
        self.split_loads += 1
        return self.eval_images[:n], self.eval_labels[:n]


def make_cells(path: Path, *threats: Threat, seed: int = 0, n: int = N_EVAL) -> list[Cell]:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return [Cell(str(path), sha, "digits", "test", threat, seed, n) for threat in threats]


def run_engine(tmp_path, name, digits, cells, batch_size=64, **options):
    loaders = Loaders(digits)
    store = ResultStore.for_run(tmp_path, name)
    rows = Engine(store, "cpu", batch_size, name).run(cells, loaders.load_checkpoint, loaders.load_split, **options)
    return store, rows, loaders


def test_the_model_learned_the_digits(digits, checkpoint_file):
    loaders = Loaders(digits)
    checkpoint = loaders.load_checkpoint(str(checkpoint_file))
    outcome = run_vision_cell(checkpoint.model, digits[2], digits[3], build_threat("clean"), 0, 256, "cpu")
    assert outcome.n == len(digits[3]) and outcome.n_correct / outcome.n > 0.85


@pytest.mark.parametrize("threat", [build_threat("clean"), GaussianNoise(sigma=0.4), SignGradient(eps=0.1)], ids=lambda t: t.name)
def test_outcomes_do_not_depend_on_batch_size(digits, checkpoint_file, threat):
    model = Loaders(digits).load_checkpoint(str(checkpoint_file)).model
    images, labels = digits[2][:N_EVAL], digits[3][:N_EVAL]
    outcomes = [run_vision_cell(model, images, labels, threat, 3, size, "cpu") for size in (1, 7, 64)]
    for other in outcomes[1:]:
        assert torch.equal(other.predictions, outcomes[0].predictions)
        assert torch.equal(other.correct, outcomes[0].correct)
    assert outcomes[0].predictions.dtype == torch.int64 and outcomes[0].correct.dtype == torch.bool


def test_engine_rows_do_not_depend_on_batch_size(tmp_path, digits, checkpoint_file):
    results = []
    for size in (1, 7, 64):
        cells = make_cells(checkpoint_file, build_threat("clean"), GaussianNoise(sigma=0.4))
        store, rows, _ = run_engine(tmp_path, f"batch{size}", digits, cells, batch_size=size)
        results.append(([(r.metric, r.n, r.n_correct, r.value, r.ci_low, r.ci_high, r.cell_key) for r in rows],
                        [store.outcomes(cell.key) for cell in cells]))
        store.close()
    for values, outcomes in results[1:]:
        assert values == results[0][0]
        for got, want in zip(outcomes, results[0][1]):
            assert got.keys() == want.keys()
            assert all((got[kind] == want[kind]).all() for kind in got)


def test_noise_is_random_per_seed_and_threats_hurt(tmp_path, digits, checkpoint_file):
    cells = make_cells(checkpoint_file, build_threat("clean"), GaussianNoise(sigma=0.4), SignGradient(eps=0.15), seed=0)
    cells += make_cells(checkpoint_file, GaussianNoise(sigma=0.4), seed=1)
    store, rows, _ = run_engine(tmp_path, "seeds", digits, cells)
    by_cell = {cell.key: [row for row in rows if row.cell_key == cell.key] for cell in cells}
    clean, noise0, fgsm, noise1 = (by_cell[cell.key] for cell in cells)
    assert [row.metric for row in clean] == ["accuracy"]
    assert [row.metric for row in fgsm] == ["accuracy", "success_rate"]
    assert fgsm[0].value < clean[0].value - 0.2
    assert not (store.outcomes(cells[1].key)["correct"] == store.outcomes(cells[3].key)["correct"]).all()
    for accuracy, success in (noise0, noise1, fgsm):
        assert success.n == clean[0].n_correct
        assert success.value == pytest.approx((success.n - success.n_correct) / success.n)
        assert accuracy.ci_low <= accuracy.value <= accuracy.ci_high
        assert accuracy.n == N_EVAL and accuracy.value == accuracy.n_correct / N_EVAL
    assert {row.threat_family for row in rows} == {ThreatFamily.CLEAN, ThreatFamily.NOISE, ThreatFamily.ADVERSARIAL}
    assert all(row.seed == cell.seed for cell in cells for row in by_cell[cell.key])
    store.close()


def test_cells_another_process_stored_meanwhile_are_skipped(tmp_path, digits, checkpoint_file, monkeypatch):
    cells = make_cells(checkpoint_file, build_threat("clean"), GaussianNoise(sigma=0.4), SignGradient(eps=0.15))
    store, first, _ = run_engine(tmp_path, "shared", digits, cells)
    late = ResultStore.for_run(tmp_path, "shared")
    monkeypatch.setattr(late, "has_cell", lambda key: False)  # it checked before the first process wrote
    loaders = Loaders(digits)
    rows = Engine(late, "cpu", 64, "shared").run(cells, loaders.load_checkpoint, loaders.load_split)
    assert loaders.forwards > 0 and rows == first == store.rows()
    late.close()
    store.close()
    with sqlite3.connect(tmp_path / "shared" / "results.sqlite") as connection:
        assert connection.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM cells").fetchone() == (4, 4)
        assert connection.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key || metric) FROM rows").fetchone() == (5, 5)
    connection.close()


def test_resume_computes_nothing_twice(tmp_path, digits, checkpoint_file):
    cells = make_cells(checkpoint_file, build_threat("clean"), GaussianNoise(sigma=0.4), GaussianNoise(sigma=0.2))
    store, first, loaders = run_engine(tmp_path, "resume", digits, cells, batch_size=50)
    assert (loaders.checkpoint_loads, loaders.split_loads) == (1, 1)
    assert loaders.forwards == 3 * 3
    store.close()

    seen = []
    store, second, loaders = run_engine(tmp_path, "resume", digits, cells + cells[:1], batch_size=50,
                                        progress=lambda cell, computed: seen.append(computed))
    assert second == first
    assert (loaders.checkpoint_loads, loaders.split_loads, loaders.forwards) == (0, 0, 0)
    assert seen == [False, False, False]
    assert len(store.rows()) == len(first) == 5

    more = make_cells(checkpoint_file, GaussianNoise(sigma=0.3))
    loaders = Loaders(digits)
    Engine(store, "cpu", 50, "resume").run(cells + more, loaders.load_checkpoint, loaders.load_split)
    assert loaders.forwards == 3
    assert len(store.rows()) == 7
    store.close()

    with sqlite3.connect(tmp_path / "resume" / "results.sqlite") as connection:
        assert connection.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key || metric) FROM rows").fetchone() == (7, 7)
    connection.close()

    store, fresh, loaders = run_engine(tmp_path, "resume", digits, cells[:1], batch_size=50, fresh=True)
    assert loaders.forwards == 3 and len(store.rows()) == 1
    assert [(r.value, r.n_correct) for r in fresh] == [(first[0].value, first[0].n_correct)]
    store.close()


def test_cell_key_names_the_measurement_not_the_machine(checkpoint_file):
    (cell,) = make_cells(checkpoint_file, GaussianNoise(sigma=0.4))
    same = Cell("elsewhere/mlp.pt", cell.checkpoint_sha256, "digits", "test", GaussianNoise(sigma=0.4), 0, N_EVAL)
    assert cell.key == same.key and len(cell.key) == 64
    assert len({cell.key, *(c.key for c in make_cells(checkpoint_file, GaussianNoise(sigma=0.5)) + make_cells(
        checkpoint_file, GaussianNoise(sigma=0.4), seed=1) + make_cells(checkpoint_file, GaussianNoise(sigma=0.4), n=10))}) == 4


def test_changed_checkpoint_is_refused(tmp_path, digits, checkpoint_file):
    cells = [Cell(str(checkpoint_file), "0" * 64, "digits", "test", build_threat("clean"), 0, 20)]
    with pytest.raises(BilatError, match="changed"):
        run_engine(tmp_path, "changed", digits, cells)


def test_threat_registry_builds_registered_threats():
    assert "clean" in THREATS and build_threat("clean").params == {}
    register_threat(GaussianNoise)
    try:
        threat = build_threat("test-gaussian", sigma=0.25)
        assert isinstance(threat, GaussianNoise) and threat.params == {"sigma": 0.25}
        assert build_threat("test-gaussian").params == {"sigma": 0.3}
        with pytest.raises(InputError, match="does not take"):
            build_threat("test-gaussian", radius=1)
        with pytest.raises(ValueError, match="taken"):
            register_threat(type("Other", (GaussianNoise,), {}))
    finally:
        THREATS.unregister("test-gaussian")
    with pytest.raises(InputError, match="unknown threat"):
        build_threat("test-gaussian")
    with pytest.raises(FieldError, match="sigma: expected a number, got <object") as error:
        GaussianNoise(sigma=object())
    assert error.value.field == "sigma"


def test_language_cells_report_perplexity_with_a_bootstrap_interval(tmp_path):
    pytest.importorskip(
        "robustbench_bilateral.text.windows",
        reason="robustbench_bilateral.text.windows (sliding_window_nll) is not in the tree yet",
    )
    torch.manual_seed(0)
    model = create_lm("softmax", vocab_size=12, context_length=16, embed_dim=16, depth=1, num_heads=2)
    path = tmp_path / "lm.pt"
    torch.save(model.state_dict(), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    ids = torch.randint(0, 12, (300,), generator=torch.Generator().manual_seed(0))
    loads = []

    def load_checkpoint(text):
        loads.append(text)
        meta = {"task": Task.LANGUAGE_MODELING.value, "variant": "softmax", "dataset": "toy", "context_length": 16}
        return Loaded(model, meta, Path(text), sha)

    cells = [Cell(str(path), sha, "toy", "test", build_threat("clean"), 0, 300, context=16, stride=1)]
    results = []
    for size in (1, 8):
        store = ResultStore.for_run(tmp_path, f"lm{size}")
        results.append(Engine(store, "cpu", size, "lm").run(cells, load_checkpoint, lambda *args: ids))
        outcome = store.outcomes(cells[0].key)
        store.close()
    (row,) = results[0]
    assert row.metric == "perplexity" and row.n_correct is None and row.n == int(outcome["counts"].sum()) == 299
    assert row.windows == len(outcome["nll"]) == 300 - 16 and row.params == {"context": 16, "stride": 1}
    assert row.ci_low < row.value < row.ci_high
    assert row.value == pytest.approx(float(torch.exp(torch.tensor(outcome["nll"].sum() / outcome["counts"].sum()))))
    assert (results[1][0].value, results[1][0].ci_low) == pytest.approx((row.value, row.ci_low))
