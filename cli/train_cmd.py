"""``bilat-eval train``: make a checkpoint of one variant, with a live progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.settings import Settings, pass_settings
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.models import parse_model_kwargs
from robustbench_bilateral.spec import preprocessing_overrides
from robustbench_bilateral.training import PRESETS, TrainOptions, TrainResult, train
from robustbench_bilateral.training.folders import run_folder

# train()'s arguments and settings fields as this command's flags, to name a bad value in the user's words.
FLAGS = {"dataset": "--task", "embed_dim": "--dim", "num_heads": "--heads", "patch_size": "--patch",
         "nu_init": "--nu", "attention": "--pos-kernel/--boost-steps/--nu/--layers",
         "preprocessing": "--mean/--std/--crop-pct/--interpolation"}
# Flags that set one model keyword argument each.
SIZE_FLAGS = {"depth": "depth", "dim": "embed_dim", "heads": "num_heads", "patch": "patch_size", "pos_dim": "pos_dim"}


def flag(field: str) -> str:
    """The flag of a ``train()`` argument or settings field: ``FLAGS``, else ``--`` and the field with dashes."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def train_options(init: str | None, model: str | None, model_kwargs: str | None, layers: str | None,
                  pos_kernel: str | None, boost_steps: int | None, nu: float | None, mean: str | None,
                  std: str | None, crop_pct: float | None, interpolation: str | None, **sizes: int | None) -> dict[str, Any]:
    """The settings flags as ``train()``'s keyword arguments ``init``, ``model``, ``model_kwargs``,
    ``attention`` and ``preprocessing``; ``sizes`` are the ``SIZE_FLAGS``."""
    kwargs = parse_model_kwargs(model_kwargs) if model_kwargs else {}
    for name, value in sizes.items():
        key = SIZE_FLAGS[name]
        if value is None:
            continue
        if key in kwargs:
            raise FieldError(key, f"is also in --model-kwargs ({key}={kwargs[key]!r}): give it once")
        kwargs[key] = value
    attention = {"pos_kernel": pos_kernel, "boost_steps": boost_steps, "nu_init": nu,
                 "layers": None if layers is None else _block_indices(layers)}
    return {"init": init, "model": model, "model_kwargs": kwargs, "attention": attention,
            "preprocessing": preprocessing_overrides(mean, std, crop_pct, interpolation)}


def _block_indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in text.split(","))
    except ValueError:
        raise FieldError("layers", f"must be block indices separated by commas (e.g. 0,2), got {text!r}") from None


@click.command("train")
@click.option("--task", required=True, help="fmnist, shakespeare, or an image source such as imagefolder:PATH.")
@click.option("--variant", required=True, help="Attention variant, any of `bilat-eval list variants`.")
@click.option("--preset", default="quick", show_default=True,
              help="; ".join(f"{name}: {entry.summary}" for name, entry in PRESETS.items()) + ".")
@click.option("--epochs", type=int, default=None, help="Override the preset's number of epochs.")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of this run [default: <out>/checkpoints/<task>/<preset>/<variant>-seed<seed>].")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming or reusing the run folder.")
@click.option("--threads", type=int, default=None,
              help="CPU threads torch uses while training [default: one per core]; the checkpoint's bytes depend on it "
                   "and it is recorded, so fix it to reproduce a run on another machine.")
@click.option("--init", default=None, metavar="CKPT|timm:NAME|FILE.pth",
              help="Fine-tune from these weights: a checkpoint, timm's pretrained weights from the local cache, "
                   "or a state dict of --model.")
@click.option("--model", default=None, help="Model to train (or of the --init state dict) instead of the preset's: "
                                            "one of `bilat-eval list models` or any timm model name.")
@click.option("--model-kwargs", default=None, metavar="KEY=VALUE,...",
              help="Model arguments over the preset's, e.g. patch_size=7,mlp_ratio=2.0.")
@click.option("--depth", type=int, default=None, help="Number of blocks.")
@click.option("--dim", type=int, default=None, help="Token width (embed_dim).")
@click.option("--heads", type=int, default=None, help="Attention heads per block.")
@click.option("--patch", type=int, default=None, help="Patch size in px (ViT only).")
@click.option("--pos-dim", type=int, default=None, help="Width of the position vectors of kernels that take them in every layer.")
@click.option("--pos-kernel", default=None, metavar="sinusoidal|coords|learned", help="Position distance.")
@click.option("--boost-steps", type=int, default=None, help="Boosting steps K (variants with +boost).")
@click.option("--nu", type=float, default=None, help="Initial boosting step nu of every head.")
@click.option("--layers", default=None, metavar="I[,I...]", help="Blocks that use the variant; the others use softmax.")
@click.option("--mean", default=None, metavar="M[,M...]", help="Per-channel mean replacing the data's.")
@click.option("--std", default=None, metavar="S[,S...]", help="Per-channel std replacing the data's.")
@click.option("--crop-pct", type=float, default=None, help="Fraction of the resized picture the centre crop keeps.")
@click.option("--interpolation", default=None, metavar="bilinear|bicubic|nearest", help="How pictures are resized.")
@pass_settings
def train_command(settings: Settings, task: str, variant: str, preset: str, epochs: int | None,
                  run_dir: Path | None, fresh: bool, threads: int | None, **changes: Any) -> None:
    """Train a checkpoint of VARIANT on TASK; resumes from the last finished epoch."""
    try:
        options = train_options(**changes)
        run_dir = run_dir or run_folder(settings.out, task, variant, settings.seed, preset, epochs, TrainOptions(**options))
        result = train_with_progress(settings, task, variant, preset, epochs, run_dir, fresh,
                                     {**options, "threads": threads}, settings.seed)
    except FieldError as error:
        raise error.renamed(flag(error.field)) from None
    print_outcome(settings, result)


def print_outcome(settings: Settings, result: TrainResult) -> None:
    """``trained|reused|resumed after epoch E: <checkpoint> (<metrics>)``."""
    how = "reused" if result.reused else (f"resumed after epoch {result.resumed_after_epoch}" if result.resumed_after_epoch else "trained")
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.metrics.items())
    settings.console.print(f"{how}: {result.checkpoint} ({shown})", markup=False, highlight=False, soft_wrap=True)


def train_with_progress(settings: Settings, task: str, variant: str, preset: str, epochs: int | None, run_dir: Path,
                        fresh: bool, options: dict[str, Any], seed: int) -> TrainResult:
    """``train(...)`` with a live progress bar, a line per note on loading the init and per finished epoch."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeRemainingColumn())
    with Progress(*columns, console=settings.console, transient=True) as progress:
        bar = progress.add_task("training", total=None, status="starting")

        def on_event(event: dict) -> None:
            if event["event"] == "note":
                progress.console.print(event["text"], markup=False, highlight=False)
            elif event["event"] == "start":
                progress.update(bar, total=event["epochs"] * event["steps_per_epoch"],
                                completed=event["start_epoch"] * event["steps_per_epoch"])
            elif event["event"] == "step":
                progress.update(bar, completed=event["step"], description=f"epoch {event['epoch']}",
                                status=f"loss {event['loss']:.3f}  {event['items_per_s']:,.0f}/s")
            else:
                shown = ", ".join(f"{name} {value:.4g}" for name, value in event["metrics"].items())
                progress.console.print(f"epoch {event['epoch']}: {shown}")

        return train(task, variant, preset, run_dir, epochs=epochs, seed=seed,
                     device=settings.device, fresh=fresh, on_event=on_event, **options)
