"""``bilat-eval report``: rebuild a run's exports and plots from its store and print its grids."""

from __future__ import annotations

import click

from cli.settings import Settings, pass_settings
from robustbench_bilateral.evaluation import DEFAULT_RUN
from robustbench_bilateral.report import REPORT_FORMATS, open_run, threat_grids, write_report


@click.command("report")
@click.option("--run", default=DEFAULT_RUN, show_default=True, help="The run under --out to report.")
@click.option("--format", "formats", default=",".join(REPORT_FORMATS), show_default=True,
              help="Comma-separated views to write next to the store.")
@pass_settings
def report_command(settings: Settings, run: str, formats: str) -> None:
    """Write CSV, Markdown, JSON and plots of a run from its stored rows, and print one grid per threat."""
    with open_run(settings.out, run) as store:
        written = write_report(store, [name.strip() for name in formats.split(",") if name.strip()])
        for table in threat_grids(store.rows()):
            settings.console.print(table)
    settings.console.print("wrote " + ", ".join(str(path) for path in written))
