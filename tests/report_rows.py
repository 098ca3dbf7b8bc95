"""Result rows written through the real store and read back from it, and table lines of the CLI's output, for the tests."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np

from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.results import ResultRow, ResultStore, wilson_interval

FGSM = {"eps": 4 / 255, "labels": "true", "norm": "Linf", "space": "pixel"}
PGD = {"eps": 4 / 255, "labels": "true", "norm": "Linf", "space": "pixel", "steps": 20, "step_size": None,
       "random_start": True, "batch_size": 256}


def row(key: str, variant: str, threat: str, params: dict, value: float, n: int = 200, **changes) -> ResultRow:
    """An accuracy row of ``variant``'s checkpoint (its path names the variant) under ``threat``, its
    interval the Wilson interval of its count (``changes`` may make it another metric)."""
    family = ThreatFamily.CLEAN if threat == "clean" else ThreatFamily.ADVERSARIAL
    correct = round(value * n)
    low, high = wilson_interval(correct, n)
    base = ResultRow(
        run="series", checkpoint=f"ck/{variant}-seed0/model.safetensors", checkpoint_sha256=variant.ljust(64, "0")[:64],
        variant=variant, task="image-classification", dataset="fmnist", split="test", threat_family=family,
        threat=threat, params=params, n=n, metric="accuracy", value=correct / n,
        ci_low=low, ci_high=high, n_correct=correct, seed=0, device="cpu", flags=(), wall_s=0.1, versions={}, cell_key=key,
    )
    return replace(base, **changes)


def store_rows(folder: Path, rows: list[ResultRow]) -> Path:
    """Write each row as its own cell of run ``folder``, with per-example outcomes that match its
    counts (accuracy) or per-window scores (perplexity); returns the run folder."""
    with ResultStore.for_run(folder.parent, folder.name) as store:
        for item in rows:
            if item.n_correct is not None:
                outcomes = {"correct": np.arange(item.n) < item.n_correct}
            else:
                outcomes = {"nll": np.full(10, np.log(item.value) * item.n / 10), "counts": np.full(10, item.n // 10)}
            store.write_cell(item.cell_key, [item], outcomes)
    return folder


def perplexity_row(key: str, variant: str, threat: str, params: dict, value: float, n: int = 2000) -> ResultRow:
    """A perplexity row of ``variant``'s language checkpoint under ``threat`` (clean or wordswap)."""
    family = ThreatFamily.CLEAN if threat == "clean" else ThreatFamily.WORDSWAP
    return replace(row(key, variant, threat, params, 0.5, n=n), metric="perplexity", value=value, ci_low=0.95 * value,
                   ci_high=1.05 * value, n_correct=None, task="language-modeling", dataset="shakespeare",
                   threat_family=family)


def stored_rows(out: Path, run: str = "main") -> list[ResultRow]:
    """Every row stored in run ``run`` under ``out``."""
    with ResultStore.for_run(out, run) as store:
        return store.rows()


def table_row(output: str, variant: str) -> list[str]:
    """Cells of the one table line of ``output`` whose first cell is ``variant``."""
    lines = [line for line in output.splitlines() if line.startswith("│") and line.split("│")[1].strip() == variant]
    assert len(lines) == 1, output
    return [cell.strip() for cell in lines[0].split("│")[1:-1]]


def stored_cell_count(path: Path) -> int:
    """Finished cells in the store at ``path`` (0 before it exists or while it cannot be read), read
    through a read-only connection that is closed again, so polling leaves no connection open."""
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            return int(connection.execute("SELECT count(*) FROM cells").fetchone()[0])
    except sqlite3.Error:
        return 0
