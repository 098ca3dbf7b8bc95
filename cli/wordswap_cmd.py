"""``bilat-eval wordswap``: per-word perplexity of language models on word-swapped evaluation text."""

from __future__ import annotations

import click

from cli.evaluating import EvaluationOptions, comma_separated, evaluation_options, plan, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import rate_table
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.threats import build_threat
from robustbench_bilateral.wordswap.swap import Replacement, check_rate


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
@evaluation_options(default_n=0)
@pass_settings
def wordswap_command(settings: Settings, options: EvaluationOptions, rates: str, replacement: str) -> None:
    """Perplexity of each language CHECKPOINT with words of the evaluation split swapped, one column per rate."""
    threats = [build_threat("wordswap", rate=rate, replacement=replacement) for rate in comma_separated(rates, rate_value)]
    rows = run_with_progress(settings, plan(settings, options, threats))
    words = options.n_examples or "all"
    title = f"word swap '{replacement}': perplexity [95% CI] on {options.split} ({words} words, run {options.run})"
    settings.console.print(rate_table(rows, title=title))
