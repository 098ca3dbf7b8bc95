"""Terminal tables of result rows and comparisons; every number is written by ``results.row.format_value``.

One unit convention everywhere: metrics as fractions with 4 decimals (perplexity 2), ``eps`` as
``k/255`` when exact (``results.views.param_text``). A cell of a grid is the value over its 95 %
interval; `` !`` after the value marks a row with sanity flags (``results.sanity``). A variant
name is never cut: its column is as wide as its longest name; checkpoint paths fold instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from robustbench_bilateral.engine import Threat
from robustbench_bilateral.report import Report
from robustbench_bilateral.results.compare import Comparison
from robustbench_bilateral.results.export import threat_labels
from robustbench_bilateral.results.mce import COLUMN_GROUPS, CorruptionSummary
from robustbench_bilateral.results.row import ResultRow, format_value
from robustbench_bilateral.results.sanity import FLAG_MEANINGS
from robustbench_bilateral.results.verdict import Verdict
from robustbench_bilateral.results.views import eps_text
from robustbench_bilateral.wordswap.threat import SwappedLine

MAX_GRID_COLUMNS = 8


def name_column(table: Table, header: str, names: Iterable[str], style: str | None = None) -> None:
    """A column of variant names that never wraps nor cuts: at least as wide as the longest name."""
    width = max([len(header), *(len(name) for name in names)])
    table.add_column(header, no_wrap=True, min_width=width, style=style)


def row_cell(row: ResultRow) -> str:
    """``value [!]`` over ``[low, high]`` on the next line, e.g. ``0.8125 !`` / ``[0.7761, 0.8443]``."""
    mark = " !" if row.flags else ""
    return f"{format_value(row.value, row.metric)}{mark}\n{row.interval_text()}"


def rows_table(rows: Iterable[ResultRow], title: str | None = None) -> Table:
    """Every row: variant, checkpoint (folded when long), threat with parameters, metric, value [95 % CI], n."""
    rows = list(rows)
    labels = threat_labels(rows)
    table = Table(title=title)
    name_column(table, "variant", [row.variant for row in rows])
    table.add_column("checkpoint", overflow="fold")
    table.add_column("threat", overflow="fold")
    table.add_column("metric")
    table.add_column("value [95% CI]", justify="right")
    table.add_column("n", justify="right")
    for row in rows:
        table.add_row(row.variant, row.checkpoint, labels[row.cell_key], row.metric, row.value_text(), str(row.n))
    return table


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
    name_column(table, "variant", [variant for _, variant in cells])
    table.add_column("checkpoint", overflow="fold")
    for rate in sorted(rates):
        table.add_column(f"rate={rate:g}", justify="right")
    for (checkpoint, variant), by_rate in cells.items():
        table.add_row(variant, checkpoint, *(by_rate.get(rate, "-") for rate in sorted(rates)))
    return table


def attack_tables(threats: dict[tuple[str, str], Threat], clean: Threat, checkpoints: Sequence[str],
                  accuracy: dict[tuple[str, int], ResultRow], title: str) -> list[Table]:
    """One table per attack (variants as rows; clean, then eps as columns, accuracy as a fraction or
    perplexity as it is); `` !`` marks a flagged cell, whose warning ``flag_warnings`` writes.

    ``threats[(attack, eps as written)]`` are the attacks in table order;
    ``accuracy[(checkpoint, id(threat))]`` is the stored accuracy row of that checkpoint and threat.
    """
    variants = [accuracy[(path, id(clean))].variant for path in checkpoints]
    names = [f"{variant} ({path})" if variants.count(variant) > 1 else variant for variant, path in zip(variants, checkpoints)]
    by_attack: dict[str, list[tuple[str, Threat]]] = defaultdict(list)
    for (attack, label), threat in threats.items():
        by_attack[attack].append((label, threat))
    tables = []
    for columns in by_attack.values():
        table = Table(title=f"{columns[0][1].name}: {title}")
        name_column(table, "variant", names)
        table.add_column("clean", justify="right")
        for _, threat in columns:
            table.add_column(f"eps={eps_text(threat.params['eps'])}", justify="right")
        for name, path in zip(names, checkpoints):
            cells = [accuracy[(path, id(threat))] for _, threat in columns]
            table.add_row(name, *(row_cell(row) for row in [accuracy[(path, id(clean))], *cells]))
        tables.append(table)
    return tables


def flag_warnings(rows: Sequence[ResultRow]) -> list[str]:
    """One line per checkpoint and sanity flag of ``rows``: the flag, the threats whose cells carry it
    and what it means (``FLAG_MEANINGS``), e.g. ``warning: softmax: pgd>fgsm on pgd eps=8/255 (PGD
    accuracy above FGSM at the same eps: the attack did not converge)``. A checkpoint is named by its
    variant, and by its path too where two checkpoints of ``rows`` share a variant."""
    cells: dict[str, ResultRow] = {}
    for row in rows:
        if row.flags:
            cells.setdefault(row.cell_key, row)
    labels = threat_labels(list(cells.values()))
    paths: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        paths[row.variant].add(row.checkpoint)
    flagged: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in cells.values():
        name = f"{row.variant} ({row.checkpoint})" if len(paths[row.variant]) > 1 else row.variant
        for flag in row.flags:
            flagged[(name, flag)].append(labels[row.cell_key])
    return [f"warning: {name}: {flag} on {', '.join(dict.fromkeys(places))} ({FLAG_MEANINGS.get(flag, flag)})"
            for (name, flag), places in flagged.items()]


def print_warnings(console: Console, lines: Iterable[str]) -> None:
    """Each warning line in yellow, as it is (no markup)."""
    for line in lines:
        console.print(line, style="yellow", markup=False)


def comparison_grids(report: Report) -> list[Table]:
    """One grid per threat name and metric (clean first): variants x parameter settings."""
    by_threat: dict[tuple[str, str], list[Comparison]] = {}
    for comparison in report.comparisons:
        by_threat.setdefault((comparison.threat, comparison.metric), []).append(comparison)
    return [_grid(f"{name} ({metric})", items, report.baseline) for (name, metric), items in by_threat.items()]


def _grid(threat: str, comparisons: list[Comparison], baseline: str) -> Table:
    """Variants x settings, the best value of each column in bold; a threat with more than
    ``MAX_GRID_COLUMNS`` settings shows each variant's mean over them instead (every setting is in
    ``comparison.csv``). Headers show only the parameters that vary."""
    columns = list(dict.fromkeys(comparison.setting for comparison in comparisons))
    if len(columns) > MAX_GRID_COLUMNS:
        return _mean_grid(threat, comparisons, len(columns))
    variants = list(dict.fromkeys(comparison.variant for comparison in comparisons))
    cells = {(comparison.variant, comparison.setting): comparison for comparison in comparisons}
    best = {label: _best(label, comparisons) for label in columns}
    flagged = sorted({flag for comparison in comparisons for flag in comparison.sanity_flags})
    caption = f"delta and p-value against {baseline}; bold: best per column"
    if flagged:
        caption += f"; ! sanity flags: {', '.join(flagged)}"
    shared = set.intersection(*(set(label.split(" ")[1:]) for label in columns))
    table = Table(title=" ".join([threat, *sorted(shared)]), caption=caption, show_lines=True)
    name_column(table, "variant", variants, style="bold")
    for label in columns:
        varying = [part for part in label.split(" ")[1:] if part not in shared]
        table.add_column("\n".join(varying) or label, justify="right")
    for variant in variants:
        table.add_row(variant, *(_comparison_cell(cells.get((variant, label)), best[label]) for label in columns))
    return table


def _mean_grid(threat: str, comparisons: list[Comparison], settings: int) -> Table:
    """Each variant's mean value and mean delta against the baseline over the ``settings`` settings."""
    table = Table(title=f"{threat}: mean over {settings} settings (each in comparison.csv)")
    name_column(table, "variant", [comparison.variant for comparison in comparisons], style="bold")
    table.add_column("mean value", justify="right")
    table.add_column("mean delta", justify="right")
    for variant in dict.fromkeys(comparison.variant for comparison in comparisons):
        own = [comparison for comparison in comparisons if comparison.variant == variant]
        deltas = [comparison.delta for comparison in own if comparison.delta is not None]
        metric = own[0].metric
        table.add_row(variant, format_value(sum(c.value for c in own) / len(own), metric),
                      format_value(sum(deltas) / len(deltas), metric, signed=True) if deltas else "")
    return table


def _best(label: str, comparisons: list[Comparison]) -> float | None:
    """The best value in column ``label``: the highest, or the lowest where lower is better."""
    values = [(comparison.value, comparison.higher_is_better) for comparison in comparisons if comparison.setting == label]
    if not values:
        return None
    return max(value for value, _ in values) if values[0][1] else min(value for value, _ in values)


def _comparison_cell(comparison: Comparison | None, best: float | None) -> str:
    """Value (± std over checkpoints), bold when best, `` !`` when flagged, then ``Δ delta p=... (Holm ...)``."""
    if comparison is None:
        return ""
    metric = comparison.metric
    text = format_value(comparison.value, metric)
    if comparison.std is not None:
        text += f" ± {format_value(comparison.std, metric)} (n={comparison.n_checkpoints})"
    if comparison.value == best:
        text = f"[bold]{text}[/bold]"
    if comparison.sanity_flags:
        text += " !"
    if comparison.delta is not None:
        text += f"\nΔ {format_value(comparison.delta, metric, signed=True)}"
        if comparison.p_value is not None:
            text += f" p={comparison.p_value:.3g}"
        if comparison.p_holm is not None and comparison.p_holm != comparison.p_value:
            text += f" (Holm {comparison.p_holm:.3g})"
    return text


VERDICT_STYLES = {"better": "bold green", "worse": "bold red", "no evidence": "dim"}


def verdict_tables(report: Report) -> list[Table]:
    """One table per dataset: threat groups as rows, variants as columns; a cell is the verdict over
    training seeds, the difference of means against the baseline with Cohen's d and the
    Holm-corrected p-value (``results.verdict``)."""
    by_dataset: dict[str, list] = defaultdict(list)
    for cell in report.verdicts:
        by_dataset[cell.dataset].append(cell)
    tables = []
    for dataset, cells in by_dataset.items():
        variants = list(dict.fromkeys(cell.variant for cell in cells))
        names = list(dict.fromkeys(cell.threat_group for cell in cells))
        found = {(cell.threat_group, cell.variant): cell for cell in cells}
        table = Table(title=f"{dataset}: verdict against {report.baseline} over training seeds",
                      caption="Holm-corrected over this report's verdicts; 5 % level; d: Cohen's d", show_lines=True)
        name_column(table, "threat", names)
        for variant in variants:
            table.add_column(variant, justify="right")
        for name in names:
            table.add_row(name, *(_verdict_cell(found.get((name, variant))) for variant in variants))
        tables.append(table)
    return tables


def _verdict_cell(cell: Verdict | None) -> Text:
    """``better`` / ``worse`` / ``no evidence``, then ``Δ delta d=... p=...`` (empty when untested)."""
    if cell is None:
        return Text("")
    text = Text(cell.verdict, style=VERDICT_STYLES[cell.verdict])
    text.append(f"\nΔ {format_value(cell.delta, cell.metric, signed=True)} d={cell.effect_size:.2g} "
                f"p={cell.p_holm:.2g}")
    return text


def print_report(console: Console, report: Report, written: Sequence[Path]) -> None:
    """The report's grids, its verdict tables, its warnings (replicates not pooled, the sanity flags its rows imply, cells
    whose stored flags differ from them) and the files it wrote."""
    for table in [*comparison_grids(report), *verdict_tables(report)]:
        console.print(table)
    print_warnings(console, [f"warning: {line}" for line in report.warnings])
    print_warnings(console, flag_warnings(report.rows))
    print_warnings(console, [f"warning: {line}" for line in report.flag_differences])
    print_paths(console, written)


def print_paths(console: Console, written: Sequence[Path]) -> None:
    """``wrote`` and the written files, one per line so no path is cut."""
    console.print("wrote:", markup=False)
    for path in written:
        console.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)


def corruption_summary_table(summaries: Sequence[CorruptionSummary], reference: str, title: str,
                             measure: str = "mCE") -> Table:
    """One row per checkpoint: clean, per-group and mean corruption accuracy, then ``measure`` (``mCE``, or
    ``CE (sev. S)`` over fewer severities, ``results.mce.measure_name``) and its relative form against ``reference``."""
    groups = [group for group in COLUMN_GROUPS if any(group in summary.group_accuracy for summary in summaries)]
    noises = list(dict.fromkeys(kind for summary in summaries for kind in summary.noise_accuracy))
    table = Table(title=title)
    name_column(table, "variant", [summary.variant for summary in summaries])
    for name in ["clean", *groups, *(f"additive {kind}" for kind in noises), "mean corr.", f"{measure} vs {reference}",
                 f"rel. {measure} vs {reference}"]:
        table.add_column(name, justify="right")
    for summary in summaries:
        accuracies = [summary.clean_accuracy, *(summary.group_accuracy.get(group, math.nan) for group in groups),
                      *(summary.noise_accuracy.get(kind, math.nan) for kind in noises), summary.mean_accuracy]
        table.add_row(summary.variant, *(format_value(value, "accuracy") for value in accuracies),
                      format_value(summary.mce, "mce"), format_value(summary.relative_mce, "mce"))
    return table


def swapped_line_texts(line: SwappedLine, colour: bool) -> tuple[Text, Text]:
    """``(original, swapped)`` of a word-swapped line, tokens re-joined with single spaces.

    With ``colour`` the original's swapped words are struck through in red and their
    replacements bold green; without it the original is plain and the swapped line writes each
    swap as ``[original -> replacement]``.
    """
    before, after = line.original.split(), line.swapped.split()
    original, swapped = Text(), Text()
    for j, (old, new) in enumerate(zip(before, after)):
        space = " " if j else ""
        if j not in line.positions:
            original.append(space + old)
            swapped.append(space + new)
        elif colour:
            original.append(space).append(old, style="strike red")
            swapped.append(space).append(new, style="bold green")
        else:
            original.append(space + old)
            swapped.append(f"{space}[{old} -> {new}]")
    return original, swapped
