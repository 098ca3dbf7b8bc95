"""``bilat-eval report``: rebuild exports, comparisons and plots of runs from their stores, print the grids."""

from __future__ import annotations

from pathlib import Path

import click

from cli.settings import Settings, pass_settings
from cli.tables import print_report
from robustbench_bilateral.report import DEFAULT_BASELINE, build_report, write_report
from robustbench_bilateral.results.export import DEFAULT_FORMATS
from robustbench_bilateral.spec import DEFAULT_RUN


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", default=",".join(DEFAULT_FORMATS), show_default=True,
              help="Comma-separated exports: csv, md, json, parquet.")
@click.option("--baseline", default=DEFAULT_BASELINE, show_default=True, help="Variant the others are compared with.")
@click.option("--plot", is_flag=True, help="Also write figures (PNG at 200 dpi, PDF, SVG) of each metric against eps, "
                                          "severity, strength, rate or context length.")
@click.option("--html", is_flag=True, help="Also write report.html: tables, figures, flags and provenance in one offline page.")
@click.option("--to", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the files [default: the first RUN_DIR].")
@pass_settings
def report_command(settings: Settings, run_dirs: tuple[Path, ...], formats: str, baseline: str, plot: bool, html: bool,
                   report_dir: Path | None) -> None:
    """Report the runs in RUN_DIR... [default: <out>/main] from their stored rows alone.

    The sanity checks across cells run again over each run's rows: a warning names every flag the
    rows imply, and another every cell whose stored flags differ from them; the stores stay as they are."""
    run_dirs = run_dirs or (settings.out / DEFAULT_RUN,)
    report = build_report(run_dirs, baseline)
    written = write_report(report, report_dir or run_dirs[0], [name.strip() for name in formats.split(",") if name.strip()],
                           plot, html)
    print_report(settings.console, report, written)
