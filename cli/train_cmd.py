"""``bilat-eval train``: make a checkpoint of one variant, with a live progress bar."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.settings import Settings, pass_settings
from robustbench_bilateral.attention import parse_variant
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.training import PRESETS, TrainResult, train

# train()'s arguments as this command's flags, to name a bad value in the user's words.
FLAGS = {"dataset": "--task", "variant": "--variant", "preset": "--preset", "epochs": "--epochs"}


def default_run_dir(settings: Settings, task: str, variant: str) -> Path:
    """``<out>/checkpoints/<task>/<variant>-seed<seed>``, with ``+`` and ``:``/``/`` made path-safe."""
    safe_task = task.replace(":", "_").replace("/", "_")
    return settings.out / "checkpoints" / safe_task / f"{parse_variant(variant).name.replace('+', '-')}-seed{settings.seed}"


@click.command("train")
@click.option("--task", required=True, help="fmnist, shakespeare, or an image source such as imagefolder:PATH.")
@click.option("--variant", required=True, help="Attention variant, any of `bilat-eval list variants`.")
@click.option("--preset", default="quick", show_default=True,
              help="; ".join(f"{name}: {entry.summary}" for name, entry in PRESETS.items()) + ".")
@click.option("--epochs", type=int, default=None, help="Override the preset's number of epochs.")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of this run [default: <out>/checkpoints/<task>/<variant>-seed<seed>].")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming or reusing the run folder.")
@pass_settings
def train_command(settings: Settings, task: str, variant: str, preset: str, epochs: int | None,
                  run_dir: Path | None, fresh: bool) -> None:
    """Train a checkpoint of VARIANT on TASK; resumes from the last finished epoch."""
    try:
        run_dir = run_dir or default_run_dir(settings, task, variant)
        result = _train_with_progress(settings, task, variant, preset, epochs, run_dir, fresh)
    except FieldError as error:
        raise error.renamed(FLAGS.get(error.field, error.field)) from None
    how = "reused" if result.reused else (f"resumed after epoch {result.resumed_after_epoch}" if result.resumed_after_epoch else "trained")
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.metrics.items())
    settings.console.print(f"{how}: {result.checkpoint} ({shown})")


def _train_with_progress(settings: Settings, task: str, variant: str, preset: str, epochs: int | None, run_dir: Path,
                         fresh: bool) -> TrainResult:
    """``train(...)`` with a live progress bar and a line per finished epoch."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}  {task.fields[rate]:,.0f}/s"), TimeRemainingColumn())
    with Progress(*columns, console=settings.console, transient=True) as progress:
        bar = progress.add_task("training", total=None, loss=float("nan"), rate=0.0)

        def on_event(event: dict) -> None:
            if event["event"] == "start":
                progress.update(bar, total=event["epochs"] * event["steps_per_epoch"],
                                completed=event["start_epoch"] * event["steps_per_epoch"])
            elif event["event"] == "step":
                progress.update(bar, completed=event["step"], loss=event["loss"], rate=event["items_per_s"],
                                description=f"epoch {event['epoch']}")
            else:
                shown = ", ".join(f"{name} {value:.4g}" for name, value in event["metrics"].items())
                progress.console.print(f"epoch {event['epoch']}: {shown}")

        return train(task, variant, preset, run_dir, epochs=epochs, seed=settings.seed,
                     device=settings.device, fresh=fresh, on_event=on_event)
