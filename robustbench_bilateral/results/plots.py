"""Plots of a store's rows: the primary metric against each threat's strength, one line per variant.

The strength of a threat is its first parameter among ``SWEEP_KEYS`` (attack ``eps``, corruption
``severity``, noise ``strength``, word-swap ``rate``). A threat's figure has one panel per
corruption group, word-swap replacement or noise kind (``panel``); a value at one strength is the
mean over the panel's other parameters (e.g. over the blur corruptions at one severity). Files
are PNGs without timestamps, so the same rows give the same bytes.
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
from robustbench_bilateral.corruptions.registry import CORRUPTIONS  # noqa: E402
from robustbench_bilateral.results.row import ResultRow  # noqa: E402
from robustbench_bilateral.results.views import PRIMARY_METRICS, checkpoint_label  # noqa: E402

SWEEP_KEYS = ("eps", "severity", "strength", "rate")


Series = dict[str, list[tuple[float, float]]]


def panel(params: dict) -> str:
    """The panel of a row's figure: its corruption's group, word-swap replacement or noise kind; "" for none."""
    if "corruption" in params:
        name = params["corruption"]
        return CORRUPTIONS.get(name).group if name in CORRUPTIONS else str(name)
    return next((str(params[key]) for key in ("replacement", "kind") if key in params), "")


def sweep_series(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str], dict[str, Series]]:
    """``{(threat, sweep key, metric): {panel: {variant label: [(strength, mean value), ...] sorted}}}``.

    A line is labelled by its variant, and by its checkpoint too when the threat's rows hold two of one variant.
    """
    by_threat: dict[str, list[ResultRow]] = defaultdict(list)
    for row in rows:
        if row.metric in PRIMARY_METRICS:
            by_threat[row.threat].append(row)
    values: dict[tuple[str, str, str, str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for threat_rows in by_threat.values():
        for row in threat_rows:
            key = next((name for name in SWEEP_KEYS if name in row.params), None)
            if key is not None:
                line = (row.threat, key, row.metric, panel(row.params), checkpoint_label(row, threat_rows))
                values[line][float(row.params[key])].append(row.value)
    series: dict[tuple[str, str, str], dict[str, Series]] = defaultdict(dict)
    # sorted by plot and panel; lines keep the order of their first row
    for (threat, key, metric, name, label), by_x in sorted(values.items(), key=lambda item: item[0][:4]):
        series[(threat, key, metric)].setdefault(name, {})[label] = sorted((x, sum(ys) / len(ys)) for x, ys in by_x.items())
    return dict(series)


def write_plots(rows: Sequence[ResultRow], out_dir: Path) -> list[Path]:
    """One ``plot_<threat>.png`` per swept threat in ``out_dir``, a panel per ``panel``; returns their paths."""
    written = []
    for (threat, key, metric), panels in sweep_series(rows).items():
        figure, grid = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), dpi=100, squeeze=False)
        for axes, (name, lines) in zip(grid[0], panels.items()):
            for label, points in lines.items():
                axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
            axes.set_xlabel(key)
            axes.set_ylabel(metric)
            axes.set_yscale("log" if metric == "perplexity" else "linear")
            axes.set_title(f"{threat}: {name}" if name else threat)
            axes.grid(alpha=0.3)
        grid[0][0].legend(fontsize="small")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(figure)
        written.append(write_atomic(Path(out_dir) / f"plot_{threat}.png", buffer.getvalue()))
    return written
