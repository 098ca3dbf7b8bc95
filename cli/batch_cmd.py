"""``bilat-eval batch SPEC``: run a grid of checkpoints x threats from a TOML spec, then report it."""

from __future__ import annotations

from pathlib import Path

import click

from cli.evaluating import print_notes, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import print_report
from robustbench_bilateral.batch import discard_threat_cells, plan_batch
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.report import DEFAULT_BASELINE, build_report, write_report


@click.command("batch")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Clear the run's stored results first instead of resuming.")
@click.option("--recompute", default="", metavar="THREAT[,THREAT]",
              help="Delete the stored cells of these threats (e.g. corruption) and compute them again; keep the others.")
@click.option("--baseline", default=DEFAULT_BASELINE, show_default=True, help="Variant the report compares the others with.")
@pass_settings
def batch_command(settings: Settings, spec: Path, fresh: bool, recompute: str, baseline: str) -> None:
    """Check SPEC completely, run its cells not yet stored, write the report and print its grids.

    Under the grids: a warning per sanity flag of the run's rows.

    SPEC is a TOML file: checkpoints (paths or globs), [[threats]] tables whose list values
    expand into a grid, and optional run (default: the file's stem), n_examples, batch_size,
    seed, dataset, split, and how plain weights load (model, model_kwargs, variant, mean, std,
    crop_pct, interpolation). A bad key is named by its path, e.g. threats[1].eps.
    """
    plan = plan_batch(spec, seed=settings.seed, fresh=fresh)
    if baseline not in plan.variants:
        raise InputError(f"baseline variant '{baseline}' is not among the spec's checkpoints: pass --baseline with one of {', '.join(plan.variants)}")
    if recompute:
        discard_threat_cells(plan, [name.strip() for name in recompute.split(",") if name.strip()], settings.out)
    print_notes(settings, plan)
    run_with_progress(settings, plan, warn=False)
    run_dir = settings.out / plan.run
    report = build_report([run_dir], baseline)
    print_report(settings.console, report, write_report(report, run_dir, plots=True))
