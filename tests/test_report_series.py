"""Report series keying: one plot line and one comparison row per distinct setting, replicates
pooled only when their recipes match, on rows written through the real store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from report_rows import FGSM, PGD, perplexity_row, row, store_rows

from cli.main import cli
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.report import build_report, write_report
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.plots import _x_label, figure_specs
from robustbench_bilateral.results.series import model_groups
from robustbench_bilateral.training import train


def two_runs(tmp_path: Path, threat: str, first: dict, second: dict) -> list[Path]:
    """Two runs of softmax and bilateral whose ``threat`` rows differ only in their params."""
    runs = []
    for index, params in enumerate((first, second)):
        rows = [row(f"{index}-{variant}-{name}", variant, name, p, value - 0.01 * index)
                for variant, value in (("softmax", 0.8), ("bilateral", 0.7))
                for name, p in (("clean", {}), (threat, params))]
        runs.append(store_rows(tmp_path / f"run{index}", rows))
    return runs


@pytest.mark.parametrize(("threat", "first", "second", "differs"), [
    ("fgsm", FGSM, {**FGSM, "space": "normalized"}, "space=normalized"),
    ("pgd", PGD, {**PGD, "steps": 10}, "steps=10"),
])
def test_settings_differing_in_one_parameter_give_two_series_and_two_comparison_rows(tmp_path, threat, first, second,
                                                                                      differs):
    report = build_report(two_runs(tmp_path, threat, first, second))
    (spec,) = [spec for spec in figure_specs(report.rows) if spec.name == f"plot_{threat}"]
    labels = sorted(spec.line_label(line) for line in spec.all_lines())
    assert len(labels) == 4 and sum(differs in label for label in labels) == 2
    values = {spec.line_label(line): line.points[4 / 255].value for line in spec.all_lines()}
    assert sorted(values.values()) == pytest.approx([0.69, 0.7, 0.79, 0.8])  # no mean of the two settings
    assert all(line.points[0.0].value in (0.8, 0.7, 0.79, 0.69) for line in spec.all_lines())  # clean at eps 0
    write_report(report, tmp_path / "out")
    comparison = pd.read_csv(tmp_path / "out" / "comparison.csv")
    attacked = comparison[comparison.threat == threat]
    assert len(attacked) == 4 and attacked.setting.nunique() == 2 and attacked.n_checkpoints.eq(1).all()
    assert {"n", "value", "ci_low", "ci_high", "baseline_value", "baseline_ci_low", "baseline_ci_high", "delta",
            "delta_ci_low", "delta_ci_high", "test", "p_value", "sanity_flags"} <= set(comparison.columns)


def test_the_batch_size_of_a_random_attack_splits_series_and_is_named_only_when_it_differs(tmp_path):
    rows = [row("a", "softmax", "pgd", PGD, 0.6), row("b", "softmax", "pgd", {**PGD, "batch_size": 64}, 0.62)]
    (spec,) = figure_specs(rows)
    assert sorted(spec.line_label(line) for line in spec.all_lines()) == ["softmax batch_size=256", "softmax batch_size=64"]
    (same,) = figure_specs(rows[:1])
    assert [same.line_label(line) for line in same.all_lines()] == ["softmax"] and "batch_size=256" in same.title()


def test_clean_cells_of_two_sizes_are_two_comparison_rows(tmp_path):
    run = store_rows(tmp_path / "run", [row("a", "softmax", "clean", {}, 0.8, n=300), row("b", "softmax", "clean", {}, 0.81)])
    settings = sorted(comparison.setting for comparison in build_report([run]).comparisons)
    assert settings == ["clean n=200", "clean n=300"]


def test_context_sweep_gives_a_perplexity_figure_per_variant_and_threat():
    rows = []
    for variant in ("softmax", "bilateral"):
        for context in (32, 64, 128, 256, 512):
            for threat, params in (("clean", {}), ("wordswap", {"rate": 0.05, "replacement": "aaa"})):
                rows.append(perplexity_row(f"{variant}{context}{threat}", variant, threat,
                                           {**params, "context": context, "stride": 1}, 100.0 - context / 10))
    (spec,) = [spec for spec in figure_specs(rows) if spec.name == "plot_context"]
    assert len(spec.all_lines()) == 4
    assert all(sorted(line.points) == [32, 64, 128, 256, 512] for line in spec.all_lines())
    assert {spec.line_label(line) for line in spec.all_lines()} == {
        f"{variant} threat={threat}" for variant in ("softmax", "bilateral") for threat in ("clean", "wordswap rate=0.05 replacement=aaa")}


def test_checkpoints_of_two_recipes_are_never_pooled(tmp_path):
    smoke = train("mnist5k", "bilateral", "smoke", tmp_path / "a" / "bilateral-seed0").checkpoint
    longer = train("mnist5k", "bilateral", "smoke", tmp_path / "b" / "bilateral-seed1", epochs=2, seed=1).checkpoint
    again = train("mnist5k", "bilateral", "smoke", tmp_path / "c" / "bilateral-seed2", seed=2).checkpoint
    rows = [row(f"k{i}", "bilateral", "clean", {}, value, checkpoint=str(path), checkpoint_sha256=str(i) * 64)
            for i, (path, value) in enumerate(((smoke, 0.6), (longer, 0.9), (again, 0.62)))]
    groups, warnings = model_groups(rows)
    assert groups["0" * 64] == groups["2" * 64] and groups["0" * 64] != groups["1" * 64]
    assert len(warnings) == 1 and "recipe.epochs" in warnings[0]
    run = store_rows(tmp_path / "run", rows)
    comparisons = build_report([run], baseline="bilateral").comparisons
    assert sorted(c.n_checkpoints for c in comparisons) == [1, 2]
    assert sorted(c.variant for c in comparisons) == ["bilateral (recipe.epochs=1)", "bilateral (recipe.epochs=2)"]


def invoke(out: Path, *args: str):
    """``bilat-eval --out OUT ARGS`` through the real command line."""
    return CliRunner().invoke(cli, ["--out", str(out), *args], terminal_width=200)


def test_a_smoke_and_a_quick_checkpoint_of_one_variant_are_two_rows_and_a_warning(tmp_path):
    smoke = train("mnist5k", "bilateral", "smoke", tmp_path / "a").checkpoint
    quick = train("mnist5k", "bilateral", "quick", tmp_path / "b", epochs=1).checkpoint
    out = tmp_path / "out"
    evaluated = invoke(out, "evaluate", "--n-examples", "200", "--run", "mixed", str(smoke), str(quick))
    assert evaluated.exit_code == 0, evaluated.output
    printed = invoke(out, "report", "--baseline", "bilateral", str(out / "mixed"))
    assert printed.exit_code == 0, printed.output
    words = " ".join(printed.output.split())  # the warning as one line, however the terminal wrapped it
    assert words.count("warning:") == 1
    warning = words[words.index("warning: bilateral: 2 checkpoint recipes not pooled, they differ in "):]
    assert all(entry in warning for entry in ("model.kwargs.embed_dim", "recipe.batch_size", "recipe.steps_per_epoch"))
    assert "±" not in printed.output  # never one pooled mean ± std
    comparison = pd.read_csv(out / "mixed" / "comparison.csv")
    assert len(comparison) == 2 and comparison.n_checkpoints.eq(1).all() and comparison.variant.nunique() == 2
    assert all(variant.startswith("bilateral (") and "recipe.batch_size=" in variant for variant in comparison.variant)
    with ResultStore.for_run(out, "mixed") as store:
        accuracies = {row.checkpoint: row.value for row in store.rows()}
    assert sorted(comparison.value) == sorted(accuracies.values())  # each checkpoint's own value, no mean


def test_perplexity_against_context_is_one_line_per_variant_and_threat_from_real_rows(language_checkpoints, tmp_path):
    out, paths = tmp_path / "out", [str(path) for path in language_checkpoints.values()]
    for context in ("16", "32"):
        reading = ("--n-examples", "300", "--context", context, "--run", "ctx", *paths)
        for command in (("evaluate",), ("wordswap", "--replacement", "aaa", "--rates", "0.05")):
            result = invoke(out, *command, *reading)
            assert result.exit_code == 0, result.output
    report = invoke(out, "report", "--plot", str(out / "ctx"))
    assert report.exit_code == 0, report.output
    assert all((out / "ctx" / f"plot_context.{suffix}").stat().st_size > 0 for suffix in ("png", "pdf", "svg"))
    (spec,) = [spec for spec in figure_specs(build_report([out / "ctx"]).rows) if spec.name == "plot_context"]
    assert {spec.line_label(line) for line in spec.all_lines()} == {
        f"{variant} threat={threat}" for variant in language_checkpoints for threat in ("clean", "wordswap rate=0.05 replacement=aaa")}
    assert all(sorted(line.points) == [16, 32] and all(point.k == 1 for point in line.points.values())
               for line in spec.all_lines())


def test_a_threat_figure_keeps_its_most_frequent_context_and_the_others_go_to_plot_context():
    def wordswap(key, context, rate, value):
        return perplexity_row(key, "softmax", "wordswap", {"replacement": "aaa", "rate": rate, "context": context,
                                                           "stride": 16}, value)

    rows = [wordswap("a", 64, 0.05, 120.0), wordswap("b", 64, 0.2, 300.0), wordswap("c", 32, 0.05, 130.0),
            wordswap("d", 256, 0.05, 118.0)]
    specs = {spec.name: spec for spec in figure_specs(rows)}
    (line,) = specs["plot_wordswap"].all_lines()
    assert sorted(line.points) == [0.05, 0.2] and line.describe["context"] == 64
    by_rate = {line.describe["rate"]: sorted(line.points) for line in specs["plot_context"].all_lines()}
    assert by_rate == {0.05: [32, 64, 256]}  # the rate 0.2 setting, at one context only, stays in plot_wordswap


def test_embedding_attack_rows_of_two_models_are_one_setting_despite_their_own_absolute_radius(tmp_path):
    """``eps_abs`` (and ``eps_rel``, equal to ``eps``) come from the model: they key no comparison,
    column or line, so each variant is compared with the baseline and a line sweeps every eps."""
    rows = []
    for variant, scale, value in (("softmax", 1.0, 50.0), ("bilateral", 1.7, 40.0)):
        rows.append(perplexity_row(f"{variant}-clean", variant, "clean", {"context": 32, "stride": 1}, value))
        for eps in (0.05, 0.1):
            params = {"eps": eps, "eps_rel": eps, "norm": "Linf", "context": 32, "stride": 1, "eps_abs": eps * scale}
            rows.append(replace(perplexity_row(f"{variant}-{eps}", variant, "fgsm-embedding", params, value + 100 * eps),
                                threat_family=ThreatFamily.ADVERSARIAL))
    report = build_report([store_rows(tmp_path / "run", rows)])
    attacked = [c for c in report.comparisons if c.threat == "fgsm-embedding"]
    assert len(attacked) == 4 and len({c.setting for c in attacked}) == 2
    assert all(c.delta is not None for c in attacked if c.variant == "bilateral")
    (spec,) = [spec for spec in figure_specs(report.rows) if spec.name == "plot_fgsm-embedding"]
    assert len(spec.all_lines()) == 2 and all(sorted(line.points) == [0.0, 0.05, 0.1] for line in spec.all_lines())
    assert _x_label(spec) == "eps (Linf, relative to the mean embedding norm; 0 = clean)"


def test_rows_differing_only_in_seed_get_distinct_setting_labels(tmp_path):
    rows = [row(f"{variant}-{seed}", variant, "fgsm", FGSM, value, seed=seed)
            for seed in (0, 1) for variant, value in (("softmax", 0.8), ("bilateral", 0.7))]
    comparisons = build_report([store_rows(tmp_path / "run", rows)]).comparisons
    assert len(comparisons) == 4 and len({(c.variant, c.setting) for c in comparisons}) == 4
