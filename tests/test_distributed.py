"""Sharded evaluation under torchrun (gloo on the CPU): the rows and outcomes of one process, and a killed rank."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from report_rows import stored_cell_count

from cli.main import cli
from robustbench_bilateral.checkpoint import save_checkpoint
from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.engine.distributed import TIMEOUT_ENV, batch_block, collective_timeout
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models import create_model
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.text import WordVocab

VISION_THREATS = """
[[threats]]
name = "clean"
[[threats]]
name = "noise"
kind = "gaussian"
strength = 0.3
[[threats]]
name = "pgd"
eps = "8/255"
steps = 2
"""
LANGUAGE_THREATS = """
[[threats]]
name = "clean"
[[threats]]
name = "wordswap"
rate = 0.2
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def write_spec(folder: Path, checkpoints: list[Path], threats: str, n: int, batch_size: int, run: str = "grid") -> Path:
    spec = folder / f"{run}.toml"
    listed = ", ".join(f'"{path}"' for path in checkpoints)
    spec.write_text(f'run = "{run}"\nn_examples = {n}\nbatch_size = {batch_size}\ncheckpoints = [{listed}]\n{threats}',
                    encoding="utf-8")
    return spec


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(out: Path, spec: Path, *launch: str) -> subprocess.Popen:
    """``torchrun LAUNCH -m cli --out OUT batch SPEC`` (the venv's torchrun), output captured as text."""
    command = [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "cli", "--out", str(out), "batch", str(spec)]
    return subprocess.Popen(command, cwd=spec.parent, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def two_ranks(out: Path, spec: Path) -> subprocess.Popen:
    return torchrun(out, spec, "--nproc-per-node", "2", "--master-port", str(free_port()))


def one_process(out: Path, spec: Path) -> None:
    result = CliRunner().invoke(cli, ["--out", str(out), "--quiet", "batch", str(spec)])
    assert result.exit_code == 0, result.output


def stored(out: Path, run: str = "grid") -> tuple[list, list]:
    """Rows (without wall time and the thread count: torchrun gives each rank one thread) and every
    stored outcome blob (clean references included), by cell key."""
    with ResultStore.for_run(out, run) as store:
        rows = [dataclasses.replace(row, wall_s=None, versions={**row.versions, "threads": None}) for row in store.rows()]
    with sqlite3.connect(out / run / "results.sqlite") as connection:
        outcomes = connection.execute("SELECT cell_key, kind, encoding, length, data FROM outcomes ORDER BY cell_key, kind").fetchall()
    return rows, outcomes


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    """An untrained softmax language model over the words of the first Shakespeare test lines."""
    vocab = WordVocab.build(text_lines(load_source("shakespeare").split("test"))[:400])
    torch.manual_seed(0)
    model = create_model("bilat_lm", "softmax", vocab_size=len(vocab), context_length=16, embed_dim=16, depth=1,
                         num_heads=2, mlp_ratio=2.0)
    path = tmp_path_factory.mktemp("lm") / "model.safetensors"
    return save_checkpoint(path, model, task=Task.LANGUAGE_MODELING.value, dataset="shakespeare",
                           vocab=vocab.to_list(), context_length=16)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("n_ranks", [1, 2, 3, 5])
def test_shards_are_whole_batches_covering_every_index_once_in_order(batch_size, n_ranks):
    for n in range(40):
        blocks = [batch_block(n, batch_size, r, n_ranks) for r in range(n_ranks)]
        assert [i for block in blocks for i in range(n)[block]] == list(range(n))
        assert all(block.start % batch_size == 0 for block in blocks)


def test_the_collective_timeout_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")
    assert collective_timeout().total_seconds() == 7.5
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(InputError, match=f"{TIMEOUT_ENV}='soon' is not a positive number of seconds"):
        collective_timeout()


def test_two_ranks_store_the_rows_and_outcomes_of_one_process(smoke_checkpoints, tmp_path):
    """37 examples in batches of 8: rank 0 runs 2 batches, rank 1 three; noise and PGD's random start are drawn per example."""
    checkpoints = [smoke_checkpoints["softmax"], smoke_checkpoints["bilateral+boost"]]
    spec = write_spec(tmp_path, checkpoints, VISION_THREATS, n=37, batch_size=8)
    sharded = two_ranks(tmp_path / "sharded", spec)
    one_process(tmp_path / "single", spec)
    output, errors = sharded.communicate(timeout=300)
    assert sharded.returncode == 0, errors
    assert errors == "" and output.count("clean (accuracy)") == 1  # rank 1 printed nothing
    rows, outcomes = stored(tmp_path / "sharded")
    assert (rows, outcomes) == stored(tmp_path / "single")
    assert len(rows) == 2 * 5 and {row.n for row in rows if row.metric == "accuracy"} == {37}
    assert sorted(os.listdir(tmp_path / "sharded" / "grid")) == sorted(os.listdir(tmp_path / "single" / "grid"))


def test_language_windows_shared_by_two_nodes_give_the_perplexity_of_one_process(lm_checkpoint, tmp_path):
    """Two one-rank nodes (static rendezvous): node 1 gets its own --out, which it must leave untouched."""
    spec = write_spec(tmp_path, [lm_checkpoint], LANGUAGE_THREATS, n=300, batch_size=4)
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    nodes = [torchrun(tmp_path / f"node{rank}", spec, *rendezvous, "--node-rank", str(rank)) for rank in (0, 1)]
    one_process(tmp_path / "single", spec)
    (_, errors0), (output1, errors1) = (node.communicate(timeout=300) for node in nodes)
    assert [node.returncode for node in nodes] == [0, 0], errors0 + errors1
    assert (output1, errors1) == ("", "") and not (tmp_path / "node1").exists()
    rows, outcomes = stored(tmp_path / "node0")
    assert (rows, outcomes) == stored(tmp_path / "single")
    assert [row.metric for row in rows] == ["perplexity", "perplexity"] and len(outcomes) == 2 * 2


def worker_pid(launcher: int, rank: int) -> int:
    """The pid of the worker of ``rank`` among the children of the torchrun process ``launcher``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                environ = (entry / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError):
                continue
            if parent == launcher and f"RANK={rank}".encode() in environ:
                return int(entry.name)
    raise AssertionError(f"no rank {rank} worker under {launcher}")



@pytest.mark.slow
def test_a_killed_rank_stops_the_run_with_one_line_and_the_rerun_resumes(smoke_checkpoints, tmp_path):
    checkpoints = [smoke_checkpoints["softmax"], smoke_checkpoints["bilateral"]]
    spec = write_spec(tmp_path, checkpoints, VISION_THREATS.replace("steps = 2", "steps = 5"), n=160, batch_size=16)
    out = tmp_path / "sharded"
    store = out / "grid" / "results.sqlite"
    run = two_ranks(out, spec)
    while stored_cell_count(store) < 2 and run.poll() is None:  # the first cell and its clean reference
        time.sleep(0.05)
    os.kill(worker_pid(run.pid, 1), signal.SIGKILL)
    killed = time.perf_counter()
    _, errors = run.communicate(timeout=120)
    stopped_s = time.perf_counter() - killed

    assert run.returncode != 0 and stopped_s < 60
    (line,) = [line for line in errors.splitlines() if line.startswith("error:")]
    assert line.startswith("error: rank 0 of 2: ") and line.endswith("run the same command again to resume from the cells rank 0 stored")
    with sqlite3.connect(store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with ResultStore.for_run(out, "grid") as results:
        before = results.rows()
    assert 0 < len(before) < 2 * 5

    rerun = two_ranks(out, spec)
    _, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors
    one_process(tmp_path / "single", spec)
    assert stored(out) == stored(tmp_path / "single")
    with ResultStore.for_run(out, "grid") as results:
        assert results.rows()[: len(before)] == before  # stored cells were skipped, not run again


def test_a_study_does_not_train_under_several_ranks(tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text('n_examples = 16\n[train]\ntasks = "mnist5k"\nvariants = ["softmax"]\npreset = "smoke"\n'
                    '[[threats]]\nname = "clean"\n', encoding="utf-8")
    process = two_ranks(tmp_path / "out", spec)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "this study has 1 untrained checkpoint and 2 ranks run: run `bilat-eval batch SPEC` once" in stderr
    assert not (tmp_path / "out" / "checkpoints").exists()
