"""Terminal view of result rows."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from robustbench_bilateral.results.row import ResultRow


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
