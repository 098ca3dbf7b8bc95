"""Terminal view of word-swap rows: one line per checkpoint, one column per swap rate."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from robustbench_bilateral.results.row import ResultRow


def rate_table(rows: Iterable[ResultRow], title: str | None = None) -> Table:
    """Perplexity ``value [95% CI]`` of each ``checkpoint / variant`` (rows, in order of first
    appearance) at each word-swap ``rate`` (columns, ascending); rows of other threats or metrics
    are left out, a missing cell shows ``-``."""
    cells: dict[tuple[str, str], dict[float, str]] = {}
    rates: set[float] = set()
    for row in rows:
        if row.threat != "wordswap" or row.metric != "perplexity":
            continue
        rate = float(row.params["rate"])
        rates.add(rate)
        cells.setdefault((row.checkpoint, row.variant), {})[rate] = row.value_text()
    table = Table(title=title)
    table.add_column("checkpoint / variant")
    for rate in sorted(rates):
        table.add_column(f"rate {rate:g}", justify="right")
    for (checkpoint, variant), by_rate in cells.items():
        table.add_row(f"{checkpoint} / {variant}", *(by_rate.get(rate, "-") for rate in sorted(rates)))
    return table
