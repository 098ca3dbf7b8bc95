"""What every evaluating command shares: its options, planning (printing what loading said), a progress bar over cells."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cli.settings import Settings
from cli.tables import flag_warnings, print_paths, print_warnings
from robustbench_bilateral.engine import Cell, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.evaluation import EvaluationPlan, plan_evaluation, run_cells
from robustbench_bilateral.results import ResultRow, ResultStore
from robustbench_bilateral.results.export import export_paths
from robustbench_bilateral.results.store import FILENAME
from robustbench_bilateral.sources import LoadSettings
from robustbench_bilateral.spec import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_RUN,
    DEFAULT_SPLIT,
    LOAD_FIELDS,
    EvaluationSpec,
    field_root,
    renamed_fields,
)

T = TypeVar("T")


def comma_separated(text: str, parse: Callable[[str], T]) -> dict[T, str]:
    """The values of a comma-separated option, each token parsed by ``parse`` (which raises an
    ``InputError`` naming a bad one), mapped to the token as first written: repeats dropped, order kept."""
    parsed: dict[T, str] = {}
    for token in (part.strip() for part in text.split(",")):
        parsed.setdefault(parse(token), token)
    return parsed


@dataclass(frozen=True)
class EvaluationOptions:
    """The options of ``evaluation_options``, as the command received them."""

    checkpoints: tuple[str, ...]
    dataset: str | None
    split: str
    n_examples: int
    batch_size: int
    context: int | None
    stride: int
    run: str
    fresh: bool
    model: str | None
    variant: str | None
    model_kwargs: str | None
    mean: str | None
    std: str | None
    crop_pct: float | None
    interpolation: str | None

    def load_fields(self) -> dict[str, Any]:
        """The options that say how checkpoint files load, by spec field."""
        return {name: getattr(self, name) for name in LOAD_FIELDS}


def evaluation_options(default_n: int, default_batch: int = DEFAULT_BATCH_SIZE, why_n: str = "") -> Callable:
    """Decorator: CHECKPOINT... plus --dataset/--split/--n-examples/--batch-size/--context/--stride/--run/--fresh and the
    loading options --model/--variant/--model-kwargs/--mean/--std/--crop-pct/--interpolation, gathered
    into one ``options: EvaluationOptions`` keyword argument. ``why_n`` says in the help why a command's
    ``--n-examples`` default is not 0 (the whole split)."""
    names = ("checkpoints", "dataset", "split", "n_examples", "batch_size", "context", "stride", "run", "fresh", *LOAD_FIELDS)

    def decorate(command: Callable) -> Callable:
        def gathered(*args: Any, **kwargs: Any) -> Any:
            options = EvaluationOptions(**{name: kwargs.pop(name) for name in names})
            return command(*args, options=options, **kwargs)

        gathered.__doc__ = command.__doc__
        gathered.__name__ = command.__name__
        for option in reversed((
            click.argument("checkpoints", nargs=-1, required=True),
            click.option("--dataset", default=None, help="Evaluate on this source [default: the checkpoint's own]."),
            click.option("--split", default=DEFAULT_SPLIT, show_default=True, help="Split of the dataset."),
            click.option("--n-examples", type=int, default=default_n, show_default=True,
                         help="First N examples (images) or words (text); 0 for the whole split." + (f" {why_n}" if why_n else "")),
            click.option("--batch-size", type=int, default=default_batch, show_default=True, help="Examples per forward pass."),
            click.option("--context", type=int, default=None,
                         help="Language models: tokens of left context per prediction [default: the checkpoint's training "
                              "context]; image classifiers ignore it."),
            click.option("--stride", type=int, default=1, show_default=True,
                         help="Language models: windows advance S tokens; 1 scores every word from its full left context, "
                              "a larger S is a cheaper approximation; image classifiers ignore it."),
            click.option("--run", default=DEFAULT_RUN, show_default=True, help="Results go to <out>/<run>/results.sqlite."),
            click.option("--fresh", is_flag=True, help="Clear the run's stored results first instead of resuming."),
            click.option("--model", default=None, help="Model of plain weights (.pt/.pth/.safetensors, timm:NAME): "
                                                        "one of `bilat-eval list models` or any timm name (vit_tiny_patch16_224)."),
            click.option("--variant", default=None,
                         help="Attention that plain weights are built with (`bilat-eval list variants`) [default: softmax]."),
            click.option("--model-kwargs", default=None, metavar="KEY=VALUE,...",
                         help="Arguments of the model, e.g. patch_size=7,depth=4,num_classes=10."),
            click.option("--mean", default=None, metavar="M[,M...]", help="Per-channel mean replacing the checkpoint's."),
            click.option("--std", default=None, metavar="S[,S...]", help="Per-channel std replacing the checkpoint's."),
            click.option("--crop-pct", type=float, default=None,
                         help="Fraction of the resized picture the centre crop keeps [default: the checkpoint's]."),
            click.option("--interpolation", default=None, metavar="bilinear|bicubic|nearest",
                         help="How pictures are resized [default: the checkpoint's]."),
        )):
            gathered = option(gathered)
        return gathered

    return decorate


def options_spec(settings: Settings, options: EvaluationOptions, threats: Sequence[Threat]) -> EvaluationSpec:
    """The evaluation spec of a command's options, its threats and the global ``--seed``."""
    return EvaluationSpec(checkpoints=list(options.checkpoints), threats=list(threats), dataset=options.dataset,
                          split=options.split, n_examples=options.n_examples, batch_size=options.batch_size,
                          context=options.context, stride=options.stride, seed=settings.seed, run=options.run, fresh=options.fresh, **options.load_fields())


def option_name(field: str, threats: Sequence[Threat]) -> str:
    """The command line's name of a spec field: ``batch_size`` -> ``--batch-size``, ``checkpoints[0]``
    -> ``CHECKPOINT 1``, ``threats[2]`` -> ``threat fgsm`` (the command builds ``threats`` from its own options)."""
    root, rest = field_root(field)
    index = int(rest[1:rest.index("]")]) if rest.startswith("[") else None
    if index is not None and root == "checkpoints":
        return f"CHECKPOINT {index + 1}"
    if index is not None and root == "threats":
        return f"threat {threats[index].name}"
    return "--" + root.replace("_", "-")


def plan(settings: Settings, options: EvaluationOptions, threats: Sequence[Threat]) -> EvaluationPlan:
    """The plan of every checkpoint x threat; every input is checked before any cell runs and a bad
    one is reported under its command-line name. What loading said of each checkpoint is printed."""
    with renamed_fields(partial(option_name, threats=threats)):
        evaluation = plan_evaluation(options_spec(settings, options, threats))
    print_notes(settings, evaluation)
    return evaluation


def print_notes(settings: Settings, evaluation: EvaluationPlan) -> None:
    """One line per note of the loader (what loading a checkpoint added, initialised or dropped)."""
    for note in evaluation.notes:
        settings.console.print(note, markup=False, highlight=False, soft_wrap=True)


def load_settings(options: EvaluationOptions) -> LoadSettings:
    """The checked loading options, a bad one reported under its flag (``--model-kwargs``)."""
    with renamed_fields(partial(option_name, threats=())):
        return EvaluationSpec(checkpoints=None, threats=None, **options.load_fields()).load_settings()


def run_with_progress(settings: Settings, evaluation: EvaluationPlan, warn: bool = True) -> list[ResultRow]:
    """Run a plan's cells into its run with a progress bar (examples or cells, see ``cell_weights``,
    with an ETA) that moves after every batch; stored cells are skipped unless --fresh. The sanity
    checks then run over every stored row of the run (``run_cells``). When the command ends (after
    its own table), ``warn`` prints a warning per sanity flag on the plan's cells and on the other
    cells of the run that gained a flag now (``flag_warnings``), then the run's export files (not
    under ``--quiet``).

    Under ``torchrun`` the ranks share each cell's work; a rank other than 0 ends the command
    here, since storing, exporting, reporting and printing are rank 0's alone.
    """
    cells = evaluation.cells
    run_dir = settings.out / evaluation.run
    before = stored_flags(run_dir) if is_main() and not evaluation.fresh else {}
    weights, unit = cell_weights(cells)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=settings.console, transient=True) as progress:
        bar = progress.add_task("cells", total=sum(weights.values()))
        done: dict[str, int] = {}

        def step(cell: Cell, count: int, total: int) -> None:
            """Advance by the batch's share of the cell's weight, in whole units that add up to the weight."""
            weight, before = weights[cell.key], done.get(cell.key, 0)
            done[cell.key] = before + count
            progress.update(bar, advance=weight * done[cell.key] // total - weight * before // total,
                            description=f"running {cell.threat.name}")

        def advance(cell: Cell, computed: bool) -> None:
            progress.update(bar, advance=0 if computed else weights[cell.key],
                            description=f"{'ran' if computed else 'stored'} {cell.threat.name}")

        rows = run_cells(cells, out=settings.out, run=evaluation.run, device=settings.device,
                         batch_size=evaluation.batch_size, fresh=evaluation.fresh, progress=advance,
                         sources=evaluation.sources, steps=step, compile_models=settings.compile_models)
    if not is_main():
        click.get_current_context().exit(0)
    exports = export_paths(run_dir)
    context = click.get_current_context()
    context.call_on_close(lambda: print_paths(settings.console, exports))
    if warn:
        own = {cell.key for cell in cells}
        flagged = [row for row in stored_rows(run_dir)
                   if row.flags and (row.cell_key in own or row.flags != before.get(row.cell_key))]
        context.call_on_close(lambda: print_warnings(settings.console, flag_warnings(flagged)))
    return rows


def stored_rows(run_dir: Path) -> list[ResultRow]:
    """Every row stored in ``run_dir`` (none when it holds no store; none is created)."""
    path = run_dir / FILENAME
    if not path.is_file():
        return []
    with ResultStore(path) as store:
        return store.rows()


def stored_flags(run_dir: Path) -> dict[str, tuple[str, ...]]:
    """The flags of every cell stored in ``run_dir`` by cell key (every row of a cell carries the same)."""
    return {row.cell_key: row.flags for row in stored_rows(run_dir)}


def cell_weights(cells: Sequence[Cell]) -> tuple[dict[str, int], str]:
    """What each distinct cell adds to the progress bar, and the bar's unit: its examples (words for
    text) when every cell sets ``n_examples``, else 1 per cell (a whole split's size is known only
    once it is loaded)."""
    distinct = {cell.key: cell for cell in cells}
    if distinct and all(cell.n_examples > 0 for cell in distinct.values()):
        return {key: cell.n_examples for key, cell in distinct.items()}, "examples"
    return dict.fromkeys(distinct, 1), "cells"
