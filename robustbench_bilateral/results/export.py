"""File views of a store's rows: tidy CSV and Parquet, wide CSV, Markdown and JSON, each written atomically.

Every file is a pure function of the stored rows (no timestamps, no recomputed fields), so
exporting the same store twice gives byte-identical files. In every view the row field ``flags``
is called ``sanity_flags``. The tidy
table also has one typed column per parameter name seen in the rows (``eps`` float, ``steps``
int, ``space`` string, ...; empty where a threat lacks it), named ``param_<name>`` when the name
is already a column of the tidy table or of ``comparison.csv``; the README's column glossary
describes every column.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from robustbench_bilateral.atomic import write_atomic
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.results.row import ROW_FIELDS, ResultRow, canonical_json
from robustbench_bilateral.results.store import ResultStore
from robustbench_bilateral.results.views import PRIMARY_METRICS, SWEEP_KEYS, keyed_params, setting_text, varying_keys

FORMATS = ("csv", "md", "json", "parquet")
DEFAULT_FORMATS = ("csv", "md", "json")
WIDE_INDEX = ["checkpoint", "variant", "dataset", "split", "n", "seed", "metric"]
RENAMED = {"flags": "sanity_flags"}
EXPORT_FIELDS: tuple[str, ...] = tuple(RENAMED.get(name, name) for name in ROW_FIELDS)
"""The row columns of the tidy table, before the typed parameter columns."""
COUNT_FIELDS = ("n", "n_correct", "seed", "windows")
"""Whole-number row columns that may be empty, kept as integers (pandas ``Int64``)."""
DTYPES = {bool: "boolean", int: "Int64", float: "Float64", str: "string"}


def export_record(row: ResultRow) -> dict[str, Any]:
    """``row.to_record()`` with ``flags`` as ``sanity_flags`` and params without the run settings."""
    record = {RENAMED.get(name, name): value for name, value in row.to_record().items()}
    record["params"] = canonical_json(row.params)
    return record


def param_dtype(values: Sequence[Any]) -> str:
    """The pandas dtype of a parameter's values: bool, int, float (ints and floats mixed) or string;
    other values (None alone, lists) are JSON text."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {int, float}:
        return DTYPES[float]
    return DTYPES.get(kinds.pop(), "string") if len(kinds) == 1 else "string"


def param_columns(rows: Sequence[ResultRow]) -> dict[str, pd.Series]:
    """One typed column per parameter name of ``rows`` (sorted), by export column name: ``param_<name>``
    when the name is a row column or a column of ``comparison.csv`` (SPSA's ``delta``)."""
    from robustbench_bilateral.results.compare import Comparison  # compare builds on this module

    reserved = {*EXPORT_FIELDS, *Comparison.__dataclass_fields__}
    names = sorted({key for row in rows for key in row.params})
    columns = {}
    for name in names:
        values = [row.params.get(name) for row in rows]
        dtype = param_dtype(values)
        if dtype == "string":
            values = [None if value is None else value if isinstance(value, str) else canonical_json(value) for value in values]
        column = f"param_{name}" if name in reserved else name
        columns[column] = pd.Series(values, dtype=dtype)
    return columns


def tidy_frame(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """One line per row: the ``EXPORT_FIELDS`` (params/sanity_flags/versions as JSON strings), then
    the typed parameter columns."""
    rows = list(rows)
    frame = pd.DataFrame([export_record(row) for row in rows], columns=list(EXPORT_FIELDS))
    for name in COUNT_FIELDS:
        if name in frame:
            frame[name] = frame[name].astype("Int64")
    for name, column in param_columns(rows).items():
        frame[name] = column
    return frame


def threat_labels(rows: Sequence[ResultRow]) -> dict[str, str]:
    """A readable label per row's cell key: the threat and the parameters that vary between rows
    of that threat (``keyed_params``: no model-derived radius), swept parameters always, e.g.
    ``pgd eps=4/255 steps=20``."""
    by_threat: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_threat.setdefault(row.threat, []).append(row)
    labels = {}
    for threat, members in by_threat.items():
        params = [keyed_params(row.params) for row in members]
        keys = varying_keys(params, always=SWEEP_KEYS)
        labels.update({row.cell_key: setting_text(threat, entry, keys) for row, entry in zip(members, params)})
    return labels


def wide_frame(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """Accuracy and perplexity values: one line per (checkpoint, variant, dataset, split, n, seed,
    metric), one column per ``threat_labels`` label (clean first, then sorted). If a checkpoint path
    was measured twice under the same label (its file changed), the later row wins."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    if not primary:
        return pd.DataFrame(columns=WIDE_INDEX)
    labels = threat_labels(primary)
    records = [
        {**{name: getattr(row, name) for name in WIDE_INDEX}, "threat": labels[row.cell_key], "value": row.value}
        for row in primary
    ]
    clean = {labels[row.cell_key] for row in primary if row.threat_family is ThreatFamily.CLEAN}
    wide = pd.DataFrame(records).pivot_table(index=WIDE_INDEX, columns="threat", values="value", aggfunc="last")
    ordered = sorted(wide.columns, key=lambda label: (label not in clean, label))
    wide = wide[ordered].reset_index()
    wide.columns.name = None
    return wide


def markdown_table(rows: Sequence[ResultRow]) -> str:
    """A GitHub-flavoured Markdown table of the rows, with values and 95 % intervals as text."""
    header = ["checkpoint", "variant", "dataset", "split", "threat", "metric", "value [95% CI]", "n", "n_correct", "seed",
              "sanity_flags"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    labels = threat_labels(rows)
    for row in rows:
        cells = [
            row.checkpoint, row.variant, row.dataset, row.split, labels[row.cell_key], row.metric, row.value_text(),
            str(row.n), "" if row.n_correct is None else str(row.n_correct), str(row.seed), ", ".join(row.flags),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def rows_json(rows: Iterable[ResultRow]) -> str:
    """The rows as a JSON array of objects with sorted keys, two-space indented (``sanity_flags``,
    params without the run settings)."""
    records = []
    for row in rows:
        record = {RENAMED.get(name, name): value for name, value in row.to_json().items()}
        record["params"] = row.params
        records.append(record)
    return json.dumps(records, indent=2, sort_keys=True, allow_nan=False) + "\n"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as Parquet (pyarrow, no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


FILES = {"csv": ("results.csv", "results_wide.csv"), "md": ("results.md",), "json": ("results.json",),
         "parquet": ("results.parquet",)}
"""The files each export format writes."""


def export_paths(out_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS) -> list[Path]:
    """The files ``export_rows`` writes into ``out_dir`` for ``formats``, in the order it writes them."""
    return [Path(out_dir) / name for kind in FORMATS if kind in formats for name in FILES[kind]]


def export_all(store: ResultStore, out_dir: str | Path, formats: Sequence[str] = DEFAULT_FORMATS) -> list[Path]:
    """``export_rows`` of every row of ``store``."""
    return export_rows(store.rows(), out_dir, formats)


def export_rows(rows: Sequence[ResultRow], out_dir: str | Path, formats: Sequence[str] = DEFAULT_FORMATS) -> list[Path]:
    """Write the views of ``rows`` into ``out_dir`` and return their paths.

    ``csv``: ``results.csv`` (tidy) and ``results_wide.csv``; ``md``: ``results.md``;
    ``json``: ``results.json``; ``parquet``: ``results.parquet`` (the tidy table with its dtypes).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    builders = {
        "results.csv": lambda: tidy_frame(rows).to_csv(index=False, lineterminator="\n"),
        "results_wide.csv": lambda: wide_frame(rows).to_csv(index=False, lineterminator="\n"),
        "results.md": lambda: markdown_table(rows),
        "results.json": lambda: rows_json(rows),
        "results.parquet": lambda: parquet_bytes(tidy_frame(rows)),
    }
    return [write_atomic(path, builders[path.name]()) for path in export_paths(Path(out_dir), formats)]
