"""``bilat-eval wordswap``: per-word perplexity of language models on word-swapped evaluation text."""

from __future__ import annotations

from typing import cast

import click
from rich.text import Text

from cli.evaluating import EvaluationOptions, comma_separated, evaluation_options, plan, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import rate_table, swapped_line_texts
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.evaluation import EvaluationPlan
from robustbench_bilateral.sources import load_split
from robustbench_bilateral.threats import build_threat
from robustbench_bilateral.wordswap.swap import Replacement, check_rate
from robustbench_bilateral.wordswap.threat import WordSwap, swapped_lines


def rate_value(token: str) -> float:
    """One ``--rates`` token as a rate in [0, 1]."""
    try:
        rate = float(token)
    except ValueError:
        raise InputError(f"--rates has {token!r}: give comma-separated rates in [0, 1], e.g. 0,0.015,0.05") from None
    check_rate(rate)
    return rate


@click.command("wordswap")
@click.option("--rates", default="0,0.015,0.05,0.1", show_default=True,
              help="Comma-separated swap rates: per line, max(1, int(rate * words)) non-stop-words are swapped.")
@click.option("--replacement", type=click.Choice([r.value for r in Replacement]), default=Replacement.AAA.value,
              show_default=True, help="What a swapped word becomes: AAA, a random vocabulary word, a WordNet synonym, a typo.")
@click.option("--show", type=int, default=0, show_default=True, metavar="N",
              help="After the table, print the first N lines of the split that have a swapped word, as the first "
                   "CHECKPOINT read them, beside their originals: one block per positive rate.")
@evaluation_options(default_n=0)
@pass_settings
def wordswap_command(settings: Settings, options: EvaluationOptions, rates: str, replacement: str, show: int) -> None:
    """Perplexity of each language CHECKPOINT with words of the evaluation split swapped, one column per rate."""
    if show < 0:
        raise InputError(f"--show must be 0 or more lines, got {show}")
    threats = [build_threat("wordswap", rate=rate, replacement=replacement) for rate in comma_separated(rates, rate_value)]
    evaluation = plan(settings, options, threats)
    rows = run_with_progress(settings, evaluation)
    words = options.n_examples or "all"
    title = f"word swap '{replacement}': perplexity [95% CI] on {options.split} ({words} words, run {options.run})"
    settings.console.print(rate_table(rows, title=title))
    if show:
        print_swapped_lines(settings, evaluation, show)


def print_swapped_lines(settings: Settings, evaluation: EvaluationPlan, n: int) -> None:
    """The first ``n`` swapped lines of the first checkpoint's cell at each positive rate: the text that cell scored."""
    console = settings.console
    colour = not console.no_color and console.color_system is not None
    first = evaluation.checkpoints[0]
    cells = [cell for cell in evaluation.cells if cell.checkpoint_path == first.path
             and isinstance(cell.threat, WordSwap) and cell.threat.params["rate"] > 0]
    if not cells:
        return
    split = load_split(cells[0].dataset, cells[0].split, cells[0].n_examples, first.meta)
    for cell in cells:
        params = cell.threat.params
        console.print(f"\nword swap '{params['replacement']}' at rate {params['rate']:g}: {first.path} on {cell.split}",
                      markup=False, soft_wrap=True)
        for line in swapped_lines(split, cast(WordSwap, cell.threat), cell.seed, n):
            original, swapped = swapped_line_texts(line, colour)
            console.print(f"  line {line.index + 1}", markup=False)
            console.print(Text("    - ").append_text(original), soft_wrap=True)
            console.print(Text("    + ").append_text(swapped), soft_wrap=True)
