"""``bilat-eval list variants|models|datasets|...``: what the harness offers, as rich tables built from its registries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click
from rich.console import Group
from rich.table import Table

from cli.settings import Settings, pass_settings

if TYPE_CHECKING:
    from robustbench_bilateral.preprocessing import Preprocessing


def registry_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], fold: Sequence[str] = ()) -> Table:
    """A table titled ``title`` with ``columns`` (the first, the entry's name, in bold) and one row per entry;
    cells of the ``fold`` columns break anywhere rather than being cut."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, style="bold" if index == 0 else None, no_wrap=index == 0,
                         overflow="fold" if column in fold else "ellipsis")
    for row in rows:
        table.add_row(*row)
    return table


def _variants() -> Table:
    from robustbench_bilateral.attention import describe_variants

    return registry_table("Attention variants", ("variant", "per-head attention"), describe_variants())


def _models() -> Group:
    from robustbench_bilateral.models import MODELS
    from robustbench_bilateral.preprocessing import Preprocessing
    from robustbench_bilateral.training.shapes import built_kwargs, model_kwargs_text, preset_shapes

    rows = []
    for name, entry in MODELS.items():
        kwargs = built_kwargs(name)
        rows.append((name, entry.summary, model_kwargs_text(kwargs), _preprocessing(Preprocessing.derived(kwargs))))
    models = registry_table("Models (--model NAME; the ViTs also as timm.create_model(NAME, variant=...)); any timm model name works too",
                            ("model", "architecture", "kwargs", "preprocessing"), rows, fold=("kwargs",))
    presets = registry_table(
        "What `train --preset P --task T` builds; its weights saved as a .pth load with "
        "`--model MODEL --model-kwargs KWARGS`",
        ("preset", "task", "model", "--model-kwargs", "preprocessing"),
        ((shape.preset, shape.dataset, shape.model, model_kwargs_text(shape.model_kwargs) or "(none)",
          _preprocessing(shape.preprocessing)) for shape in preset_shapes()), fold=("--model-kwargs",))
    return Group(models, presets)


def _preprocessing(preprocessing: Preprocessing | None) -> str:
    """``mean (..) std (..), 28 px, crop_pct 0.875, bilinear``, or ``-`` for models that take no images."""
    if preprocessing is None:
        return "-"
    return (f"mean {preprocessing.mean} std {preprocessing.std}, {preprocessing.input_size} px, "
            f"crop_pct {preprocessing.crop_pct}, {preprocessing.interpolation}")


def _datasets() -> Table:
    from robustbench_bilateral.data import SOURCES

    rows = ((entry.usage(name), entry.summary, entry.kind) for name, entry in SOURCES.items())
    return registry_table("Datasets", ("name", "contents", "kind"), rows)


def _attacks() -> Table:
    from robustbench_bilateral.threats import adversarial_threats

    attacks = adversarial_threats()
    table = Table(title="Attacks (bilat-eval attack --NAME, or name = NAME in a threats table of a batch spec)")
    table.add_column("attack", style="bold", no_wrap=True, min_width=max(len(attack.name) for attack in attacks))
    for column in ("norm", "parameter", "default"):
        table.add_column(column, no_wrap=True)
    table.add_column("meaning", overflow="fold")
    for attack in attacks:
        for index, param in enumerate(attack.parameters):
            steps = " (--steps)" if param.name == attack.iteration_param else ""
            table.add_row(attack.name if index == 0 else "", attack.norm if index == 0 else "", param.name + steps,
                          str(param.default), param.help)
    return table


def _corruptions() -> Table:
    from robustbench_bilateral.corruptions import CORRUPTIONS, NOISES

    rows = [
        (name, entry.group, ("held-out" if entry.held_out else "imagenet-c") + (", RGB only" if entry.colour_only else ""),
         "yes" if entry.is_random else "no")
        for name, entry in CORRUPTIONS.items()
    ]
    rows += [(name, "additive noise", f"strength = {noise.unit}", "yes") for name, noise in NOISES.items()]
    return registry_table("Corruptions (severities 1-5) and noises", ("name", "group", "set", "random"), rows)


TABLES = {"variants": _variants, "models": _models, "datasets": _datasets, "attacks": _attacks,
          "corruptions": _corruptions}


@click.command("list")
@click.argument("what", type=click.Choice(sorted(TABLES)))
@pass_settings
def list_command(settings: Settings, what: str) -> None:
    """Show the registered variants, models, datasets, attacks or corruptions."""
    settings.console.print(TABLES[what]())
