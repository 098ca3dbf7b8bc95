"""``bilat-eval contaminate``: accuracy under common corruptions and additive noise, with mCE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from cli.evaluating import (
    EvaluationOptions,
    comma_separated,
    evaluation_options,
    load_settings,
    option_name,
    plan,
    run_with_progress,
)
from cli.settings import Settings, pass_settings
from cli.tables import corruption_summary_table
from robustbench_bilateral.corruptions import SEVERITIES, resolve_corruptions
from robustbench_bilateral.corruptions.preview import save_preview_png
from robustbench_bilateral.engine import Clean, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results.mce import (
    ALEXNET_MIN_SIZE,
    ErrorProfile,
    alexnet_profile,
    error_profile,
    summarize,
)
from robustbench_bilateral.sources import CheckpointInfo, describe_checkpoint, load_split
from robustbench_bilateral.spec import renamed_fields
from robustbench_bilateral.threats import build_threat


def severity_value(token: str) -> int:
    """One ``--severities`` token as a severity, one of 1..5."""
    try:
        severity = int(token)
    except ValueError:
        severity = None
    if severity not in SEVERITIES:
        raise InputError(f"--severities has {token!r}: give comma-separated severities from {','.join(map(str, SEVERITIES))}")
    return severity


def parse_noise(spec: str) -> list[Threat]:
    """``"gaussian:0.05,0.1"`` -> one ``noise`` threat per strength."""
    kind, _, strengths = spec.partition(":")
    try:
        values = [float(token) for token in strengths.split(",")] if strengths else []
    except ValueError:
        values = []
    if not values:
        raise InputError(f"--noise {spec!r} is not KIND:STRENGTH[,STRENGTH...]: write e.g. gaussian:0.05,0.1")
    with renamed_fields(lambda field: f"--noise {kind.strip()} {field}"):
        return [build_threat("noise", kind=kind.strip(), strength=value) for value in values]


def _channels(info: CheckpointInfo) -> int:
    return int(info.meta["model"]["kwargs"].get("in_chans", 3))


def _image_size(info: CheckpointInfo) -> int:
    return int(info.meta["model"]["kwargs"].get("img_size", 0))


def select_corruptions(spec: str, infos: Sequence[CheckpointInfo]) -> list[str]:
    """``resolve_corruptions(spec)``, leaving colour-only corruptions out if any checkpoint takes grey images."""
    try:
        return resolve_corruptions(spec, min(_channels(info) for info in infos))
    except ValueError as error:
        raise InputError(f"--corruptions: {error}") from error


def choose_baseline(infos: Sequence[CheckpointInfo], baseline: str | None) -> CheckpointInfo | None:
    """The baseline checkpoint: ``--baseline``, else None (AlexNet) for inputs >= 224 px, else the first softmax one."""
    if baseline is not None:
        return next(info for info in infos if info.path == baseline)
    if min(_image_size(info) for info in infos) >= ALEXNET_MIN_SIZE:
        return None
    softmax = [info for info in infos if info.meta["variant"] == "softmax"]
    if not softmax:
        raise InputError("no softmax checkpoint among those given to compare with: pass --baseline CHECKPOINT")
    return softmax[0]


def write_preview(path: Path, info: CheckpointInfo, options: EvaluationOptions, names: list[str], seed: int) -> None:
    """A grid PNG of the split's first image under every corruption in ``names`` at severities 1-5."""
    if not names:
        raise InputError("--preview needs at least one corruption: pass --corruptions")
    images, _ = load_split(options.dataset or info.meta["dataset"], options.split, 1, info.meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_preview_png(path, images[0], names, seed)


@click.command("contaminate")
@click.option("--corruptions", "corruption_spec", default="all", show_default=True,
              help="Sets (all, imagenet-c, held-out), groups (noise, blur, weather, digital) or names, comma-separated.")
@click.option("--severities", "severity_spec", default="1,2,3,4,5", show_default=True, help="Severities 1-5, comma-separated.")
@click.option("--noise", "noise_specs", multiple=True, metavar="KIND:S[,S...]",
              help="Additive noise (gaussian, uniform, salt_pepper) at these strengths; repeatable.")
@click.option("--baseline", default=None, metavar="CHECKPOINT",
              help="Checkpoint the mCE divides by [default: the softmax one given; AlexNet for >= 224 px inputs].")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG grid of the first image under every corruption and severity.")
@evaluation_options(default_n=1000, why_n="Default 1000: every corruption x severity is a full pass.")
@pass_settings
def contaminate_command(settings: Settings, options: EvaluationOptions, corruption_spec: str, severity_spec: str,
                        noise_specs: tuple[str, ...], baseline: str | None, preview: Path | None) -> None:
    """Accuracy of each CHECKPOINT under common corruptions (and noise), with mCE against a baseline.

    The table is computed from the rows the run's store holds for the planned cells (read back after running).
    """
    severities = list(comma_separated(severity_spec, severity_value))
    noises = [threat for spec in noise_specs for threat in parse_noise(spec)]
    paths = list(dict.fromkeys([*options.checkpoints, *([baseline] if baseline else [])]))
    with renamed_fields(lambda field: option_name(field, ())):
        infos = [describe_checkpoint(path, load_settings(options)) for path in paths]
    names = select_corruptions(corruption_spec, infos)
    corruptions = [build_threat("corruption", corruption=name, severity=severity) for name in names for severity in severities]
    evaluation = plan(settings, replace(options, checkpoints=tuple(paths)), [Clean(), *corruptions, *noises])
    reference_info = choose_baseline(infos, baseline)
    if preview is not None and is_main():
        write_preview(preview, infos[0], options, names, settings.seed)
        settings.console.print(f"preview: {preview}")
    rows = run_with_progress(settings, evaluation)
    reference: ErrorProfile = (alexnet_profile(severities) if reference_info is None
                               else error_profile(rows, reference_info.sha256))
    title = f"accuracy under corruption ({options.run}); mCE reference {reference.name}"
    settings.console.print(corruption_summary_table(summarize(rows, reference), reference.name, title))
