"""Plots of a store's rows: the primary metric against each threat's strength, one line per variant.

The strength of a threat is its first parameter among ``SWEEP_KEYS`` (attack ``eps``, corruption
``severity``, noise ``strength``, word-swap ``rate``); a value at one strength is the mean over
the threat's other parameters (e.g. over corruptions at one severity). Files are PNGs without
timestamps, so the same rows give the same bytes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from robustbench_bilateral.atomic import write_atomic  # noqa: E402
from robustbench_bilateral.results.row import ResultRow  # noqa: E402
from robustbench_bilateral.results.views import PRIMARY_METRICS, checkpoint_label  # noqa: E402

SWEEP_KEYS = ("eps", "severity", "strength", "rate")


def sweep_series(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str], dict[str, list[tuple[float, float]]]]:
    """``{(threat, sweep key, metric): {variant label: [(strength, mean value), ...] sorted}}``."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    values: dict[tuple[str, str, str], dict[str, dict[float, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in primary:
        key = next((name for name in SWEEP_KEYS if name in row.params), None)
        if key is not None:
            values[(row.threat, key, row.metric)][checkpoint_label(row, primary)][float(row.params[key])].append(row.value)
    return {
        plot: {label: sorted((x, sum(ys) / len(ys)) for x, ys in by_x.items()) for label, by_x in lines.items()}
        for plot, lines in sorted(values.items())
    }


def write_plots(rows: Sequence[ResultRow], out_dir: Path) -> list[Path]:
    """One ``plot_<threat>.png`` per swept threat in ``out_dir``; returns their paths."""
    written = []
    for (threat, key, metric), lines in sweep_series(rows).items():
        figure, axes = plt.subplots(figsize=(5, 3.5), dpi=100)
        for label, points in lines.items():
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        axes.set_xlabel(key)
        axes.set_ylabel(metric)
        axes.set_title(threat)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(figure)
        written.append(write_atomic(Path(out_dir) / f"plot_{threat}.png", buffer.getvalue()))
    return written
