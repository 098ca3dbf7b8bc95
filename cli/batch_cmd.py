"""``bilat-eval batch SPEC``: run a grid of checkpoints x threats from a TOML spec, then report it."""

from __future__ import annotations

from pathlib import Path

import click

from cli.evaluating import run_cells_with_progress
from cli.settings import Settings, pass_settings
from robustbench_bilateral.batch import load_spec
from robustbench_bilateral.report import open_run, threat_grids, write_report


@click.command("batch")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Clear the run's stored results first instead of resuming.")
@pass_settings
def batch_command(settings: Settings, spec: Path, fresh: bool) -> None:
    """Check SPEC completely, run its cells not yet stored, write the report and print its grids.

    SPEC is a TOML file: run, checkpoints (paths or globs), [[threats]] tables whose list values
    expand into a grid, and optional n_examples, batch_size, seed, dataset, split.
    """
    plan = load_spec(spec, settings.seed)
    rows = run_cells_with_progress(settings, plan.cells, run=plan.run, batch_size=plan.batch_size, fresh=fresh)
    with open_run(settings.out, plan.run) as store:
        write_report(store)
    for table in threat_grids(rows):
        settings.console.print(table)
