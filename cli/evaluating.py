"""What every evaluating command shares: its options, planning, a progress bar over cells, the result table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.settings import Settings
from robustbench_bilateral.engine import Cell, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.evaluation import FILES, plan_evaluation, run_cells
from robustbench_bilateral.results import ResultRow
from robustbench_bilateral.sources import Sources
from robustbench_bilateral.spec import DEFAULT_BATCH_SIZE, DEFAULT_RUN, DEFAULT_SPLIT, EvaluationSpec, field_root, renamed_fields

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
    run: str
    fresh: bool
    model: str | None


def evaluation_options(default_n: int, default_batch: int = DEFAULT_BATCH_SIZE) -> Callable:
    """Decorator: CHECKPOINT... plus --dataset/--split/--n-examples/--batch-size/--run/--fresh/--model,
    gathered into one ``options: EvaluationOptions`` keyword argument."""
    names = ("checkpoints", "dataset", "split", "n_examples", "batch_size", "run", "fresh", "model")

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
                         help="First N examples (images) or words (text); 0 for the whole split."),
            click.option("--batch-size", type=int, default=default_batch, show_default=True, help="Examples per forward pass."),
            click.option("--run", default=DEFAULT_RUN, show_default=True, help="Results go to <out>/<run>/results.sqlite."),
            click.option("--fresh", is_flag=True, help="Clear the run's stored results first instead of resuming."),
            click.option("--model", default=None, help="Model of plain weights (.pt/.pth, timm:NAME); see `bilat-eval list models`."),
        )):
            gathered = option(gathered)
        return gathered

    return decorate


def options_spec(settings: Settings, options: EvaluationOptions, threats: Sequence[Threat]) -> EvaluationSpec:
    """The evaluation spec of a command's options, its threats and the global ``--seed``."""
    return EvaluationSpec(checkpoints=list(options.checkpoints), threats=list(threats), dataset=options.dataset,
                          split=options.split, n_examples=options.n_examples, batch_size=options.batch_size,
                          seed=settings.seed, run=options.run, fresh=options.fresh, model=options.model)


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


def plan(settings: Settings, options: EvaluationOptions, threats: Sequence[Threat]) -> list[Cell]:
    """Cells of every checkpoint x threat; every input is checked before any cell runs and a bad
    one is reported under its command-line name."""
    with renamed_fields(partial(option_name, threats=threats)):
        return plan_evaluation(options_spec(settings, options, threats)).cells


def run_with_progress(settings: Settings, options: EvaluationOptions, cells: Sequence[Cell]) -> list[ResultRow]:
    """Run ``cells`` into the run of ``options`` with a progress bar; stored cells are skipped unless --fresh."""
    return run_cells_with_progress(settings, cells, run=options.run, batch_size=options.batch_size,
                                   fresh=options.fresh, sources=Sources(options.model))


def run_cells_with_progress(settings: Settings, cells: Sequence[Cell], *, run: str, batch_size: int, fresh: bool,
                            sources: Sources = FILES) -> list[ResultRow]:
    """Run ``cells`` into ``<out>/<run>`` with a progress bar over distinct cells.

    Under ``torchrun`` the ranks share each cell's work; a rank other than 0 ends the command
    here, since storing, exporting, reporting and printing are rank 0's alone.
    """
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=settings.console, transient=True) as progress:
        bar = progress.add_task("cells", total=len({cell.key for cell in cells}))

        def advance(cell: Cell, computed: bool) -> None:
            progress.update(bar, advance=1, description=f"{'ran' if computed else 'stored'} {cell.threat.name}")

        rows = run_cells(cells, out=settings.out, run=run, device=settings.device, batch_size=batch_size,
                         fresh=fresh, progress=advance, sources=sources)
    if not is_main():
        click.get_current_context().exit(0)
    return rows
