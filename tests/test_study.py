"""Studies (a batch spec's [train] table): checkpoints trained once, across-seed statistics, shards merged by report."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from cli.main import cli
from robustbench_bilateral.report import build_report
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.seeds import holm, seed_test, summarize, verdict
from robustbench_bilateral.results.stats import wilson_interval
from robustbench_bilateral.study import Shard, shard_of, training_units

STUDY = """run = "{run}"
n_examples = 200
{checkpoints}
[train]
tasks = "mnist5k"
variants = ["softmax", "bilateral"]
seeds = [0, 1]
preset = "smoke"

[[threats]]
name = "clean"

[[threats]]
name = "noise"
kind = "gaussian"
strength = [0.2, 0.5]

[[threats]]
name = "fgsm"
eps = "8/255"
"""
SHOWN = ["checkpoint_sha256", "variant", "threat", "params", "n", "metric", "value", "ci_low", "ci_high", "n_correct", "seed"]


def invoke(out: Path, *args: str):
    return CliRunner().invoke(cli, ["--out", str(out), *args], terminal_width=200)


def write_study(folder: Path, run: str = "study", checkpoints: str = "") -> Path:
    spec = folder / f"{run}.toml"
    spec.write_text(STUDY.format(run=run, checkpoints=checkpoints), encoding="utf-8")
    return spec


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study spec run once into ``out`` (4 smoke checkpoints trained), with the first run's output."""
    root = tmp_path_factory.mktemp("study")
    spec = write_study(root)
    first = invoke(root / "out", "batch", str(spec))
    assert first.exit_code == 0, first.output
    return root, spec, first.output


def stored_frame(run_dir: Path) -> pd.DataFrame:
    with ResultStore(run_dir / "results.sqlite") as store:
        rows = store.rows()
    frame = pd.DataFrame([{name: getattr(row, name) for name in SHOWN} | {"params": str(sorted(row.params.items()))}
                          for row in rows], columns=SHOWN)
    return frame.sort_values(["checkpoint_sha256", "threat", "params", "metric"]).reset_index(drop=True)


def cell_count(frame: pd.DataFrame) -> int:
    return len(frame.groupby(["checkpoint_sha256", "threat", "params"]))


def test_a_study_trains_each_checkpoint_once_and_a_second_run_trains_none(study):
    root, spec, first = study
    checkpoints = sorted((root / "out" / "checkpoints" / "mnist5k" / "smoke").glob("*/model.safetensors"))
    assert [path.parent.name for path in checkpoints] == ["bilateral-seed0", "bilateral-seed1", "softmax-seed0", "softmax-seed1"]
    assert first.count("trained: ") == 4 and "reused: " not in first
    stamps = [path.stat().st_mtime_ns for path in checkpoints]
    second = invoke(root / "out", "batch", str(spec))
    assert second.exit_code == 0, second.output
    assert second.output.count("reused: ") == 4 and "trained: " not in second.output
    assert [path.stat().st_mtime_ns for path in checkpoints] == stamps
    assert cell_count(stored_frame(root / "out" / "study")) == 4 * 4


def test_a_changed_training_setting_trains_a_new_checkpoint(study, tmp_path):
    root, spec, _ = study
    changed = tmp_path / "changed.toml"
    changed.write_text(spec.read_text().replace('variants = ["softmax", "bilateral"]\nseeds = [0, 1]',
                                                'variants = ["softmax"]\nseeds = [0]\nsettings = [{embed_dim = 16}]')
                       .replace('run = "study"', 'run = "changed"'), encoding="utf-8")
    result = invoke(root / "out", "batch", "--shard", "1/1", str(changed))
    assert result.exit_code == 0, result.output
    assert result.output.count("trained: ") == 1 and "reused: " not in result.output
    folders = sorted(path.name for path in (root / "out" / "checkpoints" / "mnist5k" / "smoke").iterdir())
    assert len(folders) == 5 and [name for name in folders if name.startswith("softmax-seed0-")]


def test_the_across_seed_statistics_equal_an_independent_computation(study):
    root, _, _ = study
    frame = pd.read_csv(root / "out" / "study" / "results.csv")
    comparisons = pd.read_csv(root / "out" / "study" / "comparison.csv")
    accuracy = frame[frame.metric == "accuracy"]
    for threat_params, cell in accuracy.groupby(["threat", "params"]):
        by_variant = {variant: dict(zip(members.checkpoint.str.extract(r"seed(\d)")[0].astype(int), members.value))
                      for variant, members in cell.groupby("variant")}
        soft, bil = by_variant["softmax"], by_variant["bilateral"]
        mine = comparisons[(comparisons.variant == "bilateral") & (comparisons.threat == threat_params[0])
                           & np.isclose(comparisons.value, statistics.fmean(bil.values()))]
        assert len(mine) >= 1, threat_params
        row = mine.iloc[0]
        assert row.n_checkpoints == 2
        assert math.isclose(row["std"], statistics.stdev(bil.values()), rel_tol=1e-9, abs_tol=1e-12)
        half = stats.t.ppf(0.975, 1) * statistics.stdev(bil.values()) / math.sqrt(2)
        assert math.isclose(row.ci_low, max(0.0, statistics.fmean(bil.values()) - half), abs_tol=1e-9)
        differences = [bil[seed] - soft[seed] for seed in (0, 1)]
        assert row.test == "paired-t (seeds)"
        assert math.isclose(row.delta, statistics.fmean(differences), abs_tol=1e-12)
        if statistics.stdev(differences) > 0:
            assert math.isclose(row.p_value, stats.ttest_rel([bil[0], bil[1]], [soft[0], soft[1]]).pvalue, rel_tol=1e-6)
    tested = comparisons.dropna(subset=["p_value"])
    assert np.allclose(tested.p_holm, holm(list(tested.p_value)))


def test_the_verdict_table_tests_each_threat_group_over_seeds(study):
    root, _, output = study
    verdicts = pd.read_csv(root / "out" / "study" / "verdicts.csv")
    assert set(verdicts.threat_group) == {"clean", "noise", "fgsm"}
    frame = pd.read_csv(root / "out" / "study" / "results.csv")
    noise = frame[(frame.threat == "noise") & (frame.metric == "accuracy")]
    seed = noise.checkpoint.str.extract(r"seed(\d)")[0].astype(int)
    means = noise.assign(seed=seed).groupby(["variant", "seed"]).value.mean()
    expected = statistics.fmean(means["bilateral"] - means["softmax"])
    row = verdicts[verdicts.threat_group == "noise"].iloc[0]
    assert row.settings == 2 and row.seeds == 2 and math.isclose(row.delta, expected, abs_tol=1e-12)
    assert row.verdict in {"better", "worse", "no evidence"}
    assert np.allclose(verdicts.p_holm, holm(list(verdicts.p_value)))
    assert "mnist5k: verdict against softmax over training seeds" in " ".join(output.split())


def test_three_shards_of_a_study_give_the_rows_of_the_unsharded_run(study):
    root, spec, _ = study
    shards = [root / "out" / f"study-shard{index}of3" for index in (1, 2, 3)]
    for index in (1, 2, 3):
        result = invoke(root / "out", "batch", "--shard", f"{index}/3", str(spec))
        assert result.exit_code == 0, result.output
        assert "trained: " not in result.output
    held = [stored_frame(path) for path in shards]
    assert sum(cell_count(frame) for frame in held) == 16 and sum(len(frame) > 0 for frame in held) >= 2
    merged = invoke(root / "out", "report", *map(str, shards), "--to", str(root / "merged"))
    assert merged.exit_code == 0, merged.output
    report = build_report(shards)
    assert len(report.rows) == len(stored_frame(root / "out" / "study"))
    together = pd.concat([frame for frame in held if len(frame)]).sort_values(["checkpoint_sha256", "threat", "params", "metric"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, stored_frame(root / "out" / "study"))


def test_three_shards_of_a_plain_batch_split_its_cells_by_key(study, tmp_path):
    root, _, _ = study
    plain = tmp_path / "plain.toml"
    glob = str(root / "out" / "checkpoints" / "mnist5k" / "smoke" / "*-seed[01]" / "model.safetensors")
    plain.write_text(STUDY.split("[train]")[0].format(run="plain", checkpoints=f'checkpoints = ["{glob}"]')
                     + STUDY.split('preset = "smoke"\n')[1], encoding="utf-8")
    assert invoke(tmp_path / "out", "batch", str(plain)).exit_code == 0
    for index in (1, 2, 3):
        assert invoke(tmp_path / "out", "batch", "--shard", f"{index}/3", str(plain)).exit_code == 0
    shards = [tmp_path / "out" / f"plain-shard{index}of3" for index in (1, 2, 3)]
    sizes = [cell_count(stored_frame(path)) for path in shards]
    assert sum(sizes) == 16 and all(size > 0 for size in sizes)
    rows = build_report([tmp_path / "out" / "plain", *shards]).rows
    assert len(rows) == len(stored_frame(tmp_path / "out" / "plain"))


def test_a_report_refuses_two_runs_that_disagree_on_a_cell(study, tmp_path):
    root, _, _ = study
    source = root / "out" / "study"
    with ResultStore(source / "results.sqlite") as store:
        rows = store.rows()
        row = next(row for row in rows if row.threat == "clean")
        outcomes = store.outcomes(row.cell_key)
    other = tmp_path / "other"
    correct = outcomes["correct"].copy()
    correct[np.flatnonzero(correct)[:2]] = False  # the same cell computed elsewhere with two outcomes flipped
    low, high = wilson_interval(int(correct.sum()), len(correct))
    with ResultStore.for_run(tmp_path, "other") as store:
        changed = replace(row, value=float(correct.mean()), n_correct=int(correct.sum()), ci_low=low, ci_high=high)
        store.write_cell(row.cell_key, [changed], {**outcomes, "correct": correct})
    result = invoke(tmp_path, "report", str(source), str(other))
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "report the runs separately" in result.output


def test_a_seed_level_test_gives_one_for_identical_inputs_and_a_small_p_for_a_planted_difference():
    same = {0: 0.81, 1: 0.83, 2: 0.80}
    assert seed_test(same, dict(same)).p_value == 1.0
    assert seed_test({0: 0.8, 1: 0.8}, {5: 0.8, 6: 0.8}).p_value == 1.0
    rng = np.random.default_rng(0)
    base = {seed: 0.80 + 0.01 * rng.standard_normal() for seed in range(8)}
    planted = {seed: value + 0.05 + 0.002 * rng.standard_normal() for seed, value in base.items()}
    paired = seed_test(base, planted)
    assert paired.test == "paired-t (seeds)" and paired.p_value < 1e-6
    assert math.isclose(paired.p_value, stats.ttest_rel(list(planted.values()), list(base.values())).pvalue, rel_tol=1e-9)
    unpaired = seed_test(base, {seed + 100: value for seed, value in planted.items()})
    assert unpaired.test == "welch-t (seeds)"
    reference = stats.ttest_ind(list(planted.values()), list(base.values()), equal_var=False)
    assert math.isclose(unpaired.p_value, reference.pvalue, rel_tol=1e-9)
    assert unpaired.low < 0.05 < unpaired.high
    assert seed_test({0: 0.8}, {0: 0.9}) is None


def test_summaries_holm_and_verdicts():
    summary = summarize([0.80, 0.82, 0.84])
    assert math.isclose(summary.mean, 0.82) and math.isclose(summary.std, 0.02)
    assert math.isclose(summary.high - summary.mean, stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))
    assert summarize([0.5]).std is None
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert verdict(0.02, 0.01, True) == "better" and verdict(0.02, 0.01, False) == "worse"
    assert verdict(0.02, 0.2, True) == "no evidence"


def test_shards_are_deterministic_and_bad_shards_are_one_line(tmp_path):
    keys = [f"cell{index}" for index in range(300)]
    counts = [sum(shard_of(key, 3) == index for key in keys) for index in (1, 2, 3)]
    assert sum(counts) == 300 and min(counts) > 60
    assert [shard_of(key, 3) for key in keys] == [shard_of(key, 3) for key in keys]
    assert Shard.parse("2/3").run_name("demo") == "demo-shard2of3" and Shard().run_name("demo") == "demo"
    spec = write_study(tmp_path)
    for bad in ("0/3", "4/3", "a/b", "2"):
        result = invoke(tmp_path / "out", "batch", "--shard", bad, str(spec))
        assert result.exit_code == 2 and result.output.startswith("error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_study_of_two_tasks_has_verdicts_for_each_dataset(study):
    root, spec, _ = study
    both = root / "both.toml"
    both.write_text(spec.read_text().replace('tasks = "mnist5k"', 'tasks = ["mnist5k", "digits"]')
                    .replace('run = "study"', 'run = "both"'), encoding="utf-8")
    result = invoke(root / "out", "batch", str(both))
    assert result.exit_code == 0, result.output
    assert result.output.count("reused: ") == 4 and result.output.count("trained: ") == 4
    verdicts = pd.read_csv(root / "out" / "both" / "verdicts.csv")
    assert sorted(set(verdicts.dataset)) == ["digits", "mnist5k"]
    assert len(verdicts) == 2 * 3 and set(verdicts.seeds) == {2}


def test_a_study_without_its_baseline_variant_fails_before_anything_trains(tmp_path):
    spec = write_study(tmp_path)
    spec.write_text(spec.read_text().replace('variants = ["softmax", "bilateral"]', 'variants = ["bilateral"]'), encoding="utf-8")
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: baseline variant 'softmax' is not among the study's variants")
    assert not (tmp_path / "out").exists()


def test_a_shard_without_checkpoints_leaves_an_empty_run_that_report_merges(study):
    root, spec, _ = study
    keys = [unit.key for unit in training_units({"tasks": "mnist5k", "variants": ["softmax", "bilateral"], "seeds": [0, 1],
                                                 "preset": "smoke"})]
    empty = next(index for index in range(1, 9) if all(shard_of(key, 8) != index for key in keys))
    result = invoke(root / "out", "batch", "--shard", f"{empty}/8", str(spec))
    assert result.exit_code == 0, result.output
    folder = root / "out" / f"study-shard{empty}of8"
    with ResultStore(folder / "results.sqlite") as store:
        assert store.rows() == []
    assert len(build_report([root / "out" / "study", folder]).rows) == len(stored_frame(root / "out" / "study"))
