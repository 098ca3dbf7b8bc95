"""Edited stores are caught: ``verify`` names the cell, ``report`` refuses, resume recomputes it.

A real run (clean accuracy and FGSM of a smoke checkpoint on real MNIST) is edited the ways a
careless or hostile user would with ``sqlite3``; resuming the same command must give back rows
equal to the original ones. A schema-1 store (the committed demo) is upgraded in place.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.store import StoreError

SCHEMA_1 = Path(__file__).resolve().parent / "data" / "results_schema1.sqlite"
"""Seven rows of an earlier demo run as schema 1 wrote them (Fashion-MNIST clean and FGSM, Shakespeare
clean and an AAA swap, whose perplexity rows counted windows in ``n``)."""


def attack_args(out: Path, checkpoint: str) -> list[str]:
    return ["--device", "cpu", "--quiet", "--out", str(out), "attack", "--fgsm", "--eps", "1/255,4/255", "--n-examples", "16",
            checkpoint]


def measured(store: ResultStore) -> dict[tuple[str, str], tuple]:
    return {(row.cell_key, row.metric): (row.n, row.value, row.ci_low, row.ci_high, row.n_correct, row.flags)
            for row in store.rows()}


@pytest.fixture(scope="module")
def original(smoke_checkpoints, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("original")
    main_code = run_cli(attack_args(out, str(smoke_checkpoints["softmax"])))
    assert main_code == 0
    return out


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def edit(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


FIRST_ROW_CELL = "(SELECT cell_key FROM rows WHERE metric = 'success_rate' ORDER BY id LIMIT 1)"
TAMPERS = {
    "value_edited": ("UPDATE rows SET value = 0.999 WHERE id = (SELECT min(id) FROM rows WHERE metric = 'success_rate')",),
    "n_correct_cell_deleted": ("UPDATE rows SET n_correct = NULL WHERE id = (SELECT min(id) FROM rows WHERE metric = 'success_rate')",),
    "row_deleted": ("DELETE FROM rows WHERE id = (SELECT min(id) FROM rows WHERE metric = 'success_rate')",),
    "cell_entry_deleted": (f"DELETE FROM cells WHERE cell_key = {FIRST_ROW_CELL}",),
    "cell_deleted_altogether": (
        "CREATE TEMP TABLE gone AS SELECT cell_key FROM cells WHERE seq = (SELECT max(seq) FROM cells)",
        "DELETE FROM outcomes WHERE cell_key IN (SELECT cell_key FROM gone)",
        "DELETE FROM rows WHERE cell_key IN (SELECT cell_key FROM gone)",
        "DELETE FROM cells WHERE cell_key IN (SELECT cell_key FROM gone)"),
    "outcome_inverted": (f"UPDATE outcomes SET data = CAST(zeroblob(length(data)) AS BLOB) WHERE kind = 'correct' "
                         f"AND cell_key = {FIRST_ROW_CELL}",),
    "clean_reference_inverted": ("UPDATE outcomes SET data = CAST(zeroblob(length(data)) AS BLOB) WHERE kind = 'correct' "
                                 "AND cell_key = (SELECT cell_key FROM cells WHERE cell_key NOT IN (SELECT cell_key FROM rows) LIMIT 1)",),
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_an_edited_store_is_named_refused_and_recomputed(run_bilat, smoke_checkpoints, original, tmp_path, tamper):
    out = tmp_path / "out"
    shutil.copytree(original, out)
    store_path = out / "main" / "results.sqlite"
    with ResultStore(store_path) as store:
        before = measured(store)
    edit(store_path, *TAMPERS[tamper])

    code, listing, stderr = run_bilat("--out", str(out), "verify", str(out / "main"))
    assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert listing.count(str(store_path)) >= 1 and ("cell " in listing or "ledger" in listing)

    code, _, stderr = run_bilat("--out", str(out), "report", str(out / "main"))
    assert code == 2 and stderr.count("\n") == 1 and f"bilat-eval verify {out / 'main'}" in stderr

    assert run_bilat(*attack_args(out, str(smoke_checkpoints["softmax"])))[0] == 0
    with ResultStore(store_path) as store:
        assert store.problems() == []
        assert measured(store) == before
    code, _, _ = run_bilat("--out", str(out), "report", str(out / "main"))
    assert code == 0


def schema_1_copy(folder: Path) -> Path:
    """A copy of ``SCHEMA_1`` in ``folder``: no digests, no ``windows``, no ledger."""
    copy = folder / "results.sqlite"
    shutil.copy(SCHEMA_1, copy)
    return copy


def test_a_schema_1_store_is_upgraded_in_place_once_every_row_matches(tmp_path):
    copy = schema_1_copy(tmp_path)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
        count = connection.execute("SELECT count(*) FROM rows").fetchone()[0]
    connection.close()
    with ResultStore(copy) as store:
        assert store.problems() == [] and len(store.rows()) == count
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = {record[1] for record in connection.execute("PRAGMA table_info(rows)")}
    connection.close()
    assert {"windows", "digest"} <= columns
    with ResultStore(copy) as store:
        language = [row for row in store.rows() if row.metric == "perplexity"]
        counts = [store.outcomes(row.cell_key)["counts"] for row in language]
    assert len(language) == 2  # windows moved out of n, which now counts the scored words
    assert [(row.windows, row.n) for row in language] == [(len(words), int(words.sum())) for words in counts]
    assert all(row.n > row.windows for row in language)


def test_a_schema_1_store_with_an_edited_row_is_not_upgraded(tmp_path):
    copy = schema_1_copy(tmp_path)
    edit(copy, "UPDATE rows SET value = 0.999 WHERE id = (SELECT min(id) FROM rows WHERE metric = 'accuracy')")
    with pytest.raises(StoreError, match="cannot be upgraded: cell [0-9a-f]{64}: row accuracy"):
        ResultStore(copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
    connection.close()
