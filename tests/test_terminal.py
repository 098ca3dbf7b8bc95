"""Terminal output at 100 columns: variant names are never cut, units are fractions and eps k/255,
evaluating commands print their export paths."""

from __future__ import annotations

from click.testing import CliRunner
from report_rows import PGD, row, store_rows
from rich.console import Console

from cli.main import cli
from cli.tables import comparison_grids, rows_table
from robustbench_bilateral.report import build_report

VARIANTS = ("softmax", "softmax+boost", "bilateral", "bilateral+boost")
LONG = "results/some/very/long/folder/of/checkpoints/trained/on/fashion-mnist/for/a/paper/figure"


def long_rows():
    return [row(f"{key}{variant}", variant, threat, params, value, checkpoint=f"{LONG}/{variant}-seed0/model.safetensors")
            for variant in VARIANTS
            for key, threat, params, value in (("c", "clean", {}, 0.9), ("p", "pgd", PGD, 0.6),
                                               ("q", "pgd", {**PGD, "eps": 8 / 255}, 0.4))]


def test_tables_at_100_columns_keep_every_variant_whole(tmp_path):
    report = build_report([store_rows(tmp_path / "run", long_rows())])
    console = Console(width=100, record=True)
    for table in [rows_table(report.rows), *comparison_grids(report)]:
        console.print(table)
    text = console.export_text()
    assert "…" not in text
    lines = text.splitlines()
    for variant in VARIANTS:
        assert any(f" {variant} " in line for line in lines), variant
    assert "eps=4/255" in text and "eps=8/255" in text and "0.6000" in text and "60.0" not in text


def test_report_prints_every_written_path_whole(tmp_path):
    run = store_rows(tmp_path / "run", long_rows())
    result = CliRunner().invoke(cli, ["report", str(run)], terminal_width=100)
    assert result.exit_code == 0, result.output
    for name in ("results.csv", "results_wide.csv", "results.md", "results.json", "comparison.csv"):
        assert f"  {run / name}" in result.output


def test_n_examples_help_says_why_a_default_is_not_the_whole_split():
    for command, default in (("attack", "500"), ("contaminate", "1000")):
        result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
        assert f"Default {default}:" in " ".join(result.output.split())
