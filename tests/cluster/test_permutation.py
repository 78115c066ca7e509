"""cardio sweep --permutation-of: a run tested against chance by whole runs on permuted labels
(cardio_cluster.permutation). Positive control (the toy's planted signal) and null control (signal 0), the
p-value's arithmetic, and the checks that refuse a run the sweep's runs are not permutations of."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio_cluster import permutation, sweep
from cardio_testing.harness import invoke

QUICK = ("--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "report.figures=false", "--set",
         "final_model=false", "--set", "stats.n_resamples=100", "--set", "explain=false")
PERMUTED = ("--grid", "cohort.permute_labels=true", "--seeds", "1-19")  # 19 runs: the smallest p is 0.05
NO_SIGNAL = ("--set", "data.signal=0")


def _cardio(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr[-3000:]
    return result.stderr


def _tested(toy_env: Path, name: str, *sets: str) -> tuple[Path, pd.DataFrame]:
    _cardio("run", "--plugin", "toy", *QUICK, *sets, "--out", f"{name}-run")
    _cardio("sweep", "--plugin", "toy", *QUICK, *sets, *PERMUTED, "--permutation-of", f"{name}-run",
            "--out", f"{name}-null")
    return toy_env / f"{name}-null", pd.read_csv(toy_env / f"{name}-null" / "permutation.csv")


def test_positive_control_beats_every_permutation(toy_env):
    out, table = _tested(toy_env, "planted")
    (row,) = table.itertuples(index=False)
    assert (row.model, row.task, row.n_permutations) == ("mlp", "label", 19)
    assert row.p == pytest.approx(1 / 20) and row.p_holm == pytest.approx(1 / 20), row
    assert row.observed > row.null_q95 and abs(row.null_mean - 0.5) < 0.05, row
    text = (out / "summary.md").read_text()
    assert "## Permutation test against chance" in text and "the smallest possible p is 0.05" in text
    assert sweep.OPTIMISM not in text and "## Choosing the setting" not in text  # one setting: nothing chosen
    assert (out / "permutation.png").stat().st_size > 10_000


def test_null_control_is_not_significant(toy_env):
    _, table = _tested(toy_env, "null", *NO_SIGNAL)
    (row,) = table.itertuples(index=False)
    assert row.n_permutations == 19 and row.p > 0.05, row


def test_a_run_the_sweep_does_not_permute_is_refused_before_any_run(toy_env):
    _cardio("run", "--plugin", "toy", *QUICK, *NO_SIGNAL, "--set", "model.hidden=8", "--out", "other-run")
    result = invoke("sweep", "--plugin", "toy", *QUICK, *PERMUTED, "--permutation-of", "other-run",
                    "--out", "other-null")
    assert result.exit_code != 0
    line = result.stderr.strip().splitlines()[-1]
    assert "other-run" in line and "data.signal is 0" in line and "model.hidden is 8" in line, line
    assert not (toy_env / "other-null" / "cohort.permute_labels=true").exists()
    kept = invoke("sweep", "--plugin", "toy", *QUICK, "--grid", "cohort.permute_labels=false", "--seeds", "1",
                  "--permutation-of", "other-run", "--out", "kept-null")
    assert kept.exit_code != 0 and "give it --grid cohort.permute_labels=true" in kept.stderr
    two = invoke("sweep", "--plugin", "toy", *QUICK, "--grid", "cohort.permute_labels=true", "model.hidden=8,16",
                 "--seeds", "1", "--permutation-of", "other-run", "--out", "two-null")
    assert two.exit_code != 0 and "must have one setting" in two.stderr
    backwards = invoke("sweep", "--plugin", "toy", *QUICK, "--grid", "cohort.permute_labels=true", "--seeds", "9-1",
                       "--out", "backwards")
    assert backwards.exit_code != 0 and "9-1: the first seed is above the last" in backwards.stderr


def test_p_value_counts_ties_and_direction_and_holm_adjusts_the_family():
    observed = pd.DataFrame({"model": ["a", "b"], "task": ["t", "t"], "value": [0.80, 0.60]})
    null = [pd.DataFrame({"model": ["a", "b"], "task": ["t", "t"], "value": [v, w]})
            for v, w in [(0.5, 0.6), (0.7, 0.5), (0.4, 0.65), (np.nan, 0.5)]]
    table = permutation.permutation_test(observed, null, higher_is_better=True)
    # a: 3 finite permutations (the NaN dropped), none as good: 1 / 4; b: 4, one tie and one above: (1 + 2) / 5
    assert table["n_permutations"].tolist() == [3, 4]
    assert table["p"].tolist() == pytest.approx([0.25, 0.6])
    assert table["p_holm"].tolist() == pytest.approx([2 * 0.25, 0.6])  # Holm: 2 x the smaller, then monotone
    lower = permutation.permutation_test(observed.assign(value=[0.45, 0.45]), null, higher_is_better=False)
    assert lower["p"].tolist() == pytest.approx([(1 + 1) / 4, (1 + 0) / 5])
