"""Figures of a store's rows: the primary metric against a swept parameter, one line per distinct setting.

A threat's figure ``plot_<threat>`` sweeps the first of its parameters among ``eps``, ``severity``,
``strength``, ``rate``; its panels are its corruptions, noise kinds or word-swap replacements.
Rows that carry ``context`` at two or more lengths also give ``plot_context``: perplexity against
context length (log2 axis), over every threat; a threat's own figure then shows its most frequent
context length (``at_main_context``). A line is one model group (``results.series``) in
one setting: every part of the setting other than the swept parameter that differs between rows
(space, steps, n, dataset, split, context, ...) makes another line, named in the legend; nothing
is averaged over settings. Each point shows its 95 % interval as an error bar; a line at
``eps``/``severity``/``strength``/``rate`` gets the clean value of its model and data at 0.
Panels of a figure share their y range (a log axis for perplexity spanning more than 10x). Lines
follow the variant order of ``figure_style.VARIANT_STYLES``. Every figure is written as PNG, PDF and SVG
(``results.figure_style``), so the same rows give the same bytes.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

from robustbench_bilateral.enums import Task, ThreatFamily
from robustbench_bilateral.results.figure_style import (
    LINESTYLES,
    PANEL_SIZE,
    VARIANT_STYLES,
    figure_style,
    save_figure,
    variant_style,
)
from robustbench_bilateral.results.row import ResultRow, canonical_json
from robustbench_bilateral.results.series import Line, ModelGroup, lines, model_groups, pool
from robustbench_bilateral.results.views import PRIMARY_METRICS, keyed_params, param_text, varying_keys

STRENGTH_KEYS = ("eps", "severity", "strength", "rate")
CONTEXT = "context"
PANEL_KEYS = ("corruption", "kind", "replacement")
MAX_TICKS = 8
MAX_COLUMNS = 6
AXIS_LABELS = {
    "eps": "eps",
    "severity": "severity (0 = clean)",
    "strength": "noise strength (0 = clean)",
    "rate": "word-swap rate (0 = clean)",
    CONTEXT: "context length (tokens)",
}


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``panels`` (name -> lines, "" for a single panel) of ``metric`` against ``sweep``."""

    name: str
    threat: str
    sweep: str
    metric: str
    family: ThreatFamily
    panels: dict[str, list[Line]]

    def all_lines(self) -> list[Line]:
        return [line for panel in self.panels.values() for line in panel]

    def varying(self) -> list[str]:
        """Setting entries that differ between the figure's lines (they name the lines), the threat first."""
        return sorted(varying_keys([line.describe for line in self.all_lines()]), key=lambda key: key != "threat")

    def line_label(self, line: Line) -> str:
        """The line's model group, then the setting entries that differ between lines."""
        parts = [f"{key}={param_text(key, line.describe[key])}" for key in self.varying() if key in line.describe]
        return " ".join([line.group.label, *parts])

    def title(self) -> str:
        """Threat, data, n and the shared settings (the attack budget), on two lines."""
        shared = {key: value for key, value in self.all_lines()[0].describe.items() if key not in self.varying()}
        head = [self.threat if self.sweep != CONTEXT else "perplexity vs context length"]
        head += [str(shared.pop(key)) for key in ("dataset", "split") if key in shared]
        if "n" in shared:
            head.append(f"n={shared.pop('n')}")
        else:
            counts = sorted({point.rows[0].n for line in self.all_lines() for point in line.points.values()})
            head.append(f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]}-{counts[-1]}")
        shared.pop("seed", None)
        budget = " ".join(f"{key}={param_text(key, value)}" for key, value in sorted(shared.items()))
        return ", ".join(head) + (f"\n{budget}" if budget else "")

    def y_label(self) -> str:
        if self.metric == "perplexity":
            return "perplexity per word"
        return "robust accuracy" if self.family is ThreatFamily.ADVERSARIAL else f"accuracy under {self.threat}"


def _panel(row: ResultRow) -> str:
    return next((str(row.params[key]) for key in PANEL_KEYS if key in row.params), "")


def _describe(row: ResultRow, without: Sequence[str]) -> dict[str, Any]:
    """The row's setting as a flat mapping, without the entries in ``without`` (the swept key, the panel key, ...)."""
    described = {**keyed_params(row.params), "dataset": row.dataset, "split": row.split, "n": row.n, "seed": row.seed}
    return {key: value for key, value in described.items() if key not in without}


def _with_clean(line: Line, clean: dict[tuple, list[ResultRow]]) -> Line:
    """``line`` with the clean value of its model group and data at x = 0, when it has none there."""
    if 0.0 in line.points:
        return line
    first = next(iter(line.points.values())).rows[0]
    key = (line.group.label, first.dataset, first.split, first.metric, first.n, first.seed)
    matches = [row for row in clean.get(key, []) if keyed_params(row.params).items() <= line.describe.items()]
    if not matches:
        return line
    return replace(line, points=dict(sorted({**line.points, 0.0: pool(matches)}.items())))


def figure_specs(rows: Iterable[ResultRow], groups: dict[str, ModelGroup] | None = None) -> list[FigureSpec]:
    """Every figure of ``rows``: one per swept threat and metric, then ``plot_context``; ``groups``
    are the checkpoints' model groups (default: ``model_groups`` of the rows)."""
    primary = [row for row in rows if row.metric in PRIMARY_METRICS]
    groups = groups if groups is not None else model_groups(primary)[0]
    clean: dict[tuple, list[ResultRow]] = defaultdict(list)
    swept: dict[tuple[str, str, str], list[ResultRow]] = defaultdict(list)
    for row in primary:
        if row.threat_family is ThreatFamily.CLEAN:
            clean[(groups[row.checkpoint_sha256].label, row.dataset, row.split, row.metric, row.n, row.seed)].append(row)
        sweep = next((key for key in STRENGTH_KEYS if key in row.params), None)
        if sweep is not None and row.threat_family is not ThreatFamily.CLEAN:
            swept[(row.threat, sweep, row.metric)].append(row)
    metrics = defaultdict(set)
    for threat, _, metric in swept:
        metrics[threat].add(metric)
    specs = []
    for (threat, sweep, metric), members in sorted(swept.items()):
        members = at_main_context(members)
        by_panel: dict[str, list[ResultRow]] = defaultdict(list)
        for row in members:
            by_panel[_panel(row)].append(row)
        panels = {name: [_with_clean(line, clean) for line in lines(panel_rows, groups, sweep,
                                                                     lambda row: _describe(row, (sweep, *PANEL_KEYS)))]
                  for name, panel_rows in sorted(by_panel.items())}
        name = f"plot_{threat}" if len(metrics[threat]) == 1 else f"plot_{threat}_{metric}"
        specs.append(FigureSpec(name, threat, sweep, metric, members[0].threat_family, panels))
    return specs + _context_specs(primary, groups)


def at_main_context(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """The rows of a threat figure at one context length: where language rows were evaluated at
    several, the most frequent one (the shortest on a tie); the other lengths are drawn against
    context in ``plot_context``. Rows without ``context`` (images) are all kept."""
    counts = Counter(row.params[CONTEXT] for row in rows if CONTEXT in row.params)
    if len(counts) < 2:
        return list(rows)
    main = min(counts, key=lambda length: (-counts[length], length))
    return [row for row in rows if row.params.get(CONTEXT, main) == main]


def _context_specs(rows: Sequence[ResultRow], groups: dict[str, ModelGroup]) -> list[FigureSpec]:
    """``plot_context`` (one per metric) when rows carry ``context`` at two or more lengths: the lines
    measured at two or more of them (a setting at one length alone is in its threat's figure)."""
    with_context = [row for row in rows if CONTEXT in row.params]
    specs = []
    for metric in sorted({row.metric for row in with_context}):
        members = [row for row in with_context if row.metric == metric]
        if len({row.params[CONTEXT] for row in members}) < 2:
            continue
        found = [line for line in lines(members, groups, CONTEXT, lambda row: {"threat": row.threat, **_describe(row, (CONTEXT,))})
                 if len(line.points) > 1]
        if not found:
            continue
        name = "plot_context" if metric == "perplexity" else f"plot_context_{metric}"
        specs.append(FigureSpec(name, "context", CONTEXT, metric, members[0].threat_family, {"": found}))
    return specs


def _x_ticks(axes: Axes, spec: FigureSpec, xs: list[float]) -> None:
    """Ticks at the measured x values (at most ``MAX_TICKS``, evenly thinned), eps as k/255, context on log2."""
    if spec.sweep == CONTEXT:
        axes.set_xscale("log", base=2)
    shown = _spaced(xs, log=spec.sweep == CONTEXT)
    axes.xaxis.set_major_locator(FixedLocator(shown))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticklabels([param_text(spec.sweep, int(x) if spec.sweep in (CONTEXT, "severity") else x) for x in shown],
                         rotation=45 if spec.sweep == "eps" and len(shown) > 5 else 0)


def _spaced(xs: list[float], log: bool) -> list[float]:
    """At most ``MAX_TICKS`` of the measured ``xs``, each at least 1/12 of the axis (in log2 on a log
    axis) from the one before, the last always kept, so labels never overlap."""
    position = [math.log2(x) if log else x for x in xs]
    gap = (position[-1] - position[0]) / 12
    kept = [0]
    for index in range(1, len(xs)):
        if position[index] - position[kept[-1]] >= gap:
            kept.append(index)
    if kept[-1] != len(xs) - 1:
        kept[-1] = len(xs) - 1
    shown = [xs[index] for index in kept]
    return shown if len(shown) <= MAX_TICKS else shown[:: math.ceil(len(shown) / MAX_TICKS)]


def _x_label(spec: FigureSpec) -> str:
    if spec.sweep != "eps":
        return AXIS_LABELS[spec.sweep]
    params = [line.describe for line in spec.all_lines()]
    norms = {entry.get("norm") for entry in params}
    spaces = {entry.get("space") for entry in params}
    norm = norms.pop() if len(norms) == 1 else "mixed norms"
    tasks = {point.rows[0].task for line in spec.all_lines() for point in line.points.values()}
    if tasks == {Task.LANGUAGE_MODELING.value}:  # embedding attacks: eps relative to the embedding scale
        return f"eps ({norm}, relative to the mean embedding norm; 0 = clean)"
    units = "pixel units of [0, 1]" if spaces == {"pixel"} else "normalised units" if spaces == {"normalized"} else "pixel or normalised units"
    return f"eps ({norm}, {units}; 0 = clean)"


def _spread(spec: FigureSpec) -> float:
    """Largest over smallest value of the figure: a perplexity figure spanning more than 10x gets a log y axis."""
    values = [point.value for line in spec.all_lines() for point in line.points.values() if point.value > 0]
    return max(values) / min(values) if values else 1.0


def _order(line: Line) -> tuple[int, str]:
    """Lines in the order of ``VARIANT_STYLES`` (then by label), the same in every figure."""
    names = list(VARIANT_STYLES)
    return (names.index(line.group.variant) if line.group.variant in names else len(names), line.group.label)


def _draw(spec: FigureSpec) -> plt.Figure:
    """The figure of ``spec``: panels in a grid of at most ``MAX_COLUMNS`` columns with a shared y axis."""
    columns = min(len(spec.panels), MAX_COLUMNS)
    rows_n = math.ceil(len(spec.panels) / columns)
    labels = {spec.line_label(line) for line in spec.all_lines()}
    legend_columns = min(len(labels), 2 if columns < 2 else 4)
    legend_inches = 0.3 + 0.16 * math.ceil(len(labels) / legend_columns)
    figure, grid = plt.subplots(rows_n, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows_n + legend_inches),
                                squeeze=False, sharey=True)
    styles: dict[str, list[str]] = defaultdict(list)
    for line in spec.all_lines():
        styles[line.group.label].append(canonical_json(line.describe))
    xs = sorted({x for line in spec.all_lines() for x in line.points})
    handles: dict[str, Any] = {}
    for axes, (name, panel_lines) in zip(grid.flat, spec.panels.items()):
        for line in sorted(panel_lines, key=_order):
            colour, marker = variant_style(line.group.variant)
            style = LINESTYLES[sorted(set(styles[line.group.label])).index(canonical_json(line.describe)) % len(LINESTYLES)]
            points = list(line.points.items())
            handle = axes.errorbar([x for x, _ in points], [p.value for _, p in points],
                                   yerr=[[max(0.0, p.value - p.low) for _, p in points],
                                         [max(0.0, p.high - p.value) for _, p in points]],
                                   color=colour, marker=marker, linestyle=style, capsize=2, elinewidth=0.8)
            handles.setdefault(spec.line_label(line), handle)
        axes.set_title(name)
        _x_ticks(axes, spec, xs)
        axes.set_xlabel(_x_label(spec))
        if spec.metric == "perplexity" and _spread(spec) > 10:
            axes.set_yscale("log")
            axes.yaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    for axes in grid.flat[len(spec.panels):]:
        axes.set_visible(False)
    for axes in grid[:, 0]:
        axes.set_ylabel(spec.y_label())
    figure.suptitle(spec.title())
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=legend_columns,
                  bbox_to_anchor=(0.5, 0.0), frameon=False, handlelength=4)
    figure.tight_layout(rect=(0, legend_inches / figure.get_figheight(), 1, 1))
    return figure


def write_plots(rows: Sequence[ResultRow], out_dir: Path, groups: dict[str, ModelGroup] | None = None) -> list[Path]:
    """Each figure of ``figure_specs`` as ``<name>.png``/``.pdf``/``.svg`` in ``out_dir``; returns their paths."""
    written = []
    with figure_style():
        for spec in figure_specs(rows, groups):
            written += save_figure(_draw(spec), Path(out_dir) / spec.name)
    return written
