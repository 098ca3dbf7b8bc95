"""What the exports, plots and comparisons of result rows share: which metrics they show and how a line is named."""

from __future__ import annotations

from collections.abc import Sequence

from robustbench_bilateral.results.row import ResultRow

PRIMARY_METRICS = ("accuracy", "perplexity")


def checkpoint_label(row: ResultRow, rows: Sequence[ResultRow]) -> str:
    """The row's variant, with its checkpoint path when two checkpoints share a variant."""
    paths = {other.checkpoint for other in rows if other.variant == row.variant}
    return row.variant if len(paths) == 1 else f"{row.variant} ({row.checkpoint})"
