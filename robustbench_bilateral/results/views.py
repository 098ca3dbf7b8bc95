"""Terminal views of result rows: the full list, and grids of one metric (checkpoints x threats)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.table import Table

from robustbench_bilateral.results.row import ResultRow

PRIMARY_METRICS = ("accuracy", "perplexity")


def rows_table(rows: Iterable[ResultRow], title: str | None = None) -> Table:
    """A rich table: checkpoint and variant, threat with parameters, metric, value [95 % CI], n."""
    table = Table(title=title)
    table.add_column("checkpoint / variant")
    table.add_column("threat")
    table.add_column("metric")
    table.add_column("value [95% CI]", justify="right")
    table.add_column("n", justify="right")
    for row in rows:
        table.add_row(f"{row.checkpoint} / {row.variant}", row.threat_label, row.metric, row.value_text(), str(row.n))
    return table


def checkpoint_label(row: ResultRow, rows: Sequence[ResultRow]) -> str:
    """The row's variant, with its checkpoint path when two checkpoints share a variant."""
    paths = {other.checkpoint for other in rows if other.variant == row.variant}
    return row.variant if len(paths) == 1 else f"{row.variant} ({row.checkpoint})"


def grid_table(
    rows: Sequence[ResultRow],
    column: Callable[[ResultRow], str] = lambda row: row.threat_label,
    title: str | None = None,
) -> Table:
    """Accuracy or perplexity as a grid: one line per checkpoint, one column per ``column(row)``.

    Each cell is the value with its 95 % interval on the line below; ``!`` marks a row with
    sanity flags. Columns keep the order in which they first appear.
    """
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    columns = list(dict.fromkeys(column(row) for row in primary))
    lines = list(dict.fromkeys(checkpoint_label(row, primary) for row in primary))
    cells = {(checkpoint_label(row, primary), column(row)): row for row in primary}
    table = Table(title=title, show_lines=True)
    table.add_column("variant", style="bold")
    for name in columns:
        table.add_column(name, justify="right")
    for line in lines:
        table.add_row(line, *(_cell_text(cells.get((line, name))) for name in columns))
    return table


def _cell_text(row: ResultRow | None) -> str:
    if row is None:
        return ""
    digits = 2 if row.metric == "perplexity" else 4
    mark = " !" if row.flags else ""
    return f"{row.value:.{digits}f}{mark}\n[{row.ci_low:.{digits}f}, {row.ci_high:.{digits}f}]"
