"""``--compile``: a compiled model gives the eager model's predictions, and its rows say it was compiled."""

from __future__ import annotations

import pytest

from robustbench_bilateral.results import ResultStore


@pytest.mark.slow
def test_a_compiled_model_gives_the_eager_counts_and_its_rows_say_so(smoke_checkpoints, tmp_path, run_bilat):
    checkpoint = str(smoke_checkpoints["softmax"])
    counts = {}
    for name, flags in (("eager", []), ("compiled", ["--compile"])):
        out = tmp_path / name
        code, _, err = run_bilat("--out", str(out), *flags, "attack", "--fgsm", "--eps", "4/255", "--n-examples", "64",
                                 checkpoint)
        assert code == 0, err
        with ResultStore.for_run(out, "main") as store:
            rows = [row for row in store.rows() if row.metric == "accuracy"]
        counts[name] = sorted((row.threat, row.n_correct) for row in rows)
        assert all(row.versions.get("compiled") is (True if flags else None) for row in rows)
    assert counts["compiled"] == counts["eager"]
