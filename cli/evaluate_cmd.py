"""``bilat-eval evaluate``: clean accuracy (images) or per-word perplexity (text) of checkpoints."""

from __future__ import annotations

import click

from cli.evaluating import EvaluationOptions, evaluation_options, plan, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import rows_table
from robustbench_bilateral.engine import Clean


@click.command("evaluate")
@evaluation_options(default_n=0)
@pass_settings
def evaluate_command(settings: Settings, options: EvaluationOptions) -> None:
    """Clean accuracy or perplexity of each CHECKPOINT, stored in the run and exported to CSV."""
    rows = run_with_progress(settings, plan(settings, options, [Clean()]))
    settings.console.print(rows_table(rows, title=f"clean evaluation ({options.run})"))
