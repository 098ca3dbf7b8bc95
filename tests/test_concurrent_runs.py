"""Several real ``bilat-eval`` processes evaluating into one new run at the same moment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from robustbench_bilateral.results import ResultRow, ResultStore

BILAT_EVAL = str(Path(sys.executable).parent / "bilat-eval")
N_EXAMPLES = "8"

# Each command shares cells with the others: the clean reference of the softmax checkpoint, and
# with itself all of its cells when two copies run at once.
COMMANDS = {
    "evaluate": ("evaluate", "{softmax}", "{bilateral}"),
    "attack": ("attack", "--fgsm", "--eps", "1/255", "{softmax}"),
    "contaminate": ("contaminate", "--corruptions", "fog", "--severities", "1", "{softmax}"),
}
ROUNDS = [
    ("evaluate", "attack"),
    ("evaluate", "attack", "contaminate"),
    ("attack", "contaminate"),
    ("evaluate", "evaluate"),
    ("attack", "attack"),
    ("contaminate", "evaluate"),
    ("attack", "contaminate", "attack"),
    ("evaluate", "contaminate"),
    ("attack", "evaluate", "evaluate"),
    ("contaminate", "contaminate"),
]


def start(out: Path, run: str, command: str, checkpoints: dict[str, str]) -> subprocess.Popen:
    """Start ``bilat-eval COMMAND`` into ``<out>/<run>`` on the CPU, without waiting for it."""
    args = [arg.format(**checkpoints) for arg in COMMANDS[command]]
    return subprocess.Popen(
        [BILAT_EVAL, "--device", "cpu", "--quiet", "--out", str(out), *args, "--run", run, "--n-examples", N_EXAMPLES],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output


def stored_cells(path: Path) -> tuple[Counter, Counter]:
    """How many times each cell key is stored, in the ``cells`` table and among the ``rows`` (per metric)."""
    with sqlite3.connect(path) as connection:
        cells = Counter(key for (key,) in connection.execute("SELECT cell_key FROM cells"))
        rows = Counter(connection.execute("SELECT cell_key, metric FROM rows").fetchall())
    connection.close()
    return cells, rows


def values(rows: list[ResultRow]) -> dict[tuple[str, str], tuple]:
    """What a row measured, by (cell key, metric): everything but the run name and the wall time."""
    return {(row.cell_key, row.metric): (row.n, row.value, row.ci_low, row.ci_high, row.n_correct, row.flags)
            for row in rows}


@pytest.fixture(scope="module")
def checkpoints(smoke_checkpoints) -> dict[str, str]:
    return {"softmax": str(smoke_checkpoints["softmax"]), "bilateral": str(smoke_checkpoints["bilateral"])}


@pytest.fixture(scope="module")
def alone(checkpoints, tmp_path_factory) -> tuple[dict, dict]:
    """Each command run by a single uninterrupted process into its own run: the cells of each
    command, and the values of every cell."""
    out = tmp_path_factory.mktemp("alone")
    processes = {command: start(out, command, command, checkpoints) for command in COMMANDS}
    cells, measured = {}, {}
    for command, process in processes.items():
        finish(process)
        with ResultStore.for_run(out, command) as store:
            cells[command] = stored_cells(store.path)[0]
            measured.update(values(store.rows()))
    return cells, measured


# The default suite runs the three commands at once and one command twice; the other rounds are slow.
FAST_ROUNDS = {("evaluate", "attack", "contaminate"), ("attack", "attack")}


@pytest.mark.parametrize("commands", [
    pytest.param(commands, id="+".join(commands), marks=() if commands in FAST_ROUNDS else pytest.mark.slow)
    for commands in ROUNDS
])
def test_processes_starting_one_new_run_at_once_store_every_cell_once(tmp_path, checkpoints, alone, commands):
    cells_of, measured = alone
    processes = [start(tmp_path, "shared", command, checkpoints) for command in commands]
    for process in processes:
        finish(process)
    path = tmp_path / "shared" / "results.sqlite"
    cells, rows = stored_cells(path)
    expected = set().union(*(cells_of[command] for command in commands))
    assert set(cells) == expected and set(cells.values()) == {1}
    assert set(rows.values()) == {1}
    with ResultStore(path) as store:
        stored = store.rows()
        assert store.problems() == []
    assert values(stored) == {key: value for key, value in measured.items() if key[0] in expected}
    exported = pd.read_csv(tmp_path / "shared" / "results.csv")
    assert sorted(zip(exported["cell_key"], exported["metric"], strict=True)) == sorted(rows)
