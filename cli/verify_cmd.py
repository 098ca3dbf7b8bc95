"""``bilat-eval verify``: check every stored cell of runs against its digests and its outcomes."""

from __future__ import annotations

from pathlib import Path

import click

from cli.settings import Settings, pass_settings
from robustbench_bilateral.report import open_run
from robustbench_bilateral.results.store import StoreError, describe
from robustbench_bilateral.spec import DEFAULT_RUN


@click.command("verify")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@pass_settings
def verify_command(settings: Settings, run_dirs: tuple[Path, ...]) -> None:
    """Check every cell of RUN_DIR... [default: <out>/main] against its digests and outcomes; list each inconsistent one.

    Prints one line per inconsistent cell and exits 2 when there is one; run the command that made
    a cell again to recompute it (a run never keeps an inconsistent cell).
    """
    run_dirs = run_dirs or (settings.out / DEFAULT_RUN,)
    inconsistent = []
    for run_dir in run_dirs:
        with open_run(run_dir) as store:
            found = store.problems()
        for problem in found:
            click.echo(f"{store.path}: {describe(problem)}")
        if not found:
            settings.console.print(f"{store.path}: every cell matches its digests and outcomes")
        inconsistent += [store.path] * len(found)
    if inconsistent:
        where = ", ".join(str(path) for path in dict.fromkeys(inconsistent))
        raise StoreError(f"{len(inconsistent)} inconsistencies in {where} (listed above): run the commands that made "
                         "those cells again to recompute them")
