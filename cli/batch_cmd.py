"""``bilat-eval batch SPEC``: train a study's checkpoints (its ``[train]`` table), run a grid of
checkpoints x threats from a TOML spec, then report it."""

from __future__ import annotations

from pathlib import Path

import click

from cli.evaluating import print_notes, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import print_report
from cli.train_cmd import print_outcome, train_with_progress
from robustbench_bilateral.batch import discard_threat_cells, open_empty_shard, plan_batch, read_table, study_units
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.report import DEFAULT_BASELINE, build_report, write_report
from robustbench_bilateral.study import Shard, TrainingUnit, require_baseline, require_one_process


@click.command("batch")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Clear the run's stored results first instead of resuming.")
@click.option("--recompute", default="", metavar="THREAT[,THREAT]",
              help="Delete the stored cells of these threats (e.g. corruption) and compute them again; keep the others.")
@click.option("--baseline", default=DEFAULT_BASELINE, show_default=True, help="Variant the report compares the others with.")
@click.option("--shard", default="1/1", metavar="I/N", show_default=True,
              help="Run only shard I of N into the run <run>-shard<I>of<N> (cells by key; a study's checkpoints by "
                   "their training settings, each with all its cells); `bilat-eval report` merges the shards' runs.")
@pass_settings
def batch_command(settings: Settings, spec: Path, fresh: bool, recompute: str, baseline: str, shard: str) -> None:
    """Check SPEC, train its study's checkpoints, run its cells not yet stored, write the report and print its grids.

    Under the grids: the verdicts over training seeds, and a warning per sanity flag of the run's rows.

    SPEC is a TOML file: checkpoints (paths or globs), [[threats]] tables whose list values
    expand into a grid, and optional run (default: the file's stem), n_examples, batch_size,
    seed, dataset, split, and how plain weights load (model, model_kwargs, variant, mean, std,
    crop_pct, interpolation). An optional [train] table makes it a study: tasks x variants x
    settings x seeds trained first (finished checkpoints reused) and evaluated. A bad key is named
    by its path, e.g. threats[1].eps or train.seeds[0].
    """
    part = Shard.parse(shard)
    units = study_units(spec, seed=settings.seed, shard=part)
    own = read_table(spec).get("checkpoints")
    if part.count == 1 and not own:
        require_baseline(units, baseline)
    require_one_process(units, settings.out)
    trained = [train_unit(settings, unit) for unit in units]
    if part.count > 1 and not trained and not own:
        run_dir = open_empty_shard(spec, part, settings.out)
        settings.console.print(f"shard {shard} holds no checkpoint of this study: {run_dir} stays empty", markup=False,
                               highlight=False, soft_wrap=True)
        return
    plan = plan_batch(spec, seed=settings.seed, fresh=fresh, trained=trained, shard=part)
    if part.count == 1 and baseline not in plan.variants:
        raise InputError(f"baseline variant '{baseline}' is not among the spec's checkpoints: pass --baseline with one of {', '.join(plan.variants)}")
    if recompute:
        discard_threat_cells(plan, [name.strip() for name in recompute.split(",") if name.strip()], settings.out)
    print_notes(settings, plan)
    run_with_progress(settings, plan, warn=False)
    run_dir = settings.out / plan.run
    if part.count > 1:
        settings.console.print(f"shard {shard} stored in {run_dir}: `bilat-eval report` with every shard's run folder "
                               "merges them", markup=False, highlight=False, soft_wrap=True)
        return
    report = build_report([run_dir], baseline)
    print_report(settings.console, report, write_report(report, run_dir, plots=True))


def train_unit(settings: Settings, unit: TrainingUnit) -> Path:
    """Train (resume, or reuse) one checkpoint of a study with a progress bar; its checkpoint's path."""
    options = {"model_kwargs": dict(unit.options.model_kwargs), "attention": dict(unit.options.attention),
               "threads": unit.threads}
    settings.console.print(f"{unit.task} {unit.variant} seed {unit.seed}:", markup=False, highlight=False)
    result = train_with_progress(settings, unit.task, unit.variant, unit.preset, unit.epochs,
                                 unit.folder(settings.out), False, options, unit.seed)
    print_outcome(settings, result)
    return Path(result.checkpoint)
