"""Result rows, statistics, the SQLite store and its exported views, on real files."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace

import numpy as np
import pytest
from rich.console import Console
from scipy.stats import binomtest

from cli.tables import rows_table
from robustbench_bilateral.atomic import write_atomic
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.results import (
    ResultRow,
    ResultStore,
    StoreError,
    bootstrap_perplexity_interval,
    export_all,
    perplexity,
    versions,
    wilson_interval,
)
from robustbench_bilateral.results.plots import figure_specs, write_plots
from robustbench_bilateral.results.store import APPLICATION_ID


def make_row(cell_key: str, metric: str = "accuracy", value: float = 0.75, **changes) -> ResultRow:
    row = ResultRow(
        run="unit",
        checkpoint="checkpoints/vit.safetensors",
        checkpoint_sha256="ab" * 32,
        variant="bilateral",
        task="image-classification",
        dataset="digits",
        split="test",
        threat_family=ThreatFamily.NOISE,
        threat="gaussian",
        params={"sigma": 0.1, "clip": True},
        n=40,
        metric=metric,
        value=value,
        ci_low=0.6,
        ci_high=0.86,
        n_correct=30,
        seed=0,
        device="cpu",
        flags=("pgd_above_fgsm",),
        wall_s=1.25,
        versions={"torch": "2.14.1"},
        cell_key=cell_key,
    )
    return replace(row, **changes)


@pytest.mark.parametrize(("k", "n", "low", "high"), [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0)])
def test_wilson_interval_matches_textbook_and_scipy(k, n, low, high):
    ours = wilson_interval(k, n)
    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours == pytest.approx((low, high), abs=5e-5)
    assert ours == pytest.approx((reference.low, reference.high), abs=1e-6)


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_perplexity_interval_is_seeded_and_brackets_the_estimate():
    generator = np.random.default_rng(1)
    counts = generator.integers(50, 100, size=60)
    nll = counts * generator.normal(3.0, 0.3, size=60)
    interval = bootstrap_perplexity_interval(nll, counts, seed=7)
    assert interval == bootstrap_perplexity_interval(nll, counts, seed=7)
    assert interval != bootstrap_perplexity_interval(nll, counts, seed=8)
    assert interval[0] < perplexity(nll, counts) < interval[1]
    assert perplexity(nll, counts) == pytest.approx(math.exp(nll.sum() / counts.sum()))


def test_versions_names_the_libraries_that_shape_a_result():
    found = versions()
    assert {"python", "torch", "numpy", "datasets", "timm", "torchattacks", "robustbench-bilateral"} <= set(found)


def test_rows_and_outcomes_round_trip_through_a_reopened_file(tmp_path):
    outcomes = {
        "correct": np.array([True, False, True] * 5 + [True], dtype=bool),
        "predictions": np.arange(16, dtype=np.int64) - 3,
        "nll": np.linspace(0.1, 2.0, 16),
    }
    rows = [make_row("cell-b"), make_row("cell-b", metric="success_rate", value=0.1)]
    with ResultStore.for_run(tmp_path, "unit") as store:
        store.write_cell("cell-b", rows, outcomes)
        store.write_cell("cell-a", [make_row("cell-a", params={"sigma": 0.2})], {})
    path = tmp_path / "unit" / "results.sqlite"
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with ResultStore(path) as store:
        stored = store.rows()
        assert stored == rows + [make_row("cell-a", params={"sigma": 0.2})]
        assert store.rows(["cell-a"]) == [make_row("cell-a", params={"sigma": 0.2})]
        assert store.has_cell("cell-a") and not store.has_cell("cell-c")
        back = store.outcomes("cell-b")
        assert set(back) == set(outcomes)
        for kind, values in outcomes.items():
            assert back[kind].dtype == values.dtype
            np.testing.assert_array_equal(back[kind], values)
        with pytest.raises(StoreError, match="already stored"):
            store.write_cell("cell-a", [], {})
        assert store.write_cell("cell-a", [make_row("cell-a", value=0.1)], {}, exist_ok=True) is False
        assert store.rows(["cell-a"]) == [make_row("cell-a", params={"sigma": 0.2})]
        with ResultStore(path) as again:  # opening an existing store never replaces it
            assert again.rows() == stored
        store.clear()
        assert store.rows() == [] and not store.has_cell("cell-b")


def test_row_params_are_canonical_json():
    row = make_row("k", params={"b": (1, 2), "a": 0.5})
    assert row.to_record()["params"] == '{"a":0.5,"b":[1,2]}'
    assert row.threat_label == "gaussian a=0.5 b=[1,2]"
    assert ResultRow.from_record(row.to_record()) == row


def _foreign_sqlite(path):
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA application_id = 1234")
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()


def _plain_sqlite(path):
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE rows (x)")
    connection.close()


def _text_file(path):
    path.write_text("run,value\nold,0.5\n" * 20)


def _empty_file(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("make_file", [_foreign_sqlite, _plain_sqlite, _text_file, _empty_file])
def test_store_refuses_files_that_are_not_its_own_and_leaves_them_untouched(tmp_path, make_file):
    path = tmp_path / "results.sqlite"
    make_file(path)
    before = path.read_bytes()
    siblings = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StoreError) as raised:
        ResultStore(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message and "move" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings


def test_run_names_must_be_plain_folder_names(tmp_path):
    with pytest.raises(StoreError):
        ResultStore.for_run(tmp_path, "../elsewhere")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: ([make_row("cell-x"), make_row("cell-x", value=object())], {}),
        lambda: ([make_row("cell-x")], {"correct": np.ones(4, dtype=bool), "broken": np.array([None, 1], dtype=object)}),
    ],
    ids=["row-fails-to-serialise", "outcome-fails-to-encode"],
)
def test_write_cell_is_all_or_nothing(tmp_path, bad):
    rows, outcomes = bad()
    with ResultStore(tmp_path / "results.sqlite") as store:
        store.write_cell("cell-ok", [make_row("cell-ok")], {"correct": np.ones(3, dtype=bool)})
        with pytest.raises((sqlite3.Error, TypeError)):
            store.write_cell("cell-x", rows, outcomes)
        assert not store.has_cell("cell-x")
        assert store.outcomes("cell-x") == {}
        assert [row.cell_key for row in store.rows()] == ["cell-ok"]
        store.write_cell("cell-x", [make_row("cell-x")], {})
        assert [row.cell_key for row in store.rows()] == ["cell-ok", "cell-x"]
    with ResultStore(tmp_path / "results.sqlite") as reopened:
        assert [row.cell_key for row in reopened.rows()] == ["cell-ok", "cell-x"]


def _filled_store(tmp_path) -> ResultStore:
    store = ResultStore.for_run(tmp_path, "export")
    clean = dict(threat_family=ThreatFamily.CLEAN, threat="clean", params={}, flags=())
    store.write_cell("c1", [make_row("c1", value=0.9, **clean)], {})
    store.write_cell("c2", [make_row("c2", value=0.7), make_row("c2", metric="success_rate", value=0.2)], {})
    store.write_cell("c3", [make_row("c3", value=0.8, variant="softmax", checkpoint="checkpoints/softmax.safetensors", **clean)], {})
    store.write_cell("c4", [make_row("c4", metric="perplexity", value=123.456, n_correct=None, task="language-modeling",
                                     dataset="shakespeare", **clean)], {})
    return store


def test_exports_are_deterministic_and_rewritable(tmp_path):
    with _filled_store(tmp_path) as store:
        first = export_all(store, tmp_path / "out")
        contents = {path.name: path.read_bytes() for path in first}
        assert sorted(contents) == ["results.csv", "results.json", "results.md", "results_wide.csv"]
        again = export_all(store, tmp_path / "out")
        assert {path.name: path.read_bytes() for path in again} == contents
        for path in first:
            if path.suffix == ".csv":
                path.unlink()
        export_all(store, tmp_path / "out", formats=("csv",))
        assert {path.name: path.read_bytes() for path in first} == contents
        assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
        with pytest.raises(ValueError, match="xlsx"):
            export_all(store, tmp_path / "out", formats=("xlsx",))

    tidy = contents["results.csv"].decode().splitlines()
    assert tidy[0].startswith("run,checkpoint,checkpoint_sha256,variant,task")
    assert len(tidy) == 1 + 5
    wide = contents["results_wide.csv"].decode().splitlines()
    assert wide[0] == "checkpoint,variant,dataset,split,n,seed,metric,clean,gaussian"
    assert len(wide) == 1 + 3
    parsed = json.loads(contents["results.json"])
    assert parsed[0]["params"] == {} and parsed[1]["params"] == {"clip": True, "sigma": 0.1}
    assert parsed[1]["sanity_flags"] == ["pgd_above_fgsm"] and parsed[1]["wall_s"] == 1.25
    assert "| gaussian | accuracy | 0.7000 [0.6000, 0.8600] |" in contents["results.md"].decode()


def test_rows_table_renders_every_row(tmp_path):
    with _filled_store(tmp_path) as store:
        rows = store.rows()
    console = Console(width=200, record=True)
    console.print(rows_table(rows))
    text = console.export_text()
    assert "123.46 [0.60, 0.86]" in text
    assert text.count("checkpoints/vit.safetensors") == 4 and text.count("bilateral") == 4


def test_atomic_writes_get_the_permissions_of_a_new_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = write_atomic(tmp_path / "report.csv", "a,b\n")
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert written.read_text() == "a,b\n" and not list(tmp_path.glob(".*.tmp"))


def test_corruption_plots_have_a_panel_per_corruption_and_average_nothing(tmp_path):
    settings = [("fog", 1, 0.9), ("fog", 3, 0.7), ("snow", 3, 0.5), ("motion_blur", 3, 0.4)]
    rows = [make_row(f"c{i}", value=value, threat="corruption", threat_family=ThreatFamily.CORRUPTION,
                     params={"corruption": name, "severity": severity})
            for i, (name, severity, value) in enumerate(settings)]
    (spec,) = figure_specs(rows)
    points = {name: [(x, point.value) for x, point in line.points.items()] for name, (line,) in spec.panels.items()}
    assert points == {"fog": [(1.0, 0.9), (3.0, 0.7)], "motion_blur": [(3.0, 0.4)], "snow": [(3.0, 0.5)]}
    paths = write_plots(rows, tmp_path)
    assert [path.name for path in paths] == ["plot_corruption.png", "plot_corruption.pdf", "plot_corruption.svg"]
    assert [path.read_bytes() for path in paths] == [path.read_bytes() for path in write_plots(rows, tmp_path / "again")]


@pytest.mark.parametrize("folder", ["run#1", "what?", "100%"])
def test_stored_cell_counts_read_a_store_whose_path_needs_quoting_in_a_uri(tmp_path, folder):
    from robustbench_bilateral.results.store import stored_cell_counts

    with ResultStore.for_run(tmp_path, folder) as store:
        store.write_cell("a", [make_row("a")], {"correct": np.array([True, False, True, True])})
        assert stored_cell_counts()[store.path] == 1
