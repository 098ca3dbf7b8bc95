"""The sanity checks across cells on real evaluations of smoke checkpoints: above chance at a huge eps,
a gradient-free attack beating the white-box ones, checks over every stored row of a run whichever
command stored it, and a report that shows the flags its rows imply without writing the store."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import cli
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.engine import Clean, Engine
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.results.sanity import (
    ABOVE_CHANCE,
    CHANCE_MARGIN,
    FLAG_MEANINGS,
    PGD_ABOVE_FGSM,
    WHITE_BOX_ABOVE_GRADIENT_FREE,
    chance_limit,
    class_counts,
    cross_cell_flags,
)
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.threats import build_threat

N = 48


def invoke(out, *args: str):
    return CliRunner().invoke(cli, ["--out", str(out), *args], terminal_width=200)


def flat(text: str) -> str:
    """Terminal output with every run of whitespace (line wraps included) as one space."""
    return " ".join(text.split())


def accuracy(rows, threat: str):
    return next(row for row in rows if row.threat == threat and row.metric == "accuracy")


def flags_by_threat(rows) -> dict[str, set[tuple[str, ...]]]:
    found: dict[str, set[tuple[str, ...]]] = {}
    for row in rows:
        found.setdefault(row.threat, set()).add(row.flags)
    return found


def unchecked_run(path: str, threats, out, run: str, n: int = N):
    """Rows of ``threats`` stored by the engine alone, as a run written before the checks ran: no cross-cell flags."""
    cells = plan_cells([describe_checkpoint(path)], threats, n_examples=n)
    with ResultStore.for_run(out, run) as store:
        return Engine(store, "cpu", n, run).run(cells, load_checkpoint, load_split)


def test_an_attack_that_does_not_move_the_images_at_a_huge_eps_is_above_chance(smoke_checkpoints, tmp_path):
    """PGD with step size 0 and no random start leaves the images as they are: at eps 0.6 its accuracy
    is the clean one, far above chance; FGSM at the same eps moves every pixel by 0.6 and is not flagged."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    still = build_threat("pgd", eps=0.6, steps=1, step_size=0.0, random_start=False, batch_size=N)
    threats = [Clean(), still, build_threat("fgsm", eps=0.6)]
    rows = run_cells(plan_cells([info], threats, n_examples=N), out=tmp_path, batch_size=N)
    assert accuracy(rows, "pgd").n_correct == accuracy(rows, "clean").n_correct
    assert accuracy(rows, "pgd").value > 1 / 2 + CHANCE_MARGIN, "the smoke model should be far above chance"
    assert accuracy(rows, "fgsm").value <= 1 / 2 + CHANCE_MARGIN
    assert flags_by_threat(rows) == {"clean": {()}, "pgd": {(PGD_ABOVE_FGSM, ABOVE_CHANCE)}, "fgsm": {()}}
    assert ABOVE_CHANCE in (tmp_path / "main" / "results.csv").read_text()


def test_the_chance_level_uses_the_classes_a_row_of_the_checkpoint_records(smoke_checkpoints, tmp_path):
    """A row without ``n_classes`` is held to chance 1/2; once an AutoAttack row of the same checkpoint
    records its 10 classes, to 1/10."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    threats = [build_threat("fgsm", eps=0.6), build_threat("autoattack", eps=0.6, n_iter=1, n_queries=10, batch_size=8)]
    rows = run_cells(plan_cells([info], threats, n_examples=8), out=tmp_path, batch_size=8)
    fgsm, auto = accuracy(rows, "fgsm"), accuracy(rows, "autoattack")
    assert auto.params["n_classes"] == 10 and class_counts(rows) == {info.sha256: 10}
    assert chance_limit(fgsm, {}) == pytest.approx(1 / 2 + 0.1)
    assert chance_limit(fgsm, class_counts(rows)) == pytest.approx(1 / 10 + 0.1)
    assert chance_limit(auto, {}) == pytest.approx(1 / 10 + 0.1)
    assert auto.value <= 1 / 10 + 0.1 and auto.flags == ()
    small = build_threat("fgsm", eps=8 / 255)
    assert chance_limit(run_cells(plan_cells([info], [small], n_examples=8), out=tmp_path, batch_size=8)[0], {}) is None


def test_square_beating_a_weak_white_box_attack_flags_the_white_box_rows(smoke_checkpoints, tmp_path):
    """PGD of step size 0 is only its random start; Square at the same eps is far stronger."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    eps, n = 16 / 255, 16
    weak = build_threat("pgd", eps=eps, steps=1, step_size=0.0, batch_size=n)
    square = build_threat("square", eps=eps, n_queries=30, batch_size=n)
    rows = run_cells(plan_cells([info], [Clean(), weak, square], n_examples=n), out=tmp_path, batch_size=n)
    assert accuracy(rows, "square").value < accuracy(rows, "pgd").value - 0.002
    assert flags_by_threat(rows) == {"clean": {()}, "pgd": {(WHITE_BOX_ABOVE_GRADIENT_FREE,)}, "square": {()}}


def test_the_checks_need_the_same_evaluation_and_radius(smoke_checkpoints, tmp_path):
    """Square at another eps, or FGSM on another n, is never compared with the weak PGD."""
    info = describe_checkpoint(str(smoke_checkpoints["softmax"]))
    n = 16
    weak = build_threat("pgd", eps=8 / 255, steps=1, step_size=0.0, batch_size=n)
    square = build_threat("square", eps=16 / 255, n_queries=30, batch_size=n)
    rows = run_cells(plan_cells([info], [weak, square], n_examples=n), out=tmp_path, batch_size=n)
    rows += run_cells(plan_cells([info], [build_threat("fgsm", eps=8 / 255)], n_examples=n - 1), out=tmp_path, batch_size=n)
    assert cross_cell_flags(rows) == {} and {row.flags for row in rows} == {()}


def test_an_attack_completes_a_pair_a_batch_started(smoke_checkpoints, tmp_path):
    """A batch stores a weak PGD alone; `attack --fgsm` on the run adds its FGSM twin and the PGD row of
    the batch gets the flag: the checks see every stored row of the run."""
    path = str(smoke_checkpoints["softmax"])
    spec = tmp_path / "pair.toml"
    spec.write_text(f'n_examples = {N}\nbatch_size = {N}\ncheckpoints = ["{path}"]\n[[threats]]\nname = "pgd"\n'
                    'eps = "16/255"\nsteps = 1\nstep_size = 0.0\n', encoding="utf-8")
    out = tmp_path / "out"
    assert invoke(out, "batch", str(spec)).exit_code == 0
    with ResultStore.for_run(out, "pair") as store:
        assert {row.flags for row in store.rows()} == {()}
    attacked = invoke(out, "attack", "--fgsm", "--eps", "16/255", "--run", "pair", "--n-examples", str(N), path)
    assert attacked.exit_code == 0, attacked.output
    with ResultStore.for_run(out, "pair") as store:
        rows = store.rows()
    assert flags_by_threat(rows) == {"pgd": {(PGD_ABOVE_FGSM,)}, "fgsm": {()}, "clean": {()}}
    assert f"warning: softmax: {PGD_ABOVE_FGSM} on pgd eps=16/255 ({FLAG_MEANINGS[PGD_ABOVE_FGSM]})" in flat(attacked.output)
    assert invoke(out, "verify", str(out / "pair")).exit_code == 0


@pytest.mark.parametrize("command", [["evaluate"], ["contaminate", "--corruptions", "fog", "--severities", "1"]])
def test_any_evaluating_command_checks_the_rows_another_stored(command, smoke_checkpoints, tmp_path):
    """FGSM and a PGD of step size 0 stored without the checks; the next command on the run flags the PGD rows."""
    path = str(smoke_checkpoints["softmax"])
    eps = 16 / 255
    weak = build_threat("pgd", eps=eps, steps=1, step_size=0.0, batch_size=N)
    stored = unchecked_run(path, [build_threat("fgsm", eps=eps), weak], tmp_path, "main")
    assert accuracy(stored, "pgd").n_correct > accuracy(stored, "fgsm").n_correct
    assert {row.flags for row in stored} == {()}
    result = invoke(tmp_path, *command, "--n-examples", str(N), path)
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path, "main") as store:
        rows = store.rows()
    assert flags_by_threat(rows)["pgd"] == {(PGD_ABOVE_FGSM,)} and flags_by_threat(rows)["fgsm"] == {()}
    assert f"warning: softmax: {PGD_ABOVE_FGSM} on pgd eps=16/255 ({FLAG_MEANINGS[PGD_ABOVE_FGSM]})" in flat(result.output)
    tidy = pd.read_csv(tmp_path / "main" / "results.csv")
    assert set(tidy.loc[tidy.threat == "pgd", "sanity_flags"]) == {f'["{PGD_ABOVE_FGSM}"]'}


def test_report_shows_the_flags_the_rows_imply_and_leaves_the_store_as_it_is(smoke_checkpoints, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    eps = 16 / 255
    weak = build_threat("pgd", eps=eps, steps=1, step_size=0.0, batch_size=N)
    unchecked_run(path, [Clean(), build_threat("fgsm", eps=eps), weak], tmp_path, "old")
    run_dir = tmp_path / "old"
    with ResultStore.for_run(tmp_path, "old") as store:
        before = store.rows()
    report = invoke(tmp_path, "report", str(run_dir))
    assert report.exit_code == 0, report.output
    text = flat(report.output)
    assert f"warning: softmax: {PGD_ABOVE_FGSM} on pgd eps=16/255 ({FLAG_MEANINGS[PGD_ABOVE_FGSM]})" in text
    assert f"warning: stored flags differ in {run_dir}: softmax ({path}) pgd eps=16/255" in text
    assert f"lacks {PGD_ABOVE_FGSM}, which the rows imply" in text
    with ResultStore.for_run(tmp_path, "old") as store:
        assert store.rows() == before, "a report never writes the store"
    tidy = pd.read_csv(run_dir / "results.csv")
    assert set(tidy.loc[tidy.threat == "pgd", "sanity_flags"]) == {f'["{PGD_ABOVE_FGSM}"]'}

    assert invoke(tmp_path, "evaluate", "--run", "old", "--n-examples", str(N), path).exit_code == 0
    again = invoke(tmp_path, "report", str(run_dir))
    assert "stored flags differ" not in again.output and f"warning: softmax: {PGD_ABOVE_FGSM}" in flat(again.output)
    assert invoke(tmp_path, "verify", str(run_dir)).exit_code == 0


def test_a_stored_flag_the_rows_no_longer_imply_is_named_by_the_report(smoke_checkpoints, tmp_path):
    """The FGSM cell a PGD cell was compared with is deleted (as resuming deletes an inconsistent cell):
    the report keeps the stored flag and says the rows no longer imply it."""
    path = str(smoke_checkpoints["softmax"])
    eps = 16 / 255
    weak = build_threat("pgd", eps=eps, steps=1, step_size=0.0, batch_size=N)
    info = describe_checkpoint(path)
    rows = run_cells(plan_cells([info], [build_threat("fgsm", eps=eps), weak], n_examples=N), out=tmp_path, batch_size=N)
    assert flags_by_threat(rows)["pgd"] == {(PGD_ABOVE_FGSM,)}
    fgsm_key = accuracy(rows, "fgsm").cell_key
    with ResultStore.for_run(tmp_path, "main") as store:
        kept = [row for row in store.rows() if row.cell_key != fgsm_key]
        outcomes = {row.cell_key: store.outcomes(row.cell_key) for row in kept}
    with ResultStore.for_run(tmp_path, "pruned") as store:
        for key in dict.fromkeys(row.cell_key for row in kept):
            store.write_cell(key, [row for row in kept if row.cell_key == key], outcomes[key])
    report = invoke(tmp_path, "report", str(tmp_path / "pruned"))
    assert report.exit_code == 0, report.output
    text = flat(report.output)
    assert f"holds {PGD_ABOVE_FGSM}, which the rows no longer imply" in text
    assert f"warning: softmax: {PGD_ABOVE_FGSM} on pgd eps=16/255" in text
