"""File views of a store's rows: tidy CSV, wide CSV, Markdown and JSON, each written atomically.

Every file is a pure function of the stored rows (no timestamps, no recomputed fields), so
exporting the same store twice gives byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from robustbench_bilateral.atomic import write_atomic
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.results.row import ROW_FIELDS, ResultRow
from robustbench_bilateral.results.store import ResultStore
from robustbench_bilateral.results.views import PRIMARY_METRICS

FORMATS = ("csv", "md", "json")
WIDE_INDEX = ["checkpoint", "variant", "dataset", "split", "n", "seed", "metric"]


def tidy_frame(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """One line per row, one column per ``ResultRow`` field; params/flags/versions as JSON strings."""
    return pd.DataFrame([row.to_record() for row in rows], columns=list(ROW_FIELDS))


def wide_frame(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """Accuracy and perplexity values: one line per (checkpoint, variant, dataset, split, n, seed,
    metric), one column per threat label (clean first, then sorted). If a checkpoint path was
    measured twice under the same label (its file changed), the later row wins."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    if not primary:
        return pd.DataFrame(columns=WIDE_INDEX)
    records = [
        {**{name: getattr(row, name) for name in WIDE_INDEX}, "threat": row.threat_label, "value": row.value}
        for row in primary
    ]
    clean = {row.threat_label for row in primary if row.threat_family is ThreatFamily.CLEAN}
    wide = pd.DataFrame(records).pivot_table(index=WIDE_INDEX, columns="threat", values="value", aggfunc="last")
    labels = sorted(wide.columns, key=lambda label: (label not in clean, label))
    wide = wide[labels].reset_index()
    wide.columns.name = None
    return wide


def markdown_table(rows: Sequence[ResultRow]) -> str:
    """A GitHub-flavoured Markdown table of the rows, with values and 95 % intervals as text."""
    header = ["checkpoint", "variant", "dataset", "split", "threat", "metric", "value [95% CI]", "n", "n_correct", "seed", "flags"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            row.checkpoint, row.variant, row.dataset, row.split, row.threat_label, row.metric, row.value_text(),
            str(row.n), "" if row.n_correct is None else str(row.n_correct), str(row.seed), ", ".join(row.flags),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def rows_json(rows: Iterable[ResultRow]) -> str:
    """The rows as a JSON array of objects with sorted keys, two-space indented."""
    return json.dumps([row.to_json() for row in rows], indent=2, sort_keys=True, allow_nan=False) + "\n"


def export_all(store: ResultStore, out_dir: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """``export_rows`` of every row of ``store``."""
    return export_rows(store.rows(), out_dir, formats)


def export_rows(rows: Sequence[ResultRow], out_dir: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the views of ``rows`` into ``out_dir`` and return their paths.

    ``csv``: ``results.csv`` (tidy) and ``results_wide.csv``; ``md``: ``results.md``;
    ``json``: ``results.json``.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    written = []
    if "csv" in formats:
        written.append(write_atomic(out_dir / "results.csv", tidy_frame(rows).to_csv(index=False, lineterminator="\n")))
        written.append(write_atomic(out_dir / "results_wide.csv", wide_frame(rows).to_csv(index=False, lineterminator="\n")))
    if "md" in formats:
        written.append(write_atomic(out_dir / "results.md", markdown_table(rows)))
    if "json" in formats:
        written.append(write_atomic(out_dir / "results.json", rows_json(rows)))
    return written
