"""What every evaluating command shares: its options, planning (printing what loading said), a progress bar over cells."""

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
from robustbench_bilateral.evaluation import EvaluationPlan, plan_evaluation, run_cells
from robustbench_bilateral.results import ResultRow
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


def evaluation_options(default_n: int, default_batch: int = DEFAULT_BATCH_SIZE) -> Callable:
    """Decorator: CHECKPOINT... plus --dataset/--split/--n-examples/--batch-size/--run/--fresh and the
    loading options --model/--variant/--model-kwargs/--mean/--std/--crop-pct/--interpolation, gathered
    into one ``options: EvaluationOptions`` keyword argument."""
    names = ("checkpoints", "dataset", "split", "n_examples", "batch_size", "run", "fresh", *LOAD_FIELDS)

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
                          seed=settings.seed, run=options.run, fresh=options.fresh, **options.load_fields())


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


def run_with_progress(settings: Settings, evaluation: EvaluationPlan) -> list[ResultRow]:
    """Run a plan's cells into its run with a progress bar over distinct cells; stored cells are
    skipped unless --fresh.

    Under ``torchrun`` the ranks share each cell's work; a rank other than 0 ends the command
    here, since storing, exporting, reporting and printing are rank 0's alone.
    """
    cells = evaluation.cells
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=settings.console, transient=True) as progress:
        bar = progress.add_task("cells", total=len({cell.key for cell in cells}))

        def advance(cell: Cell, computed: bool) -> None:
            progress.update(bar, advance=1, description=f"{'ran' if computed else 'stored'} {cell.threat.name}")

        rows = run_cells(cells, out=settings.out, run=evaluation.run, device=settings.device,
                         batch_size=evaluation.batch_size, fresh=evaluation.fresh, progress=advance,
                         sources=evaluation.sources)
    if not is_main():
        click.get_current_context().exit(0)
    return rows
