"""Reports of a run, rebuilt from its store alone: CSV/Markdown/JSON exports, plots, terminal grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results import ResultRow, ResultStore, ThreatFamily, export_all
from robustbench_bilateral.results.plots import write_plots
from robustbench_bilateral.results.store import FILENAME
from robustbench_bilateral.results.views import grid_table

REPORT_FORMATS = ("csv", "md", "json", "png")


def open_run(out: Path, run: str) -> ResultStore:
    """The existing store of ``run``; a missing one is an input error (reports never create stores)."""
    path = Path(out) / run / FILENAME
    if not path.is_file():
        raise InputError(f"no results for run '{run}' in {out}: run `bilat-eval evaluate|attack|contaminate|batch --run {run}` first, or pass --out")
    return ResultStore(path)


def write_report(store: ResultStore, formats: Sequence[str] = REPORT_FORMATS) -> list[Path]:
    """Write the chosen views of ``store`` next to it; the same rows always give the same bytes."""
    unknown = sorted(set(formats) - set(REPORT_FORMATS))
    if unknown:
        raise InputError(f"unknown report format {unknown[0]!r}: choose from {', '.join(REPORT_FORMATS)}")
    out_dir = store.path.parent
    written = export_all(store, out_dir, [name for name in formats if name != "png"])
    if "png" in formats:
        written += write_plots(store.rows(), out_dir)
    return written


def threat_grids(rows: Sequence[ResultRow]) -> list[Table]:
    """One grid per threat (variants x parameters), each with the clean value as its first column."""
    clean = [row for row in rows if row.threat_family is ThreatFamily.CLEAN]
    names = list(dict.fromkeys(row.threat for row in rows if row.threat_family is not ThreatFamily.CLEAN))
    if not names:
        return [grid_table(clean, title="clean")] if clean else []
    return [
        grid_table(clean + [row for row in rows if row.threat == name], column=_parameter_label, title=name)
        for name in names
    ]


def _parameter_label(row: ResultRow) -> str:
    """``clean`` for clean rows, else the threat's parameters as ``key=value``, one per line."""
    if row.threat_family is ThreatFamily.CLEAN:
        return "clean"
    return row.threat_label.removeprefix(row.threat).strip().replace(" ", "\n")
