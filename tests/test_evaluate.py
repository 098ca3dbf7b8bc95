"""`bilat-eval evaluate` end to end: real checkpoints, real data, the real store; resume after SIGKILL."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_rows import stored_rows

from cli.main import cli
from robustbench_bilateral.checkpoint import read_metadata
from robustbench_bilateral.engine import Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.sources import describe_checkpoint
from robustbench_bilateral.threats import build_threat

N_NOISY = 64


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def comparable(rows):
    """Rows without what legitimately differs between two runs: timing and the run's name."""
    return [dataclasses.replace(row, wall_s=0.0, run="") for row in rows]


def test_clean_accuracy_equals_the_accuracy_training_measured(smoke_checkpoints, tmp_path):
    paths = [str(path) for path in smoke_checkpoints.values()]
    result = invoke("--out", str(tmp_path), "evaluate", *paths)
    assert result.exit_code == 0, result.output
    rows = stored_rows(tmp_path, "main")
    assert [row.checkpoint for row in rows] == paths
    for row, path in zip(rows, paths):
        assert row.metric == "accuracy" and row.threat == "clean" and row.dataset == "mnist5k" and row.split == "test"
        assert row.value == pytest.approx(read_metadata(Path(path))["metrics"]["test_accuracy"], abs=1e-12)
        assert row.ci_low < row.value < row.ci_high and row.n_correct == round(row.value * row.n)
        assert row.variant in result.output
    assert (tmp_path / "main" / "results.csv").is_file()


def test_batch_size_does_not_change_a_random_threat(smoke_checkpoints, tmp_path):
    info = describe_checkpoint(str(smoke_checkpoints["bilateral"]))
    cells = plan_cells([info], [build_threat("noise", kind="gaussian", strength=0.3)], n_examples=N_NOISY, seed=5)
    by_batch = {
        size: comparable(run_cells(cells, out=tmp_path, run=f"b{size}", batch_size=size)) for size in (1, 7, 64)
    }
    assert by_batch[1] == by_batch[7] == by_batch[64]
    assert {row.metric for row in by_batch[1]} == {"accuracy", "success_rate"}


def test_exports_rebuilt_from_the_store_are_byte_identical(smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    assert invoke("--out", str(tmp_path), "evaluate", "--n-examples", "100", path).exit_code == 0
    exports = sorted((tmp_path / "main").glob("results*.*"))
    exports = [file for file in exports if file.suffix in {".csv", ".md", ".json"}]
    assert {file.name for file in exports} == {"results.csv", "results_wide.csv", "results.md", "results.json"}
    before = {file.name: file.read_bytes() for file in exports}
    for file in exports:
        file.unlink()
    assert invoke("--out", str(tmp_path), "evaluate", "--n-examples", "100", path).exit_code == 0
    assert {file.name: file.read_bytes() for file in exports} == before


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "evaluate", str(tmp_path / "missing.safetensors")])
    assert result.exit_code == 2
    assert not (tmp_path / "main").exists()


@pytest.mark.parametrize("args, message", [
    (["--split", "valid"], "error: --split: dataset 'mnist5k' has no split 'valid': choose one of"),
    (["--dataset", "shakespeare"], "error: --dataset: checkpoint "),
    (["--dataset", "nowhere"], "error: --dataset: unknown dataset 'nowhere'"),
])
def test_a_bad_option_is_named_by_its_flag(smoke_checkpoints, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "evaluate", *args, str(smoke_checkpoints["softmax"])])
    assert result.exit_code == 2 and result.output.startswith(message) and result.output.count("\n") == 1
    assert not (tmp_path / "main").exists()


class WordSwapProbe(Threat):
    """A word-swap threat that is never applied: planning must refuse it for an image model."""

    name = "wordswap-probe"
    family = ThreatFamily.WORDSWAP


def test_a_language_threat_is_refused_for_an_image_checkpoint(smoke_checkpoints):
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    with pytest.raises(InputError, match="does not apply to image classifiers"):
        plan_cells([info], [WordSwapProbe()])


def evaluate_process(out: Path, paths: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "cli", "--out", str(out), "--quiet", "evaluate", "--batch-size", "1", *paths]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())


def wait_for_file(path: Path, process: subprocess.Popen) -> float:
    """Seconds until ``path`` exists (the run has opened its store), or until the process ends."""
    started = time.perf_counter()
    while not path.exists() and process.poll() is None:
        time.sleep(0.02)
    return time.perf_counter() - started


@pytest.mark.slow
def test_sigkill_twice_then_resume_gives_the_uninterrupted_rows(smoke_checkpoints, tmp_path):
    """Kills land at a random moment while cells run (after the store is opened, before the run would end)."""
    paths = [str(path) for path in smoke_checkpoints.values()]
    reference = evaluate_process(tmp_path / "reference", paths)
    wait_for_file(tmp_path / "reference" / "main" / "results.sqlite", reference)
    started = time.perf_counter()
    assert reference.wait() == 0, reference.stderr.read()
    cells_seconds = time.perf_counter() - started

    chooser = random.Random(int.from_bytes(os.urandom(4), "little"))
    killed = tmp_path / "killed"
    for _ in range(2):
        process = evaluate_process(killed, paths)
        wait_for_file(killed / "main" / "results.sqlite", process)
        time.sleep(chooser.uniform(0.0, cells_seconds))
        process.send_signal(signal.SIGKILL)
        process.wait()
    finisher = evaluate_process(killed, paths)
    assert finisher.wait() == 0, finisher.stderr.read()

    resumed = stored_rows(killed, "main")
    assert comparable(resumed) == comparable(stored_rows(tmp_path / "reference", "main"))
    assert len({(row.cell_key, row.metric) for row in resumed}) == len(resumed) == len(paths)


def test_every_batch_of_a_vision_and_a_language_cell_reports_its_examples(smoke_checkpoints, language_checkpoints, tmp_path):
    reported: dict[str, list[tuple[int, int]]] = {}

    def step(cell, count, total):
        reported.setdefault(cell.key, []).append((count, total))

    pgd = build_threat("pgd", eps=4 / 255, steps=1, batch_size=8)
    vision = plan_cells([describe_checkpoint(str(smoke_checkpoints["softmax"]))], [build_threat("clean"), pgd], n_examples=40)
    language = plan_cells([describe_checkpoint(str(language_checkpoints["bilateral"]))], [build_threat("clean")],
                          n_examples=300, stride=8)
    rows = run_cells([*vision, *language], out=tmp_path, batch_size=16, steps=step)
    clean, attacked = ([count for count, _ in reported[cell.key]] for cell in vision)
    assert clean == [16, 16, 8] and attacked == [8] * 5  # the run's batches; the attack's own batch size
    (words,) = [row for row in rows if row.metric == "perplexity"]
    windows = reported[language[0].key]
    assert len(windows) > 1 and max(count for count, _ in windows) <= 16
    assert sum(count for count, _ in windows) == words.windows and {total for _, total in windows} == {words.windows}
    assert all(row.n == 40 for row in rows if row.metric == "accuracy")
