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


def _attacks() -> Table:
    from robustbench_bilateral import evaluation  # noqa: F401  (importing it registers every threat)
    from robustbench_bilateral.engine import THREATS
    from robustbench_bilateral.results import ThreatFamily

    table = Table(title="Attacks (bilat-eval attack --NAME)")
    table.add_column("attack", style="bold")
    table.add_column("norm")
    table.add_column("settings (defaults)")
    for name, threat in sorted(THREATS.items()):
        if threat.family is ThreatFamily.ADVERSARIAL:
            settings = ", ".join(f"{key}={value}" for key, value in threat.DEFAULTS.items()) or "eps only"
            table.add_row(name, threat.norm, settings)
    return table


def _corruptions() -> Table:
    from robustbench_bilateral.corruptions import CORRUPTIONS, NOISES

    table = Table(title="Corruptions (severities 1-5) and noises")
    table.add_column("name", style="bold")
    table.add_column("group")
    table.add_column("set")
    table.add_column("random")
    for name, entry in CORRUPTIONS.items():
        kind = "held-out" if entry.held_out else "imagenet-c"
        table.add_row(name, entry.group, kind + (", RGB only" if entry.colour_only else ""), "yes" if entry.is_random else "no")
    for name, noise in NOISES.items():
        table.add_row(name, "additive noise", f"strength = {noise.unit}", "yes")
    return table


TABLES = {"variants": _variants, "models": _models, "datasets": _datasets, "attacks": _attacks,
          "corruptions": _corruptions}


@click.command("list")
@click.argument("what", type=click.Choice(sorted(TABLES)))
@pass_settings
def list_command(settings: Settings, what: str) -> None:
    """Show the registered variants, models, datasets, attacks or corruptions."""
    settings.console.print(TABLES[what]())
