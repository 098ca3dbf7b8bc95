"""``bilat-eval list variants|models|datasets|...``: what the harness offers, as rich tables."""

from __future__ import annotations

import click
from rich.table import Table

from cli.settings import Settings, pass_settings


def _variants() -> Table:
    from robustbench_bilateral.attention import describe_variants

    table = Table(title="Attention variants")
    table.add_column("variant", style="bold")
    table.add_column("per-head attention")
    for name, formula in describe_variants():
        table.add_row(name, formula)
    return table


def _models() -> Table:
    from robustbench_bilateral.models import describe_models

    table = Table(title="Models (timm.create_model(NAME, variant=...))")
    table.add_column("model", style="bold")
    table.add_column("architecture")
    for name, summary in describe_models():
        table.add_row(name, summary)
    return table


def _datasets() -> Table:
    from robustbench_bilateral.data import BUILTIN_SOURCES, USER_SOURCES

    table = Table(title="Datasets")
    table.add_column("name", style="bold")
    table.add_column("contents")
    table.add_column("kind")
    for name, (_, summary) in BUILTIN_SOURCES.items():
        table.add_row(name, summary, "built in")
    for name, summary in USER_SOURCES.items():
        table.add_row(name, summary, "your files")
    return table


TABLES = {"variants": _variants, "models": _models, "datasets": _datasets}


@click.command("list")
@click.argument("what", type=click.Choice(sorted(TABLES)))
@pass_settings
def list_command(settings: Settings, what: str) -> None:
    """Show the registered variants, models or datasets."""
    settings.console.print(TABLES[what]())
