"""``bilat-eval contaminate``: accuracy under common corruptions and additive noise, with mCE.

Corruptions are rendered on the fly from the clean split, or, when ``--dataset`` is a
pre-rendered set (``npy:DIR`` as CIFAR-10-C, ``imagefolder:DIR`` as ImageNet-C,
``data.user.prerendered_set``), read from it at each chosen severity, the clean row and every
other threat on ``--clean-data`` (default: each checkpoint's own dataset). The mCE reference and
its name follow ``results.mce``.
"""

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
    options_spec,
    print_notes,
    run_with_progress,
)
from cli.settings import Settings, pass_settings
from cli.tables import corruption_summary_table
from robustbench_bilateral.corruptions import CORRUPTIONS, SEVERITIES, resolve_corruptions
from robustbench_bilateral.corruptions.preview import save_preview_png
from robustbench_bilateral.data.user import PrerenderedSet, prerendered_set
from robustbench_bilateral.engine import Clean, Threat
from robustbench_bilateral.engine.distributed import is_main
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.evaluation import EvaluationPlan, plan_evaluation
from robustbench_bilateral.results.mce import (
    ALEXNET_MIN_SIZE,
    ErrorProfile,
    alexnet_profile,
    check_alexnet,
    error_profile,
    measure_name,
    summarize,
)
from robustbench_bilateral.sources import CheckpointInfo, describe_checkpoint, load_split
from robustbench_bilateral.spec import field_root, renamed_fields
from robustbench_bilateral.threats import build_threat

ALEXNET = "alexnet"
"""``--baseline alexnet``: AlexNet's ImageNet-C errors as the reference (``results.mce``)."""


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


def select_rendered(spec: str, rendered: PrerenderedSet) -> list[str]:
    """The corruptions of ``spec`` (as ``--corruptions`` reads it) that the pre-rendered set holds, in
    registry order; a corruption named alone that it lacks, or none left, is an ``InputError``."""
    try:
        wanted = resolve_corruptions(spec)
    except ValueError as error:
        raise InputError(f"--corruptions: {error}") from error
    lacking = [token.strip() for token in spec.split(",") if token.strip() in CORRUPTIONS and token.strip() not in rendered.corruptions]
    chosen = [name for name in wanted if name in rendered.corruptions]
    if lacking or not chosen:
        raise InputError(f"--corruptions {spec}: {rendered.name} has no {', '.join(lacking) or 'such corruption'}: "
                         f"choose among {', '.join(rendered.corruptions)}")
    return chosen


def imagenet_c_rows(infos: Sequence[CheckpointInfo], rendered: PrerenderedSet | None, approximate: bool) -> bool:
    """Whether the corruption rows stand for ImageNet-C: read from an ImageNet-C folder, or rendered on
    the fly at 224 px or more with ``--imagenet-c-approx`` (refused for a pre-rendered set or smaller inputs)."""
    if approximate and rendered is not None:
        raise InputError(f"--imagenet-c-approx is for corruptions rendered on the fly: {rendered.name} is read as "
                         "it is, drop the flag")
    size = min(_image_size(info) for info in infos)
    if approximate and size < ALEXNET_MIN_SIZE:
        raise InputError(f"--imagenet-c-approx needs {ALEXNET_MIN_SIZE} px inputs (ImageNet-C's) but a checkpoint "
                         f"takes {size} px: compare with --baseline CHECKPOINT instead")
    return rendered.imagenet_c if rendered is not None else approximate


def choose_baseline(infos: Sequence[CheckpointInfo], baseline: str | None, imagenet_c: bool = False,
                    severities: Sequence[int] = SEVERITIES) -> CheckpointInfo | None:
    """The baseline checkpoint (None: AlexNet): ``--baseline CHECKPOINT``; AlexNet for ``--baseline
    alexnet`` or ImageNet-C rows, refused unless ``results.mce.check_alexnet`` passes; else the first
    softmax checkpoint."""
    if baseline is not None and baseline != ALEXNET:
        return next(info for info in infos if info.path == baseline)
    if baseline == ALEXNET or imagenet_c:
        check_alexnet(imagenet_c, severities)
        return None
    softmax = [info for info in infos if info.meta["variant"] == "softmax"]
    if not softmax:
        raise InputError("no softmax checkpoint among those given to compare with: pass --baseline CHECKPOINT")
    return softmax[0]


def check_block(rendered: PrerenderedSet, corruption: str, n_examples: int) -> None:
    """An ``InputError`` when ``--n-examples`` asks for more examples than a severity block holds."""
    size = rendered.block_size(corruption, 1)
    if n_examples > size:
        raise InputError(f"--n-examples {n_examples}: {rendered.name} holds {size} images per severity: pass at most {size}")


def plan_contamination(settings: Settings, options: EvaluationOptions, threats: Sequence[Threat],
                       clean_data: str | None) -> EvaluationPlan:
    """``cli.evaluating.plan`` with ``clean_data`` as the spec's ``clean_dataset`` (a pre-rendered ``--dataset``'s
    clean set), whose errors are named ``--clean-data``."""
    spec = replace(options_spec(settings, options, threats), clean_dataset=clean_data)

    def rename(field: str) -> str:
        clean = clean_data is not None and field_root(field)[0] in ("dataset", "clean_dataset")
        return "--clean-data" if clean else option_name(field, threats)

    with renamed_fields(rename):
        evaluation = plan_evaluation(spec)
    print_notes(settings, evaluation)
    return evaluation


def write_preview(path: Path, info: CheckpointInfo, options: EvaluationOptions, names: list[str], seed: int) -> None:
    """A grid PNG of the split's first image under every corruption in ``names`` at severities 1-5."""
    if not names:
        raise InputError("--preview needs at least one corruption: pass --corruptions")
    images, _ = load_split(options.dataset or info.meta["dataset"], options.split, 1, info.meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_preview_png(path, images[0], names, seed)


@click.command("contaminate")
@click.option("--corruptions", "corruption_spec", default="all", show_default=True,
              help="Sets (all, imagenet-c, held-out), groups (noise, blur, weather, digital) or names, comma-separated; "
                   "of a pre-rendered --dataset, those it holds.")
@click.option("--severities", "severity_spec", default="1,2,3,4,5", show_default=True, help="Severities 1-5, comma-separated.")
@click.option("--noise", "noise_specs", multiple=True, metavar="KIND:S[,S...]",
              help="Additive noise (gaussian, uniform, salt_pepper) at these strengths; repeatable.")
@click.option("--clean-data", default=None, metavar="SOURCE",
              help="With a pre-rendered --dataset (npy:DIR as CIFAR-10-C, imagefolder:DIR as ImageNet-C): the clean set it "
                   "was rendered from, for the clean row and noise [default: the checkpoint's own].")
@click.option("--baseline", default=None, metavar="CHECKPOINT|alexnet",
              help="Reference the mCE divides by [default: AlexNet for ImageNet-C rows, else the softmax checkpoint given].")
@click.option("--imagenet-c-approx", "approximate", is_flag=True,
              help="Treat corruptions rendered on the fly at 224 px as ImageNet-C (an approximation) for the AlexNet reference.")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG grid of the first image under every corruption and severity.")
@evaluation_options(default_n=1000, why_n="Default 1000: every corruption x severity is a full pass.")
@pass_settings
def contaminate_command(settings: Settings, options: EvaluationOptions, corruption_spec: str, severity_spec: str,
                        noise_specs: tuple[str, ...], clean_data: str | None, baseline: str | None, approximate: bool,
                        preview: Path | None) -> None:
    """Accuracy of each CHECKPOINT under common corruptions (and noise), with mCE against a baseline.

    The table is computed from the rows the run's store holds for the planned cells (read back after running).
    """
    severities = list(comma_separated(severity_spec, severity_value))
    noises = [threat for spec in noise_specs for threat in parse_noise(spec)]
    paths = list(dict.fromkeys([*options.checkpoints, *([baseline] if baseline not in (None, ALEXNET) else [])]))
    with renamed_fields(lambda field: option_name(field, ())):
        infos = [describe_checkpoint(path, load_settings(options)) for path in paths]
    rendered = prerendered_set(options.dataset) if options.dataset else None
    if rendered is None and clean_data is not None:
        raise InputError("--clean-data goes with a pre-rendered --dataset (npy:DIR as CIFAR-10-C, imagefolder:DIR as "
                         "ImageNet-C): pass the clean set as --dataset")
    if rendered is not None and preview is not None:
        raise InputError(f"--preview shows corruptions rendered on the fly but {rendered.name} is pre-rendered: drop --preview")
    names = select_rendered(corruption_spec, rendered) if rendered else select_corruptions(corruption_spec, infos)
    reference_info = choose_baseline(infos, baseline, imagenet_c_rows(infos, rendered, approximate), severities)
    reading = {} if rendered is None else {"rendered": rendered.name}
    if rendered is not None:
        check_block(rendered, names[0], options.n_examples)
    corruptions = [build_threat("corruption", corruption=name, severity=severity, **reading)
                   for name in names for severity in severities]
    evaluation = plan_contamination(settings, replace(options, checkpoints=tuple(paths)), [Clean(), *corruptions, *noises],
                                    clean_data)
    if preview is not None and is_main():
        write_preview(preview, infos[0], options, names, settings.seed)
        settings.console.print(f"preview: {preview}")
    rows = run_with_progress(settings, evaluation)
    reference: ErrorProfile = (alexnet_profile(approximate) if reference_info is None
                               else error_profile(rows, reference_info.sha256))
    measure = measure_name(severities)
    source = f"{rendered.name} (pre-rendered)" if rendered is not None else "rendered on the fly"
    title = f"accuracy under corruption ({options.run}, {source}); {measure} reference {reference.name}"
    settings.console.print(corruption_summary_table(summarize(rows, reference), reference.name, title, measure))
