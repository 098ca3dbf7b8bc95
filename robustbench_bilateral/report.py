"""Reports of one or more runs, rebuilt from their stores alone.

Files (next to the first run's store, or in ``report_dir``): ``results.csv`` / ``results_wide.csv``
/ ``results.md`` / ``results.json`` / ``results.parquet`` (every row, as chosen), ``comparison.csv``
(every model group against the baseline in every setting, see ``results.compare``),
``verdicts.csv`` (each variant against the baseline per threat group over training seeds, see
``results.verdict``; empty without replicated groups), with plots
``plot_<name>.png``/``.pdf``/``.svg`` (``results.plots``), and with html one self-contained
``report.html`` (``results.html``). The same rows give the same bytes. ``Report.comparisons`` is
what the command line shows as one grid per threat; ``Report.warnings`` name checkpoints of one
variant that were not pooled because their recipes differ.

A report writes no store: it recomputes the sanity checks across cells over each run's rows
(``results.sanity.reconcile``) and shows the flags the rows imply; ``Report.flag_differences``
names every cell whose stored flags differ from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from robustbench_bilateral.atomic import write_atomic
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results import ResultRow, ResultStore
from robustbench_bilateral.results.compare import Comparison, compare
from robustbench_bilateral.results.export import DEFAULT_FORMATS, FORMATS, export_rows, threat_labels
from robustbench_bilateral.results.html import report_html
from robustbench_bilateral.results.plots import write_plots
from robustbench_bilateral.results.sanity import reconcile
from robustbench_bilateral.results.series import ModelGroup, model_groups
from robustbench_bilateral.results.store import FILENAME
from robustbench_bilateral.results.verdict import Verdict, verdicts

DEFAULT_BASELINE = "softmax"


@dataclass(frozen=True)
class Report:
    """The rows of the reported runs (with the flags they imply), their checkpoints' model groups
    (``results.series``), their comparisons with the baseline variant and the cells whose stored
    flags differ from what the rows imply (one line each)."""

    rows: list[ResultRow]
    comparisons: list[Comparison]
    baseline: str
    warnings: list[str]
    runs: list[str]
    groups: dict[str, ModelGroup]
    flag_differences: list[str]
    verdicts: list[Verdict]


def open_run(run_dir: Path) -> ResultStore:
    """The existing store in ``run_dir``; a missing one is an input error (reports never create stores)."""
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        raise InputError(f"no results in {run_dir}: run `bilat-eval evaluate|attack|contaminate|batch` first, or pass the folder that holds {FILENAME}")
    return ResultStore(path)


def build_report(run_dirs: Sequence[Path], baseline: str = DEFAULT_BASELINE) -> Report:
    """Rows of every run in ``run_dirs`` (in order, merged by ``merge_runs``) and their comparisons with
    ``baseline``; a store that fails verification (``ResultStore.check``) is a one-line ``StoreError``
    naming the cell. The sanity checks across cells run over the merged rows, so the shards of one
    run are checked as one."""
    stored: list[tuple[Path, ResultRow]] = []
    outcomes: dict[str, dict] = {}
    for run_dir in run_dirs:
        with open_run(run_dir) as store:
            store.check()
            rows_of_run = store.rows()
            outcomes.update({row.cell_key: store.outcomes(row.cell_key) for row in rows_of_run})
        stored += [(Path(run_dir), row) for row in rows_of_run]
    merged, origin = merge_runs(stored)
    reconciled = reconcile(merged)
    rows = reconciled.rows
    differences = [difference_text(origin[row.cell_key], merged, row, *rest) for row, *rest in reconciled.differences]
    if rows and baseline not in {row.variant for row in rows}:
        variants = ", ".join(sorted({row.variant for row in rows}))
        raise InputError(f"baseline variant '{baseline}' has no rows here: pass --baseline with one of {variants}")
    groups, warnings = model_groups(rows)
    comparisons = compare(rows, baseline, lambda row: outcomes[row.cell_key], groups)
    return Report(rows, comparisons, baseline, warnings, [str(Path(run_dir) / FILENAME) for run_dir in run_dirs], groups,
                  differences, verdicts(rows, groups, baseline))


AGREEING_FIELDS = ("value", "ci_low", "ci_high", "n", "n_correct")
"""What two stored copies of one cell's row must share to count as one (wall time and device may differ)."""


def merge_runs(stored: Sequence[tuple[Path, ResultRow]]) -> tuple[list[ResultRow], dict[str, Path]]:
    """``(rows, {cell key: run folder})``: each cell's rows once, from the first run that holds it (e.g.
    the shards of one run, or a run and its rerun). A cell stored in two runs with different results
    (``AGREEING_FIELDS``) is a one-line ``InputError`` naming it and both runs."""
    rows: dict[tuple[str, str], ResultRow] = {}
    origin: dict[str, Path] = {}
    for run_dir, row in stored:
        key = (row.cell_key, row.metric)
        first = rows.setdefault(key, row)
        origin.setdefault(row.cell_key, run_dir)
        if first is not row and any(getattr(first, name) != getattr(row, name) for name in AGREEING_FIELDS):
            label = threat_labels([row])[row.cell_key]
            raise InputError(f"{row.variant} ({row.checkpoint}) {label} {row.metric} is {first.value} in "
                             f"{origin[row.cell_key]} but {row.value} in {run_dir}: report the runs separately, or "
                             f"recompute one of them (batch --recompute)")
    return list(rows.values()), origin


def difference_text(run_dir: Path, rows: Sequence[ResultRow], row: ResultRow, lacking: Sequence[str],
                    stale: Sequence[str]) -> str:
    """One line on a cell whose stored flags differ from what the rows of its run imply."""
    parts = []
    if lacking:
        parts.append(f"lacks {', '.join(lacking)}, which the rows imply (shown here; any evaluating command on the run "
                     f"stores it)")
    if stale:
        parts.append(f"holds {', '.join(stale)}, which the rows no longer imply (kept here; a row it was compared with "
                     f"was removed or changed: rerun with --fresh to recompute the flags)")
    label = threat_labels(rows)[row.cell_key]
    return f"stored flags differ in {run_dir}: {row.variant} ({row.checkpoint}) {label} {'; '.join(parts)}"


def verdict_frame(cells: Sequence[Verdict]) -> pd.DataFrame:
    """One line per verdict cell, one column per ``Verdict`` field."""
    return pd.DataFrame([asdict(cell) for cell in cells], columns=list(Verdict.__dataclass_fields__))


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """One line per comparison, one column per ``Comparison`` field; ``sanity_flags`` joined by ``;``."""
    frame = pd.DataFrame([asdict(comparison) for comparison in comparisons], columns=list(Comparison.__dataclass_fields__))
    frame["sanity_flags"] = frame["sanity_flags"].map(lambda flags: ";".join(flags))
    return frame


def write_report(report: Report, out_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS, plots: bool = False,
                 html: bool = False) -> list[Path]:
    """Write the chosen exports, ``comparison.csv``, (``plots``) the figures and (``html``) ``report.html``
    into ``out_dir``; ``html`` draws the figures too."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InputError(f"unknown report format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    written = export_rows(report.rows, out_dir, formats)
    frame = comparison_frame(report.comparisons)
    written.append(write_atomic(out_dir / "comparison.csv", frame.to_csv(index=False, lineterminator="\n")))
    verdict_table = verdict_frame(report.verdicts)
    written.append(write_atomic(out_dir / "verdicts.csv", verdict_table.to_csv(index=False, lineterminator="\n")))
    figures = write_plots(report.rows, out_dir, report.groups) if plots or html else []
    written += figures
    if html:
        pngs = [path for path in figures if path.suffix == ".png"]
        written.append(write_atomic(out_dir / "report.html", report_html(report, frame, pngs, verdict_table)))
    return written
