"""The results store: one SQLite file per run holding result rows and per-example outcomes.

Layout: ``<out>/<run>/results.sqlite``, WAL journal. Several processes on one machine may use one
store at once (SQLite's locking; a network filesystem is not supported). The file is marked as ours by
``PRAGMA application_id`` (``APPLICATION_ID``) and carries its schema version in
``PRAGMA user_version``; any other file is refused before SQLite opens it, so it stays untouched.

Tables: ``cells`` (finished cells in completion order), ``rows`` (one per ``ResultRow``),
``outcomes`` (per cell and kind, one compact blob: booleans bit-packed with ``numpy.packbits``,
integers as little-endian int64, floats as little-endian float64) and ``ledger`` (one row: the
number of cells and the chain of their digests). Every row and cell carries its digest
(``results.verify``), so ``problems`` finds what was edited after it was written. A store of
schema 1 (no digests, no ``windows``) is upgraded in place when opened, once every row matches
its outcomes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import numpy as np

from robustbench_bilateral.atomic import fsync_path, temporary_sibling
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results.row import ROW_FIELDS, ResultRow, canonical_json
from robustbench_bilateral.results.verify import (
    Problem,
    StoredCell,
    cell_digest,
    chain,
    ledger_of,
    outcomes_digest,
    problems,
    read_cells,
    row_digest,
)

APPLICATION_ID = 0x42494C41
SCHEMA_VERSION = 2
UPGRADABLE = 1
"""The older schema (no digests, no ``windows`` column) a store is upgraded from when opened."""
FILENAME = "results.sqlite"
BUSY_TIMEOUT_S = 60.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

_LEDGER = (
    "CREATE TABLE ledger (id INTEGER PRIMARY KEY CHECK (id = 1), cells INTEGER NOT NULL, digest TEXT NOT NULL)",
    "INSERT INTO ledger (id, cells, digest) VALUES (1, 0, '')",
)
_SCHEMA = (
    "CREATE TABLE cells (seq INTEGER PRIMARY KEY AUTOINCREMENT, cell_key TEXT NOT NULL UNIQUE, digest TEXT)",
    """CREATE TABLE rows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run TEXT NOT NULL, checkpoint TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL,
        variant TEXT NOT NULL, task TEXT NOT NULL, dataset TEXT NOT NULL, split TEXT NOT NULL,
        threat_family TEXT NOT NULL, threat TEXT NOT NULL, params TEXT NOT NULL, n INTEGER NOT NULL,
        metric TEXT NOT NULL, value REAL, ci_low REAL, ci_high REAL, n_correct INTEGER,
        seed INTEGER NOT NULL, device TEXT NOT NULL, flags TEXT NOT NULL, wall_s REAL,
        versions TEXT NOT NULL, cell_key TEXT NOT NULL REFERENCES cells (cell_key),
        windows INTEGER, digest TEXT
    )""",
    "CREATE INDEX rows_cell_key ON rows (cell_key)",
    """CREATE TABLE outcomes (
        cell_key TEXT NOT NULL REFERENCES cells (cell_key), kind TEXT NOT NULL,
        encoding TEXT NOT NULL, length INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (cell_key, kind)
    )""",
    *_LEDGER,
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


OPENED: dict[Path, None] = {}
"""Every store this process opened, in order (what an interrupted command reports as stored)."""


def stored_cell_counts() -> dict[Path, int]:
    """How many cells each store this process opened holds now, read without the write lock."""
    counts = {}
    for path in OPENED:
        with suppress(sqlite3.Error), closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            counts[path] = int(connection.execute("SELECT count(*) FROM cells").fetchone()[0])
    return counts


def _count_scored_words(cursor: sqlite3.Cursor) -> None:
    """Schema-1 perplexity rows counted windows in ``n``: move that count to ``windows`` and make
    ``n`` the scored words, the sum of the cell's ``counts`` outcome (a row without it stays as it is)."""
    records = cursor.execute(
        "SELECT rows.id, outcomes.encoding, outcomes.length, outcomes.data FROM rows JOIN outcomes "
        "ON outcomes.cell_key = rows.cell_key AND outcomes.kind = 'counts' "
        "WHERE rows.metric = 'perplexity' AND rows.windows IS NULL").fetchall()
    for row_id, encoding, length, blob in records:
        words = int(decode_outcome(encoding, length, blob).sum())
        cursor.execute("UPDATE rows SET windows = n, n = ? WHERE id = ?", (words, row_id))


class StoreError(InputError):
    """A results file that cannot be used as it is (exit code 2: the file is the user's input)."""


def encode_outcome(values: np.ndarray) -> tuple[str, int, bytes]:
    """``(encoding, length, blob)`` of a 1-D bool, integer or float array."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise TypeError(f"an outcome must be a 1-D array, got shape {array.shape}")
    if array.dtype == np.bool_:
        return "bits", len(array), np.packbits(array).tobytes()
    if array.dtype.kind in "iu":
        return "int64", len(array), array.astype("<i8").tobytes()
    if array.dtype.kind == "f":
        return "float64", len(array), array.astype("<f8").tobytes()
    raise TypeError(f"an outcome must hold booleans, integers or floats, got dtype {array.dtype}")


def decode_outcome(encoding: str, length: int, blob: bytes) -> np.ndarray:
    """Inverse of ``encode_outcome``."""
    if encoding == "bits":
        return np.unpackbits(np.frombuffer(blob, dtype=np.uint8), count=length).astype(np.bool_)
    return np.frombuffer(blob, dtype={"int64": "<i8", "float64": "<f8"}[encoding]).copy()


def _check_header(path: Path) -> None:
    """Refuse a non-empty file that is not a SQLite database of ours, reading only its header."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    fix = f"pass another --out or run name, or move {path} away"
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path} is not a SQLite database, so not a bilat-eval results store: {fix}")
    (user_version,) = struct.unpack(">i", header[60:64])
    (application_id,) = struct.unpack(">i", header[68:72])
    if application_id != APPLICATION_ID:
        raise StoreError(f"{path} is a SQLite database of another application (id {application_id:#x}): {fix}")
    if user_version not in {SCHEMA_VERSION, UPGRADABLE}:
        raise StoreError(
            f"{path} has results schema {user_version}, this bilat-eval reads schema {SCHEMA_VERSION}: "
            f"use the bilat-eval version that wrote it, or {fix}"
        )


def _create(path: Path) -> None:
    """Create an empty store (schema, WAL journal) at ``path`` unless a file is already there.

    The store is built in a temporary file beside ``path``, flushed to disk and hard-linked to
    ``path``; the link fails if ``path`` exists, so an existing file is never replaced: of
    processes creating one run's store at once exactly one creates it and the others open it.
    A run killed at any moment leaves either no store or a complete empty one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("BEGIN")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute("COMMIT")
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()
        fsync_path(temporary)
        with suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_path(path.parent)


class ResultStore:
    """Rows and outcomes of one run; each cell is written in one transaction, at most once."""

    def __init__(self, path: str | Path) -> None:
        """Open the store at ``path``, creating it if no file is there (``_create``); any other file
        is refused by its header. Several processes may open one store at once: a write waits up
        to ``BUSY_TIMEOUT_S`` seconds for another's to finish."""
        self.path = Path(path)
        if not self.path.exists():
            _create(self.path)
        _check_header(self.path)
        self._connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode = WAL")
        self._connection.execute("PRAGMA foreign_keys = ON")
        if self._version() == UPGRADABLE:
            self._upgrade()
        OPENED[self.path] = None

    @classmethod
    def for_run(cls, out: str | Path, run: str) -> ResultStore:
        """The store of run ``run`` under the output folder ``out``: ``<out>/<run>/results.sqlite``."""
        if not run or run in {".", ".."} or "/" in run or "\\" in run:
            raise StoreError(f"run name {run!r} is not a plain folder name: choose one without slashes")
        return cls(Path(out) / run / FILENAME)

    def close(self) -> None:
        """Close the connection; WAL content is checkpointed into the main file."""
        self._connection.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cursor = self._connection.cursor()
        try:
            yield cursor
        except BaseException:
            if self._connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def has_cell(self, key: str) -> bool:
        """Whether cell ``key`` is finished and stored."""
        return self._connection.execute("SELECT 1 FROM cells WHERE cell_key = ?", (key,)).fetchone() is not None

    def write_cell(
        self, key: str, rows: Sequence[ResultRow], outcomes: Mapping[str, np.ndarray], exist_ok: bool = False
    ) -> bool:
        """Store a finished cell, its rows and its outcomes (``kind -> 1-D array``) all or nothing;
        return whether it was written.

        Checking for the cell and writing it is one ``BEGIN IMMEDIATE`` transaction, so of
        processes writing one cell at once exactly one stores it. A cell already stored raises
        ``StoreError``, or with ``exist_ok`` stays as stored and ``False`` is returned.
        """
        columns = ", ".join(ROW_FIELDS)
        placeholders = ", ".join(f":{name}" for name in ROW_FIELDS)
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            if cursor.execute("SELECT 1 FROM cells WHERE cell_key = ?", (key,)).fetchone() is not None:
                cursor.execute("ROLLBACK")
                if exist_ok:
                    return False
                raise StoreError(f"cell {key} is already stored in {self.path}: resume skips it, or start fresh")
            records = [(kind, *encode_outcome(values)) for kind, values in outcomes.items()]
            outcomes_hash = outcomes_digest(records)
            digests = [row_digest(row, outcomes_hash) for row in rows]
            digest = cell_digest(key, outcomes_hash, digests)
            cursor.execute("INSERT INTO cells (cell_key, digest) VALUES (?, ?)", (key, digest))
            for row, row_hash in zip(rows, digests, strict=True):
                if row.cell_key != key:
                    raise ValueError(f"a row of cell {row.cell_key} was written with cell {key}")
                cursor.execute(f"INSERT INTO rows ({columns}, digest) VALUES ({placeholders}, :digest)",
                               {**row.to_record(), "digest": row_hash})
            cursor.executemany("INSERT INTO outcomes (cell_key, kind, encoding, length, data) VALUES (?, ?, ?, ?, ?)",
                               [(key, *record) for record in records])
            count, previous = cursor.execute("SELECT cells, digest FROM ledger").fetchone()
            cursor.execute("UPDATE ledger SET cells = ?, digest = ?", (count + 1, chain(previous, key, digest)))
            cursor.execute("COMMIT")
        return True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's write lock for the block: no other process writes meanwhile, so what the
        block reads (and exports) stays current until it ends, and concurrent blocks run one by one."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            yield
            cursor.execute("COMMIT")

    def add_flags(self, flags: Mapping[str, Sequence[str]]) -> None:
        """Add ``flags[key]`` to every row of each stored cell ``key``, all in one transaction.

        Flags already on a row stay first and none is repeated, so adding the same flags again
        changes nothing. The digests of the changed rows and cells, and the ledger, are renewed.
        """
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            for key, added in flags.items():
                for record in cursor.execute("SELECT id, flags FROM rows WHERE cell_key = ?", (key,)).fetchall():
                    merged = list(dict.fromkeys([*json.loads(record[1]), *added]))
                    cursor.execute("UPDATE rows SET flags = ? WHERE id = ?", (canonical_json(merged), record[0]))
            self._write_digests(cursor, [cell for cell in self._cells() if cell.key in flags])
            cursor.execute("COMMIT")

    def rows(self, cell_keys: Iterable[str] | None = None) -> list[ResultRow]:
        """Stored rows in insertion order (cell by cell, then row by row), optionally of some cells only."""
        query = f"SELECT {', '.join('r.' + name for name in ROW_FIELDS)} FROM rows r JOIN cells c USING (cell_key)"
        records = self._connection.execute(f"{query} ORDER BY c.seq, r.id").fetchall()
        wanted = None if cell_keys is None else set(cell_keys)
        return [ResultRow.from_record(record) for record in records if wanted is None or record["cell_key"] in wanted]

    def outcomes(self, key: str) -> dict[str, np.ndarray]:
        """The outcomes of cell ``key`` by kind (empty if none are stored)."""
        records = self._connection.execute(
            "SELECT kind, encoding, length, data FROM outcomes WHERE cell_key = ? ORDER BY kind", (key,)
        ).fetchall()
        return {record["kind"]: decode_outcome(record["encoding"], record["length"], record["data"]) for record in records}

    def clear(self) -> None:
        """Delete every cell, row and outcome (the file and its schema stay)."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("DELETE FROM outcomes")
            cursor.execute("DELETE FROM rows")
            cursor.execute("DELETE FROM cells")
            cursor.execute("UPDATE ledger SET cells = 0, digest = ''")
            cursor.execute("COMMIT")

    def _version(self) -> int:
        return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def _cells(self) -> list[StoredCell]:
        return read_cells(self._connection, ROW_FIELDS)

    def _ledger(self) -> tuple[int, str]:
        count, digest = self._connection.execute("SELECT cells, digest FROM ledger").fetchone()
        return int(count), str(digest)

    def _write_digests(self, cursor: sqlite3.Cursor, cells: Sequence[StoredCell]) -> None:
        """Store the digests ``cells`` give now, then the ledger of every stored cell (inside a transaction)."""
        for cell in cells:
            rows, digest = cell.digests()
            ids = [record[0] for record in cursor.execute("SELECT id FROM rows WHERE cell_key = ? ORDER BY id", (cell.key,))]
            cursor.executemany("UPDATE rows SET digest = ? WHERE id = ?", list(zip(rows, ids, strict=True)))
            cursor.execute("UPDATE cells SET digest = ? WHERE cell_key = ?", (digest, cell.key))
        stored = cursor.execute("SELECT cell_key, digest FROM cells ORDER BY seq").fetchall()
        cursor.execute("UPDATE ledger SET cells = ?, digest = ?", ledger_of((key, digest or "") for key, digest in stored))

    def _upgrade(self) -> None:
        """Upgrade a schema-1 store in place under the write lock: add the ``windows`` and digest
        columns and the ledger, check every row against its outcomes, and only then write the digests.
        A row that does not match is a ``StoreError`` naming its cell, and the store stays as it was."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            if self._version() != UPGRADABLE:  # another process upgraded it meanwhile
                cursor.execute("ROLLBACK")
                return
            columns = {record[1] for record in cursor.execute("PRAGMA table_info(rows)")}
            for column in ("windows INTEGER", "digest TEXT"):
                if column.split()[0] not in columns:
                    cursor.execute(f"ALTER TABLE rows ADD COLUMN {column}")
            cursor.execute("ALTER TABLE cells ADD COLUMN digest TEXT")
            for statement in _LEDGER:
                cursor.execute(statement)
            _count_scored_words(cursor)
            cells = self._cells()
            found = problems(cells, None, check_digests=False)
            if found:
                raise StoreError(f"{self.path} (results schema {UPGRADABLE}) cannot be upgraded: {describe(found[0])}; "
                                 f"it was altered after it was written: start a fresh run, or move it away")
            self._write_digests(cursor, cells)
            cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            cursor.execute("COMMIT")

    def problems(self) -> list[Problem]:
        """Every inconsistency of the store (``results.verify.problems``), read in one snapshot."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN")
            found = problems(self._cells(), self._ledger())
            cursor.execute("COMMIT")
        return found

    def check(self) -> None:
        """Raise a one-line ``StoreError`` naming the first inconsistent cell, if any."""
        found = self.problems()
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise StoreError(f"{self.path}: {describe(found[0])}{more}: list every inconsistent cell with "
                             f"`bilat-eval verify {self.path.parent}`; run the command that made it again to recompute it")

    def discard_inconsistent(self) -> list[str]:
        """Delete every inconsistent cell (with its rows and outcomes, orphans included) and renew the
        ledger over the cells that stay, all under the write lock; return the deleted keys. Resuming
        then recomputes them: a run never keeps an inconsistent cell."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            found = problems(self._cells(), self._ledger())
            keys = list(dict.fromkeys(problem.cell_key for problem in found if problem.cell_key is not None))
            self._delete(cursor, keys, renew_ledger=bool(found))
            cursor.execute("COMMIT")
        return keys

    def discard(self, keys: Iterable[str]) -> list[str]:
        """Delete the stored cells among ``keys`` (rows and outcomes with them) and renew the ledger,
        under the write lock; return the deleted keys. Resuming then computes them again."""
        with self._transaction() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            stored = {record[0] for record in cursor.execute("SELECT cell_key FROM cells")}
            deleted = [key for key in dict.fromkeys(keys) if key in stored]
            self._delete(cursor, deleted, renew_ledger=bool(deleted))
            cursor.execute("COMMIT")
        return deleted

    def _delete(self, cursor: sqlite3.Cursor, keys: Sequence[str], *, renew_ledger: bool) -> None:
        """Delete cells ``keys`` from every table; with ``renew_ledger`` write the ledger of the cells that stay."""
        for key in keys:
            for table in ("outcomes", "rows", "cells"):
                cursor.execute(f"DELETE FROM {table} WHERE cell_key = ?", (key,))
        if renew_ledger:
            self._write_digests(cursor, [])


def describe(problem: Problem) -> str:
    """``cell <key>: <what is wrong>``, or the store-wide problem alone."""
    return problem.text if problem.cell_key is None else f"cell {problem.cell_key}: {problem.text}"
