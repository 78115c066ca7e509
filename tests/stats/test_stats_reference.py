"""A pre-specified reference model: its paired tests are the confirmatory family, the other pairs exploratory."""
import numpy as np
import pandas as pd
import pytest

from cardio_stats import StatsError, adjust_pvalues, evaluate_predictions


def _predictions(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = {"transfer": y + rng.normal(0, 0.8, n), "svm": y + rng.normal(0, 1.5, n),
              "guideline": rng.normal(0, 1, n), "forest": y + rng.normal(0, 1.2, n)}
    return pd.concat([pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                                    "fold": 0, "model": m, "task": "crt", "kind": "binary", "y_true": y,
                                    "y_score": 1 / (1 + np.exp(-s))}) for m, s in scores.items()])


def test_reference_family_is_adjusted_on_its_own_and_the_rest_is_exploratory():
    _, tests = evaluate_predictions(_predictions(), n_resamples=200, reference="transfer")
    ref = [t for t in tests if t["extra"]["family"] == "reference"]
    other = [t for t in tests if t["extra"]["family"] == "exploratory"]
    assert len(ref) == 3 and len(other) == 3
    assert all(t["model_a"] == "transfer" for t in ref)  # the reference is always model A: ΔAUC = reference − other
    raw = [t["p_value"] for t in ref]
    assert [t["p_adjusted"] for t in ref] == pytest.approx(list(adjust_pvalues(raw, "holm")))
    assert "pre-specified reference" in ref[0]["adjustment"] and "3 " in ref[0]["adjustment"]
    assert "exploratory" in other[0]["adjustment"]


def test_no_reference_tests_every_pair_as_one_family():
    _, tests = evaluate_predictions(_predictions(), n_resamples=200)
    assert len(tests) == 6 and {t["extra"]["family"] for t in tests} == {"all pairs"}
    raw = [t["p_value"] for t in tests]
    assert [t["p_adjusted"] for t in tests] == pytest.approx(list(adjust_pvalues(raw, "holm")))


def test_reference_by_task_and_unknown_reference():
    pred = _predictions()
    _, tests = evaluate_predictions(pred, n_resamples=200, reference={"crt": "svm"})
    assert {t["model_a"] for t in tests if t["extra"]["family"] == "reference"} == {"svm"}
    _, tests = evaluate_predictions(pred, n_resamples=200, reference="resnet")  # a run without the reference
    assert {t["extra"]["family"] for t in tests} == {"all pairs"}
    assert all("'resnet' (stats.reference) made no prediction" in t["warnings"][-1] for t in tests)
    with pytest.raises(StatsError, match="reference model 'resnet'.*made no prediction"):
        evaluate_predictions(pred, n_resamples=200, reference={"crt": "resnet"})


def test_config_checks_the_reference():
    pytest.importorskip("cardio", reason="the cardio kernel is not installed (a stats-only venv)")
    from cardio import CardioError
    from cardio.config import core_defaults, validate

    config = core_defaults()
    config["stats"]["reference"] = ["transfer"]
    with pytest.raises(CardioError, match="stats.reference"):
        validate(config)
    config["stats"]["reference"] = {"crt": "transfer"}
    assert validate(config)["stats"]["reference"] == {"crt": "transfer"}


def test_the_reference_family_can_span_every_task():
    """perfusion_polar claims its ResNet wins on each risk factor: those tests are one family, not one per task."""
    one, two = _predictions(seed=1), _predictions(seed=2).assign(task="lvef")
    pred = pd.concat([one, two])
    _, per_task = evaluate_predictions(pred, n_resamples=200, reference="transfer")
    _, across = evaluate_predictions(pred, n_resamples=200, reference="transfer", across_tasks=True)
    ref = [t for t in across if t["extra"]["family"] == "reference"]
    assert len(ref) == 6 and all("6 comparisons" in t["adjustment"] and "every task" in t["adjustment"] for t in ref)
    assert [t["p_adjusted"] for t in ref] == pytest.approx(list(adjust_pvalues([t["p_value"] for t in ref], "holm")))
    # the exploratory pairs stay one family per task
    assert {t["adjustment"] for t in across if t["extra"]["family"] == "exploratory"} == {
        t["adjustment"] for t in per_task if t["extra"]["family"] == "exploratory"}
