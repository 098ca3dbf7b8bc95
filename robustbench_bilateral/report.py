"""Reports of one or more runs, rebuilt from their stores alone.

Files (next to the first run's store, or in ``report_dir``): ``results.csv`` / ``results_wide.csv``
/ ``results.md`` / ``results.json`` (every row), ``comparison.csv`` (every variant against the
baseline, see ``results.compare``) and, with plots, ``plot_<threat>.png``. The same rows give the
same bytes. ``Report.comparisons`` is what the command line shows as one grid per threat.
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
from robustbench_bilateral.results.export import FORMATS, export_rows
from robustbench_bilateral.results.plots import write_plots
from robustbench_bilateral.results.store import FILENAME

DEFAULT_BASELINE = "softmax"


@dataclass(frozen=True)
class Report:
    """The rows of the reported runs and their comparisons with the baseline variant."""

    rows: list[ResultRow]
    comparisons: list[Comparison]
    baseline: str


def open_run(run_dir: Path) -> ResultStore:
    """The existing store in ``run_dir``; a missing one is an input error (reports never create stores)."""
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        raise InputError(f"no results in {run_dir}: run `bilat-eval evaluate|attack|contaminate|batch` first, or pass the folder that holds {FILENAME}")
    return ResultStore(path)


def build_report(run_dirs: Sequence[Path], baseline: str = DEFAULT_BASELINE) -> Report:
    """Rows of every run in ``run_dirs`` (in order) and their comparisons with ``baseline``."""
    rows: list[ResultRow] = []
    outcomes: dict[str, dict] = {}
    for run_dir in run_dirs:
        with open_run(run_dir) as store:
            stored = store.rows()
            rows.extend(stored)
            outcomes.update({row.cell_key: store.outcomes(row.cell_key) for row in stored})
    if rows and baseline not in {row.variant for row in rows}:
        variants = ", ".join(sorted({row.variant for row in rows}))
        raise InputError(f"baseline variant '{baseline}' has no rows here: pass --baseline with one of {variants}")
    return Report(rows, compare(rows, baseline, lambda row: outcomes[row.cell_key]), baseline)


def write_report(report: Report, out_dir: Path, formats: Sequence[str] = FORMATS, plots: bool = False) -> list[Path]:
    """Write the chosen exports, ``comparison.csv`` and (``plots``) the PNG figures into ``out_dir``."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InputError(f"unknown report format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    written = export_rows(report.rows, out_dir, formats)
    frame = pd.DataFrame([asdict(comparison) for comparison in report.comparisons], columns=list(Comparison.__dataclass_fields__))
    frame["flags"] = frame["flags"].map(lambda flags: ";".join(flags))
    written.append(write_atomic(Path(out_dir) / "comparison.csv", frame.to_csv(index=False, lineterminator="\n")))
    if plots:
        written += write_plots(report.rows, Path(out_dir))
    return written
