"""Reports of one or more runs, rebuilt from their stores alone.

Files (next to the first run's store, or in ``report_dir``): ``results.csv`` / ``results_wide.csv``
/ ``results.md`` / ``results.json`` (every row), ``comparison.csv`` (every variant against the
baseline, see ``results.compare``) and, with plots, ``plot_<threat>.png``. The same rows give the
same bytes. The terminal view is one grid per threat: variants as lines, parameters as columns,
the best value of each column in bold, deltas and p-values against the baseline, flags marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from rich.table import Table

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


def comparison_grids(report: Report) -> list[Table]:
    """One grid per threat name and metric (clean first): variants x parameter settings."""
    by_threat: dict[tuple[str, str], list[Comparison]] = {}
    for comparison in report.comparisons:
        by_threat.setdefault((comparison.threat, comparison.metric), []).append(comparison)
    return [_grid(f"{name} ({metric})", items, report.baseline) for (name, metric), items in by_threat.items()]


MAX_GRID_COLUMNS = 8


def _grid(threat: str, comparisons: list[Comparison], baseline: str) -> Table:
    """Variants x settings; a threat with more than ``MAX_GRID_COLUMNS`` settings shows each variant's mean
    over them instead (every setting is in ``comparison.csv``). Headers show only the parameters that vary."""
    columns = list(dict.fromkeys(comparison.threat_label for comparison in comparisons))
    if len(columns) > MAX_GRID_COLUMNS:
        return _mean_grid(threat, comparisons, len(columns))
    variants = list(dict.fromkeys(comparison.variant for comparison in comparisons))
    cells = {(comparison.variant, comparison.threat_label): comparison for comparison in comparisons}
    best = {label: _best(label, comparisons) for label in columns}
    flagged = sorted({flag for comparison in comparisons for flag in comparison.flags})
    caption = f"delta and p-value against {baseline}; bold: best per column"
    if flagged:
        caption += f"; ! sanity flags: {', '.join(flagged)}"
    shared = set.intersection(*(set(label.split(" ")[1:]) for label in columns))
    table = Table(title=" ".join([threat, *sorted(shared)]), caption=caption, show_lines=True)
    table.add_column("variant", style="bold")
    for label in columns:
        varying = [part for part in label.split(" ")[1:] if part not in shared]
        table.add_column("\n".join(varying) or label, justify="right")
    for variant in variants:
        table.add_row(variant, *(_cell(cells.get((variant, label)), best[label]) for label in columns))
    return table


def _mean_grid(threat: str, comparisons: list[Comparison], settings: int) -> Table:
    table = Table(title=f"{threat}: mean over {settings} settings (each in comparison.csv)")
    table.add_column("variant", style="bold")
    table.add_column("mean value", justify="right")
    table.add_column("mean delta", justify="right")
    for variant in dict.fromkeys(comparison.variant for comparison in comparisons):
        own = [comparison for comparison in comparisons if comparison.variant == variant]
        deltas = [comparison.delta for comparison in own if comparison.delta is not None]
        table.add_row(variant, f"{sum(c.value for c in own) / len(own):.4f}",
                      f"{sum(deltas) / len(deltas):+.4f}" if deltas else "")
    return table


def _best(label: str, comparisons: list[Comparison]) -> float | None:
    values = [(comparison.value, comparison.higher_is_better) for comparison in comparisons if comparison.threat_label == label]
    if not values:
        return None
    return max(value for value, _ in values) if values[0][1] else min(value for value, _ in values)


def _cell(comparison: Comparison | None, best: float | None) -> str:
    if comparison is None:
        return ""
    digits = 2 if comparison.metric == "perplexity" else 4
    text = f"{comparison.value:.{digits}f}"
    if comparison.std is not None:
        text += f" ± {comparison.std:.{digits}f} (n={comparison.n_checkpoints})"
    if comparison.value == best:
        text = f"[bold]{text}[/bold]"
    if comparison.flags:
        text += " !"
    if comparison.delta is not None:
        text += f"\nΔ {comparison.delta:+.{digits}f}"
        if comparison.p_value is not None:
            text += f" p={comparison.p_value:.3g}"
    return text
