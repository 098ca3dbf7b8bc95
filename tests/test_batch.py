"""`bilat-eval batch` and `bilat-eval report`: specs checked before anything runs, reports rebuilt from the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from cli.main import cli
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.compare import mcnemar_p_value
from robustbench_bilateral.training import train


def write_spec(folder: Path, checkpoints: list[str], threats: str, run: str = "grid") -> Path:
    spec = folder / "spec.toml"
    listed = ", ".join(f'"{path}"' for path in checkpoints)
    spec.write_text(f'run = "{run}"\nn_examples = 48\ncheckpoints = [{listed}]\n{threats}', encoding="utf-8")
    return spec


def invoke(out: Path, *args: str):
    return CliRunner().invoke(cli, ["--out", str(out), *args], terminal_width=200)


NOISE_GRID = '[[threats]]\nname = "clean"\n[[threats]]\nname = "noise"\nkind = "gaussian"\nstrength = [0.1, 0.4]\n'


@pytest.mark.parametrize("threats, key", [
    ('[[threats]]\nname = "pgdd"\neps = 0.01\n', "threats[0].name: unknown threat 'pgdd'"),
    ('[[threats]]\nname = "pgd"\neps = ["1/0"]\n', "threats[0].eps[0]: bad number '1/0'"),
    ('[[threats]]\nname = "pgd"\neps = ["1/255", "4/0"]\n', "threats[0].eps[1]: bad number '4/0'"),
    ('[[threats]]\nname = "corruption"\ncorruption = "fog"\nseverity = 7\n', "threats[0].severity: unknown value 7: choose one of 1, 2, 3, 4, 5"),
    ('[[threats]]\nname = "noise"\nkind = "gaussian"\nstrength = 0.1\nsigma = 3\n', "threats[0].sigma: threat 'noise' does not take 'sigma'"),
    ('[[threats]]\nname = "noise"\nkind = "gaussian"\nstrength = [0.1, "lots", [0.2]]\n', "threats[0].strength[1]: bad number 'lots'"),
    ('[[threats]]\nname = "noise"\nkind = "gaussian"\nstrength = []\n', "threats[0].strength: is an empty list"),
    ('[[threats]]\nname = "clean"\n[[threats]]\nname = "fgsm"\neps = 0.1\nn_examples = -5\n', "threats[1].n_examples: must be a whole number >= 0"),
    ('[[threats]]\neps = 0.1\n', "threats[0]: missing 'name'"),
    ('batch_size = 0\n[[threats]]\nname = "clean"\n', "batch_size: must be a whole number >= 1, got 0"),
    ('batch_size = "64"\n[[threats]]\nname = "clean"\n', "batch_size: must be a whole number >= 1, got '64'"),
    ('seed = 1.5\n[[threats]]\nname = "clean"\n', "seed: must be a whole number, got 1.5"),
    ('split = "valid"\n[[threats]]\nname = "clean"\n', "split: dataset 'mnist5k' has no split 'valid'"),
    ('dataset = "shakespeare"\n[[threats]]\nname = "clean"\n', "dataset: checkpoint "),
    ('[[threats]]\nname = "clean"\n[[threats]]\nname = "wordswap"\n', "threats[1]: does not apply to image classifiers"),
    ('threats = "clean"\n', "threats: must be a list of threat names"),
    ('sede = 3\n[[threats]]\nname = "clean"\n', "sede: unknown key in"),
    *((f'[train]\n{train}\n[[threats]]\nname = "clean"\n', key) for train, key in [
        ('variants = ["softmax"]\n', "train.tasks: must be a non-empty list"),
        ('tasks = "mnist5k"\nvariants = ["softmaxx"]\n', "train.variants[0]: "),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\nseeds = [-1]\n', "train.seeds[0]: must be a whole number >= 0"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\npreset = "slow"\n', "train.preset: unknown preset 'slow'"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\nsettings = [{nu = 2}]\n', "train.settings[0].nu: unknown setting"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\nsettings = [{boost_steps = -1}]\n', "train.settings[0].boost_steps: must be"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\nepoch = 3\n', "train.epoch: unknown key"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\nsettings = [{boost_steps = 2}]\n',
         "train.settings[0].boost_steps: variant 'softmax' needs boost_steps = 0"),
        ('tasks = "mnist5k"\nvariants = ["softmax"]\npreset = "smoke"\n[[threats]]\nname = "pgdd"\n', "threats[0].name"),
    ]),
])
def test_a_typo_fails_before_any_cell_runs(smoke_checkpoints, tmp_path, threats, key):
    spec = write_spec(tmp_path, [str(smoke_checkpoints["softmax"])], threats)
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {key}") and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_table_can_set_its_own_number_of_examples(smoke_checkpoints, tmp_path):
    threats = NOISE_GRID + '[[threats]]\nname = "fgsm"\neps = "8/255"\nn_examples = 17\n'
    spec = write_spec(tmp_path, [str(smoke_checkpoints["softmax"])], threats)
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path / "out", "grid") as store:
        sizes = {(row.threat, row.metric): row.n for row in store.rows()}
        fgsm = next(row for row in store.rows() if row.threat == "fgsm" and row.metric == "accuracy")
        assert len(store.outcomes(fgsm.cell_key)["correct"]) == 17
    assert sizes[("clean", "accuracy")] == sizes[("noise", "accuracy")] == 48 and sizes[("fgsm", "accuracy")] == 17


@pytest.mark.parametrize("checkpoints, key", [
    ('"x"', "checkpoints: must be a list of strings (checkpoint paths, globs or timm:NAME), got 'x'"),
    ("[]", "checkpoints: is empty"),
    ('[3]', "checkpoints[0]: must be a non-empty string, got 3"),
])
def test_checkpoints_must_be_a_list_of_strings(tmp_path, checkpoints, key):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'checkpoints = {checkpoints}\n{NOISE_GRID}', encoding="utf-8")
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {key}") and result.output.count("\n") == 1


def test_a_spec_without_checkpoints_says_the_key_is_missing(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(NOISE_GRID, encoding="utf-8")
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 2 and result.output.startswith("error: checkpoints: missing: give a list of strings")


def test_the_run_defaults_to_the_spec_file_stem(smoke_checkpoints, tmp_path):
    spec = tmp_path / "nightly.toml"
    spec.write_text(f'n_examples = 16\ncheckpoints = ["{smoke_checkpoints["softmax"]}"]\n[[threats]]\nname = "clean"\n',
                    encoding="utf-8")
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path / "out", "nightly") as store:
        assert [(row.threat, row.n, row.run) for row in store.rows()] == [("clean", 16, "nightly")]


def test_a_missing_checkpoint_is_named(tmp_path):
    spec = write_spec(tmp_path, ["nowhere/model.safetensors"], NOISE_GRID)
    result = invoke(tmp_path / "out", "batch", str(spec))
    assert result.exit_code == 2 and result.output.startswith("error: checkpoints[0]: no file matches")


def test_grid_runs_resumes_and_reports_from_the_store_alone(smoke_checkpoints, tmp_path):
    paths = [str(smoke_checkpoints["softmax"]), str(smoke_checkpoints["bilateral+boost"])]
    spec = write_spec(tmp_path, paths, NOISE_GRID)
    out = tmp_path / "out"
    first = invoke(out, "batch", str(spec))
    assert first.exit_code == 0, first.output
    assert "softmax" in first.output and "bilateral+boost" in first.output and "strength=0.4" in first.output
    with ResultStore.for_run(out, "grid") as store:
        rows = store.rows()
    assert len(rows) == 2 * (1 + 2 * 2)  # per checkpoint: clean accuracy, then accuracy + success rate per strength
    assert {row.n for row in rows if row.metric == "accuracy"} == {48}

    comparison = pd.read_csv(out / "grid" / "comparison.csv")
    boosted = comparison[(comparison.variant == "bilateral+boost") & (comparison.threat == "clean")].iloc[0]
    with ResultStore.for_run(out, "grid") as store:
        baseline, variant = (store.outcomes(row.cell_key)["correct"] for row in rows if row.threat == "clean")
    only_baseline, only_variant = int(np.sum(baseline & ~variant)), int(np.sum(~baseline & variant))
    expected = binomtest(min(only_baseline, only_variant), only_baseline + only_variant).pvalue if only_baseline + only_variant else 1.0
    assert boosted.test == "mcnemar" and boosted.p_value == pytest.approx(expected)

    again = invoke(out, "batch", str(spec))
    assert again.exit_code == 0
    with ResultStore.for_run(out, "grid") as store:
        assert store.rows() == rows

    report_files = sorted(path for path in (out / "grid").iterdir() if path.suffix in {".csv", ".md", ".json", ".png"})
    assert {path.name for path in report_files} == {"results.csv", "results_wide.csv", "results.md", "results.json",
                                                    "comparison.csv", "verdicts.csv", "plot_noise.png"}
    before = {path.name: path.read_bytes() for path in report_files}
    for path in report_files:
        path.unlink()
    report = invoke(out, "report", "--plot", str(out / "grid"))
    assert report.exit_code == 0, report.output
    assert "Δ" in report.output and "p=" in report.output
    assert {path.name: path.read_bytes() for path in report_files} == before


def test_recompute_deletes_and_recomputes_only_the_named_threats_cells(smoke_checkpoints, tmp_path):
    spec = write_spec(tmp_path, [str(smoke_checkpoints["softmax"])], NOISE_GRID)
    out = tmp_path / "out"
    assert invoke(out, "batch", str(spec)).exit_code == 0
    with ResultStore.for_run(out, "grid") as store:
        before = {row.cell_key: row for row in store.rows()}
        first_seq = dict(store._connection.execute("SELECT cell_key, seq FROM cells").fetchall())
    unknown = invoke(out, "batch", "--recompute", "fgsm", str(spec))
    assert unknown.exit_code == 2 and unknown.output.startswith("error: recompute: fgsm is not a threat of this spec")
    assert unknown.output.count("\n") == 1
    again = invoke(out, "batch", "--recompute", "noise", str(spec))
    assert again.exit_code == 0, again.output
    with ResultStore.for_run(out, "grid") as store:
        after = {row.cell_key: row for row in store.rows()}
        seq = dict(store._connection.execute("SELECT cell_key, seq FROM cells").fetchall())
        assert store.problems() == []
    assert after.keys() == before.keys()
    noise = {key for key, row in before.items() if row.threat == "noise"}
    assert len(noise) == 2 and all(seq[key] > max(first_seq.values()) for key in noise)  # stored again, last
    assert all(seq[key] == first_seq[key] and after[key] == before[key] for key in before.keys() - noise)  # kept as they were
    assert all(after[key].value == before[key].value for key in noise)  # the same numbers: the noise is seeded
    changed = write_spec(tmp_path, [str(smoke_checkpoints["softmax"])], NOISE_GRID.replace("0.4", "0.3"))
    assert invoke(out, "batch", "--recompute", "noise", str(changed)).exit_code == 0
    with ResultStore.for_run(out, "grid") as store:
        strengths = sorted(row.params["strength"] for row in store.rows() if row.threat == "noise")
    assert strengths == [0.1, 0.1, 0.3, 0.3]  # the stale 0.4 cell is gone with the others (accuracy, success rows)


def test_report_of_a_missing_run_is_one_line(tmp_path):
    result = invoke(tmp_path, "report", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and result.output.startswith(f"error: no results in {tmp_path / 'nothing'}")
    assert not (tmp_path / "nothing").exists()


def test_mcnemar_matches_the_exact_binomial_by_hand():
    baseline = np.array([True, True, True, False, True])
    variant = np.array([False, False, False, False, True])
    assert mcnemar_p_value(baseline, variant) == pytest.approx(2 * 0.5**3)
    assert mcnemar_p_value(baseline, baseline) == 1.0


def test_report_compares_on_the_same_examples_and_aggregates_training_seeds(smoke_checkpoints, tmp_path):
    second_seed = train("mnist5k", "softmax", "smoke", tmp_path / "softmax-seed1", seed=1).checkpoint
    paths = [str(smoke_checkpoints["softmax"]), str(second_seed), str(smoke_checkpoints["bilateral"])]
    out = tmp_path / "out"
    assert invoke(out, "batch", str(write_spec(tmp_path, paths, '[[threats]]\nname = "clean"\n'))).exit_code == 0
    with ResultStore.for_run(out, "grid") as store:
        rows = store.rows()
    comparison = pd.read_csv(out / "grid" / "comparison.csv").set_index("variant")
    softmax_values = [row.value for row in rows if row.variant == "softmax"]
    assert comparison.loc["softmax", "n_checkpoints"] == 2
    assert comparison.loc["softmax", "value"] == pytest.approx(np.mean(softmax_values))
    assert comparison.loc["softmax", "std"] == pytest.approx(np.std(softmax_values, ddof=1))
    bilateral = next(row for row in rows if row.variant == "bilateral")
    assert comparison.loc["bilateral", "delta"] == pytest.approx(bilateral.value - np.mean(softmax_values))
    assert np.isnan(comparison.loc["bilateral", "p_value"])  # no paired test against two baseline checkpoints


def test_a_random_attack_is_keyed_by_the_batch_size_it_runs_with_through_every_door(smoke_checkpoints, tmp_path):
    import robustbench_bilateral as rb

    path = str(smoke_checkpoints["softmax"])
    pgd = '[[threats]]\nname = "pgd"\neps = "4/255"\nsteps = 2\n'
    attack = invoke(tmp_path, "attack", "--pgd", "--eps", "4/255", "--steps", "2", "--n-examples", "48", "--run", "attack", path)
    assert attack.exit_code == 0, attack.output
    batch = invoke(tmp_path, "batch", str(write_spec(tmp_path, [path], pgd + pgd + "batch_size = 64\n", run="batch")))
    assert batch.exit_code == 0, batch.output
    assert "pgd" in batch.output and "softmax" in batch.output and "wrote:" in batch.output  # the report's table
    rb.evaluate(path, threats=[("pgd", {"eps": "4/255", "steps": 2})], n_examples=48, out=tmp_path, run="api")

    def pgd_rows(run: str) -> list[tuple[str, dict]]:
        with ResultStore.for_run(tmp_path, run) as store:
            return [(row.cell_key, row.params) for row in store.rows() if row.threat == "pgd" and row.metric == "accuracy"]

    (from_attack,), (from_api,) = pgd_rows("attack"), pgd_rows("api")
    from_spec, own = pgd_rows("batch")
    assert from_attack == from_spec == from_api and from_attack[1]["batch_size"] == 256
    assert own[1] == {**from_attack[1], "batch_size": 64} and own[0] != from_attack[0]


def test_a_weak_pgd_beside_fgsm_in_a_spec_is_flagged_on_the_stored_rows_and_in_results_csv(smoke_checkpoints, tmp_path):
    """PGD of one step of size 1e-4 from a random start is little more than noise: FGSM at the same eps beats it."""
    threats = ('[[threats]]\nname = "clean"\n[[threats]]\nname = "fgsm"\neps = "8/255"\n'
               '[[threats]]\nname = "pgd"\neps = "8/255"\nsteps = 1\nstep_size = 0.0001\n')
    spec = write_spec(tmp_path, [str(smoke_checkpoints["softmax"])], threats)
    out = tmp_path / "out"
    result = invoke(out, "batch", str(spec))
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(out, "grid") as store:
        rows = store.rows()
    correct = {row.threat: row.n_correct for row in rows if row.metric == "accuracy"}
    assert correct["pgd"] > correct["fgsm"]
    assert {row.threat: row.flags for row in rows} == {"clean": (), "fgsm": (), "pgd": ("pgd>fgsm",)}
    tidy = pd.read_csv(out / "grid" / "results.csv")
    assert set(tidy.loc[tidy.threat == "pgd", "sanity_flags"]) == {'["pgd>fgsm"]'}
    assert set(tidy.loc[tidy.threat != "pgd", "sanity_flags"]) == {"[]"}
    assert "warning: softmax: pgd>fgsm on pgd eps=8/255 (PGD accuracy above FGSM at the same eps" in " ".join(result.output.split())
    assert invoke(out, "verify", str(out / "grid")).exit_code == 0
