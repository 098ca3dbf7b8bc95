"""Verifying a results store: digests of what was written, and every value recomputed from its outcomes.

Digests (hex SHA-256, each over canonical JSON, ``row.canonical_json``):

- outcomes of a cell: ``[[kind, encoding, length, sha256(blob)], ...]`` in kind order;
- a row: ``{"row": <its record, non-finite floats as null>, "outcomes": <its cell's outcomes digest>}``;
- a cell: ``{"cell": key, "outcomes": <outcomes digest>, "rows": [<row digests in row order>]}``;
- the store's ledger: the number of cells and a chain ``c_k = sha256(c_(k-1) + key_k + digest_k)``
  over the cells in completion order, from ``c_0 = ""``.

``problems`` reports, one line each: a row or cell whose digest does not match, a row whose value,
interval or counts differ from those recomputed from the stored outcomes (``accuracy = n_correct / n``
with its Wilson interval; ``success_rate = (n - n_correct) / n`` against the clean reference cell;
``perplexity = exp(sum nll / sum counts)`` over its ``windows``; its bootstrap interval, costly to
redraw, is covered by the row's digest alone), rows or outcomes of
no cell, and a ledger that does not match the cells (a cell deleted with its rows and outcomes).
Digests are not signatures: whoever recomputes them can forge a store; they catch edits and accidents.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.stats import perplexity, wilson_interval

RELATIVE_TOLERANCE = 1e-9
"""How far a stored float may be from its recomputed value (relative), as float rounding allows."""


ORPHAN = "orphan"
"""The digest ``read_cells`` gives rows or outcomes of a key the cells table lacks."""


@dataclass(frozen=True)
class Problem:
    """One inconsistency: the cell it is in (``None`` for the store as a whole) and what is wrong."""

    cell_key: str | None
    text: str


def sha256_text(payload: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``payload``."""
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


def outcomes_digest(records: Iterable[Sequence[Any]]) -> str:
    """Digest of a cell's outcome records ``(kind, encoding, length, blob)``."""
    listed = sorted([kind, encoding, int(length), hashlib.sha256(bytes(blob)).hexdigest()]
                    for kind, encoding, length, blob in records)
    return sha256_text(listed)


def row_digest(row: ResultRow, outcomes: str) -> str:
    """Digest of a row's content and of its cell's outcomes digest ``outcomes``."""
    record = {name: None if isinstance(value, float) and not math.isfinite(value) else value
              for name, value in row.to_record().items()}
    return sha256_text({"row": record, "outcomes": outcomes})


def cell_digest(key: str, outcomes: str, rows: Sequence[str]) -> str:
    """Digest of a cell: its key, its outcomes digest and its rows' digests in row order."""
    return sha256_text({"cell": key, "outcomes": outcomes, "rows": list(rows)})


def chain(previous: str, key: str, digest: str) -> str:
    """The ledger chain after cell ``key`` with ``digest``: ``sha256(previous + key + digest)``."""
    return hashlib.sha256(f"{previous}{key}{digest}".encode("ascii")).hexdigest()


def ledger_of(cells: Iterable[tuple[str, str]]) -> tuple[int, str]:
    """``(count, chain)`` of ``(key, digest)`` cells in completion order."""
    count, digest = 0, ""
    for key, cell in cells:
        count, digest = count + 1, chain(digest, key, cell)
    return count, digest


@dataclass(frozen=True)
class StoredCell:
    """A cell as stored: key, digest (``None`` before digests were kept), rows with their digests, outcomes."""

    key: str
    digest: str | None
    rows: list[tuple[ResultRow, str | None]]
    outcome_records: list[tuple[str, str, int, bytes]]

    @property
    def outcomes_digest(self) -> str:
        return outcomes_digest(self.outcome_records)

    def digests(self) -> tuple[list[str], str]:
        """The row digests and the cell digest its content gives now."""
        outcomes = self.outcomes_digest
        rows = [row_digest(row, outcomes) for row, _ in self.rows]
        return rows, cell_digest(self.key, outcomes, rows)


def read_cells(connection: sqlite3.Connection, row_fields: Sequence[str]) -> list[StoredCell]:
    """Every cell of the store behind ``connection`` in completion order (rows in row order), then
    the orphans: rows or outcomes of a key the cells table lacks, with the digest ``ORPHAN``."""
    rows: dict[str, list[tuple[ResultRow, str | None]]] = {}
    for record in connection.execute(f"SELECT {', '.join(row_fields)}, digest FROM rows ORDER BY id"):
        rows.setdefault(record["cell_key"], []).append((ResultRow.from_record(record), record["digest"]))
    outcomes: dict[str, list[tuple[str, str, int, bytes]]] = {}
    for record in connection.execute("SELECT cell_key, kind, encoding, length, data FROM outcomes ORDER BY kind"):
        outcomes.setdefault(record[0], []).append(tuple(record)[1:])
    cells = [StoredCell(key, digest, rows.pop(key, []), outcomes.pop(key, []))
             for key, digest in connection.execute("SELECT cell_key, digest FROM cells ORDER BY seq")]
    orphans = [StoredCell(key, ORPHAN, rows.get(key, []), outcomes.get(key, [])) for key in dict.fromkeys([*rows, *outcomes])]
    return cells + orphans


def problems(cells: Sequence[StoredCell], ledger: tuple[int, str] | None, check_digests: bool = True) -> list[Problem]:
    """Every inconsistency of ``cells`` (``read_cells``) and the stored ``ledger`` (``None``: not kept)."""
    from robustbench_bilateral.results.store import decode_outcome  # the store imports this module

    decoded = {cell.key: {kind: decode_outcome(encoding, length, blob) for kind, encoding, length, blob in cell.outcome_records}
               for cell in cells if cell.digest != ORPHAN}
    found: list[Problem] = []
    for cell in cells:
        if cell.digest == ORPHAN:
            found.append(Problem(cell.key, f"{len(cell.rows)} rows and {len(cell.outcome_records)} outcomes belong to no "
                                           "stored cell (its entry in the cells table was deleted)"))
            continue
        texts = _digest_problems(cell) if check_digests else []
        texts += recomputation_problems([row for row, _ in cell.rows], decoded[cell.key], decoded)
        found += [Problem(cell.key, text) for text in texts[:1]]
    if ledger is not None:
        present = ledger_of((cell.key, cell.digest or "") for cell in cells if cell.digest != ORPHAN)
        if present != tuple(ledger):
            found.append(Problem(None, f"the store's ledger counts {ledger[0]} cells but {present[0]} are stored, or their "
                                       "digests differ from when they were written (a cell was deleted or edited)"))
    return found


def _digest_problems(cell: StoredCell) -> list[str]:
    rows, digest = cell.digests()
    for (row, stored), computed in zip(cell.rows, rows, strict=True):
        if stored != computed:
            return [f"row {row.metric} ({row.threat_label}) differs from what was written (digest mismatch)"]
    if cell.digest != digest:
        return ["its rows or outcomes differ from what was written (a row deleted or added, or an outcome edited)"]
    return []


def recomputation_problems(rows: Sequence[ResultRow], outcomes: Mapping[str, np.ndarray],
                           stored: Mapping[str, Mapping[str, np.ndarray]]) -> list[str]:
    """Each row of one cell whose value, interval or counts differ from those recomputed from ``outcomes``;
    ``stored`` holds every cell's decoded outcomes by key (to find a success rate's clean reference)."""
    found = []
    for row in rows:
        expected = _recompute(row, outcomes, stored)
        if expected is None:
            found.append(f"row {row.metric} ({row.threat_label}) cannot be recomputed: its outcomes are missing")
            continue
        actual = {"n": row.n, "n_correct": row.n_correct, "value": row.value, "ci_low": row.ci_low, "ci_high": row.ci_high,
                  "windows": row.windows}
        for name, value in expected.items():
            if not _close(actual[name], value):
                found.append(f"row {row.metric} ({row.threat_label}): {name} is {actual[name]!r} but its outcomes give {value!r}")
                break
    return found


def _recompute(row: ResultRow, outcomes: Mapping[str, np.ndarray],
               stored: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any] | None:
    """The fields of ``row`` its outcomes determine, or ``None`` when they are missing; an unknown metric gives ``{}``."""
    if row.metric == "perplexity":
        if "nll" not in outcomes or "counts" not in outcomes or len(outcomes["nll"]) == 0:
            return None
        windows = {} if row.windows is None else {"windows": len(outcomes["nll"]), "n": int(outcomes["counts"].sum())}
        return {"value": perplexity(outcomes["nll"], outcomes["counts"]), **windows}
    if row.metric not in {"accuracy", "success_rate"}:
        return {}
    if "correct" not in outcomes:
        return None
    correct = outcomes["correct"]
    if row.metric == "accuracy":
        n, still = len(correct), int(correct.sum())
        k = still
    else:
        clean = _clean_reference(row, len(correct), stored)
        if clean is not None and len(clean) == len(correct):
            n, still = int(clean.sum()), int((correct & clean).sum())
        elif row.n_correct is not None:
            n, still = row.n, row.n_correct
        else:
            return None
        if n <= 0:
            return None
        k = n - still
    low, high = wilson_interval(k, n)
    return {"n": n, "n_correct": still, "value": k / n, "ci_low": low, "ci_high": high}


def _clean_reference(row: ResultRow, n: int, stored: Mapping[str, Mapping[str, np.ndarray]]) -> np.ndarray | None:
    """The clean correctness a success rate was measured against: the reference cell of the row's
    checkpoint and split on ``n`` examples or on the whole split (``n_examples`` 0), if stored."""
    from robustbench_bilateral.engine.cell import clean_reference_key  # the engine imports the store

    for n_examples in (n, 0):
        reference = stored.get(clean_reference_key(row.checkpoint_sha256, row.dataset, row.split, n_examples))
        if reference is not None and "correct" in reference:
            return reference["correct"]
    return None


def _close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        if actual is None or expected is None:
            return actual is expected
        if math.isnan(actual) or math.isnan(expected):
            return math.isnan(actual) and math.isnan(expected)
        return math.isclose(actual, expected, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return bool(actual == expected)
