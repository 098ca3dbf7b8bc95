"""Embedding-space FGSM and PGD (L-inf, L2) on smoke-trained language models, through the real store and CLI.

``language_checkpoints`` (smoke-trained softmax and bilateral, context 32) comes from ``conftest``.
"""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from cli.main import cli
from robustbench_bilateral.attacks.language import EmbeddingAttack
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.engine import Clean
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.text.windows import sliding_window_nll
from robustbench_bilateral.threats import build_threat

WORDS = 160
EPS = 0.3


def attack(name: str, eps: float, **params) -> EmbeddingAttack:
    threat = build_threat(name, eps=eps, **params)
    assert isinstance(threat, EmbeddingAttack)
    return threat


@pytest.fixture(scope="module")
def softmax_lm(language_checkpoints):
    path = str(language_checkpoints["softmax"])
    return path, load_checkpoint(path)


def run(path: str, threats, out, seed: int = 0, batch_size: int = 16, **reading):
    return run_cells(plan_cells([describe_checkpoint(path)], threats, n_examples=WORDS, seed=seed, **reading),
                     out=out, batch_size=batch_size)


def test_eps_zero_gives_the_clean_perplexity_exactly(softmax_lm, tmp_path):
    path, _ = softmax_lm
    rows = run(path, [Clean(), *(attack(name, 0.0) for name in ("fgsm-embedding", "pgd-embedding", "pgdl2-embedding"))],
               tmp_path)
    clean = rows[0]
    for row in rows[1:]:
        assert (row.value, row.ci_low, row.ci_high, row.n, row.windows) == (
            clean.value, clean.ci_low, clean.ci_high, clean.n, clean.windows)
        assert row.params["eps_abs"] == 0.0


@pytest.mark.parametrize("variant", ["softmax", "bilateral"])
def test_pgd_beats_fgsm_beats_clean_at_the_same_eps(language_checkpoints, variant, tmp_path):
    path = str(language_checkpoints[variant])
    clean, fgsm, pgd = run(path, [Clean(), attack("fgsm-embedding", EPS), attack("pgd-embedding", EPS, steps=10)], tmp_path)
    assert clean.value < fgsm.value <= pgd.value
    (l2,) = run(path, [attack("pgdl2-embedding", EPS)], tmp_path)
    assert l2.value > clean.value
    model = load_checkpoint(path).model
    width = model.tok_embed.embedding_dim
    assert fgsm.threat_family == "adversarial" and fgsm.n == clean.n == WORDS - 1
    assert fgsm.params == {"eps": EPS, "eps_rel": EPS, "eps_abs": pytest.approx(EPS * model.mean_embedding_norm() / math.sqrt(width)),
                           "norm": "Linf", "context": 32, "stride": 1}
    assert pgd.params["steps"] == 10 and pgd.params["random_start"] is True
    scale = model.mean_embedding_norm() / math.sqrt(width)
    assert pgd.params["step_size"] is None and pgd.params["step_size_abs"] == pytest.approx(2.5 * EPS / 10 * scale)
    assert l2.params["eps_abs"] == pytest.approx(EPS * model.mean_embedding_norm())
    with ResultStore.for_run(tmp_path, "main") as store:
        outcome = store.outcomes(pgd.cell_key)
        assert len(outcome["nll"]) == pgd.windows and int(outcome["counts"].sum()) == pgd.n


@pytest.mark.parametrize("name", ["fgsm-embedding", "pgd-embedding", "pgdl2-embedding"])
def test_the_perturbation_stays_within_eps_in_its_norm(softmax_lm, name):
    _, checkpoint = softmax_lm
    model = checkpoint.model.eval()
    threat = attack(name, EPS)
    eps = threat.absolute(model)["eps_abs"]
    ids = load_split("shakespeare", "test", WORDS, checkpoint.meta).ids(Clean(), 0)
    deltas = []

    def recording(emb, loss, windows):
        attacked = threat.perturbation(model, seed=1)(emb, loss, windows)
        deltas.append(attacked - emb)
        return attacked

    clean, _ = sliding_window_nll(model, ids, 32, stride=8, batch_size=4)
    attacked, _ = sliding_window_nll(model, ids, 32, stride=8, batch_size=4, perturb=recording)
    delta = torch.cat([d.flatten(0, 1) for d in deltas])
    size = delta.abs().amax(dim=-1) if threat.norm == "Linf" else delta.norm(dim=-1)
    assert float(size.max()) <= eps * (1 + 1e-5) and float(size.max()) > 0.5 * eps
    assert bool((attacked >= clean - 1e-6).all()) and float(attacked.sum()) > float(clean.sum())


def test_the_same_seed_gives_the_same_rows_whatever_the_batch_size(softmax_lm, tmp_path):
    path, _ = softmax_lm
    threats = [attack("pgd-embedding", EPS, steps=3), attack("pgdl2-embedding", EPS, steps=3)]
    first = run(path, threats, tmp_path / "a", seed=3, batch_size=16)
    again = run(path, threats, tmp_path / "b", seed=3, batch_size=16)
    other_batch = run(path, threats, tmp_path / "c", seed=3, batch_size=5)
    other_seed = run(path, threats, tmp_path / "d", seed=4, batch_size=16)
    assert [(r.value, r.ci_low, r.ci_high, r.params) for r in again] == [(r.value, r.ci_low, r.ci_high, r.params) for r in first]
    assert [r.value for r in other_batch] == pytest.approx([r.value for r in first], rel=1e-5)
    assert [r.value for r in other_seed] != [r.value for r in first]


def test_the_attack_command_reads_eps_as_relative_on_language_checkpoints(language_checkpoints, tmp_path):
    paths = [str(path) for path in language_checkpoints.values()]
    args = ["--out", str(tmp_path), "attack", *paths, "--fgsm", "--pgd", "--steps", "3", "--eps", "0,0.2",
            "--n-examples", "80", "--stride", "8"]
    result = CliRunner().invoke(cli, args, terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fgsm-embedding: perplexity" in result.output and "pgd-embedding: perplexity" in result.output
    rows = ResultStore.for_run(tmp_path, "main").rows()
    assert {row.threat for row in rows} == {"clean", "fgsm-embedding", "pgd-embedding"} and len(rows) == 10
    assert all(row.params["stride"] == 8 and row.metric == "perplexity" for row in rows)
    assert {row.params.get("eps_rel") for row in rows} == {None, 0.0, 0.2}
    assert all(row.params["steps"] == 3 for row in rows if row.threat == "pgd-embedding")
    wrong = CliRunner().invoke(cli, ["--out", str(tmp_path), "attack", paths[0], "--spsa"])
    assert wrong.exit_code == 2
    assert wrong.output.strip() == "error: --spsa does not apply to language models: use --fgsm, --pgd, --pgdl2 (embedding attacks)"
