"""`bilat-eval contaminate` end to end on real smoke checkpoints, and mCE checked against the stored rows."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import matplotlib.image
import pytest
from click.testing import CliRunner
from report_rows import stored_rows, table_row

from cli.contaminate_cmd import choose_baseline, imagenet_c_rows
from cli.main import cli
from cli.tables import corruption_summary_table
from robustbench_bilateral.corruptions.preview import HEADER_HEIGHT, LABEL_WIDTH, cell_scale
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.results.mce import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    CorruptionSummary,
    ErrorProfile,
    alexnet_profile,
    corruption_errors,
    error_profile,
    mean_corruption_error,
    measure_name,
    summarize,
)
from robustbench_bilateral.sources import describe_checkpoint

VARIANTS = ("softmax", "bilateral")
# noise,blur on grey images: 3 + 4 ImageNet-C corruptions and the held-out speckle_noise and gaussian_blur.
N_CORRUPTIONS = 9
SEVERITIES = (1, 3)
N_EXAMPLES = 64
WIDE = {"COLUMNS": "200"}


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env or WIDE)


@pytest.fixture(scope="module")
def contaminated(smoke_checkpoints, tmp_path_factory):
    """One CLI run on the softmax and bilateral smoke checkpoints: (out folder, output, checkpoint paths)."""
    out = tmp_path_factory.mktemp("contaminate")
    paths = [str(smoke_checkpoints[variant]) for variant in VARIANTS]
    result = invoke("--out", str(out), "contaminate", *paths, "--corruptions", "noise,blur",
                    "--severities", ",".join(map(str, SEVERITIES)), "--n-examples", str(N_EXAMPLES),
                    "--preview", str(out / "preview.png"))
    assert result.exit_code == 0, result.output
    return out, result.output, paths


def test_rows_cover_every_cell_and_the_table_has_one_row_per_checkpoint(contaminated):
    out, output, paths = contaminated
    rows = stored_rows(out)
    assert len(rows) == len(paths) * N_CORRUPTIONS * len(SEVERITIES) * 2 + len(paths)
    for path in paths:
        mine = [row for row in rows if row.checkpoint == path]
        assert [row.threat for row in mine].count("clean") == 1
        cells = {(row.params["corruption"], row.params["severity"]) for row in mine if row.threat == "corruption"}
        assert len(cells) == N_CORRUPTIONS * len(SEVERITIES) and {s for _, s in cells} == set(SEVERITIES)
        assert all(row.n == N_EXAMPLES for row in mine if row.metric == "accuracy")
    assert "CE (sev. 1,3) vs softmax" in output and "rel. CE (sev. 1,3) vs softmax" in output and "mCE" not in output
    for variant in VARIANTS:
        clean = next(row for row in rows if row.variant == variant and row.threat == "clean")
        noise = [row.value for row in rows if row.variant == variant and row.metric == "accuracy"
                 and row.params.get("corruption") in {"gaussian_noise", "shot_noise", "impulse_noise"}]
        cells = table_row(output, variant)
        assert cells[1] == f"{clean.value:.4f}" and cells[2] == f"{sum(noise) / len(noise):.4f}"


def test_the_baseline_against_itself_is_exactly_one(contaminated):
    out, output, paths = contaminated
    rows = stored_rows(out)
    softmax = error_profile(rows, rows[0].checkpoint_sha256)
    assert softmax.name == "softmax"
    assert mean_corruption_error(softmax, softmax) == 1.0
    relative = corruption_errors(softmax, softmax, relative=True)
    defined = [value for value in relative.values() if not math.isnan(value)]
    assert len(relative) == N_CORRUPTIONS and defined and all(value == 1.0 for value in defined)
    relative_mce = mean_corruption_error(softmax, softmax, relative=True)
    assert relative_mce == 1.0 if len(defined) == len(relative) else math.isnan(relative_mce)
    cells = table_row(output, "softmax")
    assert cells[-2] == "1.000" and cells[-1] == ("1.000" if len(defined) == len(relative) else "n/a")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def test_mce_equals_an_independent_computation_from_the_store(contaminated):
    out, output, _ = contaminated
    connection = sqlite3.connect(out / "main" / "results.sqlite")
    sums = {
        (variant, corruption): (errors, above_clean)
        for variant, corruption, errors, above_clean in connection.execute(
            "SELECT r.variant, json_extract(r.params, '$.corruption'), SUM(1.0 - r.n_correct * 1.0 / r.n), "
            "SUM((1.0 - r.n_correct * 1.0 / r.n) - (1.0 - c.n_correct * 1.0 / c.n)) FROM rows r "
            "JOIN rows c ON c.checkpoint_sha256 = r.checkpoint_sha256 AND c.threat = 'clean' "
            "WHERE r.metric = 'accuracy' AND r.threat = 'corruption' GROUP BY 1, 2"
        )
    }
    connection.close()
    names = sorted({corruption for _, corruption in sums})
    assert len(names) == N_CORRUPTIONS
    expected = {c: ratio(sums["bilateral", c][0], sums["softmax", c][0]) for c in names}
    expected_relative = {c: ratio(sums["bilateral", c][1], sums["softmax", c][1]) for c in names}

    rows = stored_rows(out)
    softmax, bilateral = (error_profile(rows, sha) for sha in dict.fromkeys(row.checkpoint_sha256 for row in rows))
    for relative, wanted in ((False, expected), (True, expected_relative)):
        got = corruption_errors(bilateral, softmax, relative)
        assert sorted(got) == names
        assert [math.isnan(got[c]) for c in names] == [math.isnan(wanted[c]) for c in names]
        assert all(got[c] == pytest.approx(wanted[c], rel=1e-12) for c in names if not math.isnan(wanted[c]))
    mce, relative_mce = (sum(values.values()) / len(values) for values in (expected, expected_relative))
    (summary,) = [summary for summary in summarize(rows, softmax) if summary.variant == "bilateral"]
    assert summary.mce == pytest.approx(mce, rel=1e-12)
    assert math.isnan(summary.relative_mce) if math.isnan(relative_mce) else summary.relative_mce == pytest.approx(relative_mce, rel=1e-12)
    cells = table_row(output, "bilateral")
    assert cells[-2] == f"{mce:.3f}" and cells[-1] == ("n/a" if math.isnan(relative_mce) else f"{relative_mce:.3f}")


def test_preview_holds_every_corruption_and_severity(contaminated):
    out, output, _ = contaminated
    path = out / "preview.png"
    scale = cell_scale(28)
    assert matplotlib.image.imread(path).shape[:2] == (
        HEADER_HEIGHT + scale * (N_CORRUPTIONS * 30 + 2), LABEL_WIDTH + scale * (6 * 30 + 2)
    )
    assert f"preview: {path}" in output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--corruptions", "noise,fog_machine"), "fog_machine"),
        (("--severities", "1,7"), "'7'"),
        (("--corruptions", "saturate"), "saturate"),
        (("--noise", "gaussian"), "KIND:STRENGTH"),
        (("--noise", "gaussian:-1"), "--noise gaussian strength: -1.0 is out of range"),
    ],
)
def test_bad_input_fails_with_one_line_before_any_cell_runs(smoke_checkpoints, tmp_path, args, named):
    result = invoke("--out", str(tmp_path), "contaminate", str(smoke_checkpoints["softmax"]), *args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1 and named in result.output
    assert not (tmp_path / "main").exists()


def test_without_a_softmax_checkpoint_a_baseline_is_required(smoke_checkpoints, tmp_path):
    result = invoke("--out", str(tmp_path), "contaminate", str(smoke_checkpoints["bilateral"]))
    assert result.exit_code == 2 and "--baseline" in result.output
    assert not (tmp_path / "main").exists()


def comparable(rows):
    """Rows without what legitimately differs between two runs: timing and the run's name."""
    return [dataclasses.replace(row, wall_s=0.0, run="") for row in rows]


def test_same_seed_gives_identical_rows_and_a_named_baseline_is_evaluated(smoke_checkpoints, tmp_path):
    bilateral, softmax = str(smoke_checkpoints["bilateral+boost"]), str(smoke_checkpoints["softmax"])
    outputs = []
    for run in ("first", "second"):
        result = invoke("--out", str(tmp_path), "--seed", "3", "contaminate", bilateral, "--baseline", softmax,
                        "--run", run, "--corruptions", "gaussian_noise,glass_blur", "--severities", "2",
                        "--noise", "gaussian:0.1,0.3", "--n-examples", "32")
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    first, second = stored_rows(tmp_path, "first"), stored_rows(tmp_path, "second")
    assert comparable(first) == comparable(second)
    assert {row.checkpoint for row in first} == {bilateral, softmax}
    assert sorted(row.params["strength"] for row in first if row.threat == "noise" and row.metric == "accuracy") == [0.1, 0.1, 0.3, 0.3]
    assert [table_row(outputs[0], v) for v in ("softmax", "bilateral+boost")] == [table_row(outputs[1], v) for v in ("softmax", "bilateral+boost")]
    assert table_row(outputs[0], "softmax")[-2] == "1.000" and "additive gaussian" in outputs[0]


def test_baseline_choice(smoke_checkpoints):
    infos = [describe_checkpoint(str(smoke_checkpoints[variant])) for variant in ("bilateral", "softmax", "softmax+boost")]
    assert choose_baseline(infos, None) is infos[1]
    assert choose_baseline(infos, infos[2].path) is infos[2]
    large = dataclasses.replace(infos[0], meta={**infos[0].meta, "model": {**infos[0].meta["model"],
                                "kwargs": {**infos[0].meta["model"]["kwargs"], "img_size": 224}}})
    with pytest.raises(InputError, match="no softmax checkpoint"):
        choose_baseline([large], None)
    with pytest.raises(InputError, match="AlexNet's errors are ImageNet-C's"):
        choose_baseline([large], "alexnet")
    assert imagenet_c_rows([large], None, approximate=True) and not imagenet_c_rows([large], None, approximate=False)
    assert choose_baseline([large], None, imagenet_c=True) is None
    with pytest.raises(InputError, match="all five severities, 2, 4, 5 missing"):
        choose_baseline([large], None, imagenet_c=True, severities=(1, 3))


def test_alexnet_reference_and_zero_denominators():
    severities = (1, 2, 3, 4, 5)
    alexnet = alexnet_profile()
    assert alexnet.name == "AlexNet (ImageNet-C)" and alexnet_profile(approximate=True).name == "AlexNet (ImageNet-C approx.)"
    assert mean_corruption_error(alexnet, alexnet) == 1.0 == mean_corruption_error(alexnet, alexnet, relative=True)
    half = ErrorProfile("half", ALEXNET_CLEAN_ERROR / 2, {"fog": {s: ALEXNET_ERRORS["fog"] / 2 for s in severities},
                                                         "spatter": {s: 0.9 for s in severities}})
    assert corruption_errors(half, alexnet) == {"fog": pytest.approx(0.5, rel=1e-12)}
    assert math.isnan(mean_corruption_error(ErrorProfile("held-out only", 0.1, {"spatter": {1: 0.5}}), alexnet))
    perfect = ErrorProfile("perfect", 0.0, {"fog": {s: 0.0 for s in severities}})
    assert math.isnan(mean_corruption_error(half, perfect))
    with pytest.raises(BilatError, match="normalises only CEs over severities 1-5 but half has fog at \\[1, 3\\]"):
        corruption_errors(dataclasses.replace(half, corrupted={"fog": {1: 0.5, 3: 0.6}}), alexnet)
    softmax = ErrorProfile("softmax", 0.2, {"fog": {1: 0.4}})
    with pytest.raises(BilatError, match="no fog error at severities \\[3\\]"):
        corruption_errors(ErrorProfile("b", 0.1, {"fog": {1: 0.3, 3: 0.5}}), softmax)
    assert [measure_name(s) for s in (severities, (3, 1, 3), (5,))] == ["mCE", "CE (sev. 1,3)", "CE (sev. 5)"]
    summary = CorruptionSummary("c", "perfect", 1.0, {"weather": 1.0}, {}, 1.0, math.nan, math.nan)
    table = corruption_summary_table([summary], "perfect", "t")
    assert [column.header for column in table.columns][-2:] == ["mCE vs perfect", "rel. mCE vs perfect"]
    partial = corruption_summary_table([summary], "perfect", "t", measure_name((1, 3)))
    assert [column.header for column in partial.columns][-2:] == ["CE (sev. 1,3) vs perfect", "rel. CE (sev. 1,3) vs perfect"]
    assert list(table.columns[-2].cells) == list(table.columns[-1].cells) == ["n/a"]
