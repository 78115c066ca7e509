"""The permutation test of the screen -> select -> fit -> LR-test recipe, the configurable synthetic truth and label."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_spect_polar")

import cardio_stats as stats
from cardio import CardioError
from cardio_spect_polar.analysis import fit_response_models
from cardio_spect_polar.cohort import load, simulate_clinical
from cardio_spect_polar.selection import permutation_test, pipeline_lr_statistics


def _data(seed: int, signal: float = 0.0, n: int = 102):
    rng = np.random.default_rng(seed)
    clin, conv, ae = rng.normal(size=(n, 6)), rng.normal(size=n), rng.normal(size=(n, 64))
    y = (rng.random(n) < 1 / (1 + np.exp(-(signal * ae[:, 7] + 0.8 * clin[:, 0])))).astype(float)
    return clin, conv, ae, y


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batched_recipe_equals_statsmodels(seed):
    clin, conv, ae, y = _data(seed)
    cn, an = [f"c{i}" for i in range(6)], [f"ae{i}" for i in range(64)]
    df = pd.DataFrame(np.c_[clin, conv, conv, ae], columns=cn + ["psd", "pbw"] + an).assign(r=y.astype(int))
    fitted = fit_response_models(df, "r", cn, an)
    lr = stats.likelihood_ratio_test(fitted.models["clinical+psd"], fitted.models["clinical+psd+ae"])
    ours = pipeline_lr_statistics(clin, conv, ae, y[None])
    assert ours["statistic"][0] == pytest.approx(lr.statistic, rel=1e-5, abs=1e-6)
    assert an[int(ours["best_ae"][0])] == fitted.ae_selected[0]
    assert int(ours["n_clinical"][0]) == len(fitted.clinical_selected)


def test_permutation_test_null_and_signal():
    clin, conv, ae, y = _data(4)
    null = permutation_test(clin, conv, ae, y, permutations=300, seed=0)
    clin, conv, ae, y = _data(5, signal=1.5)
    planted = permutation_test(clin, conv, ae, y, permutations=300, seed=0)
    assert null["p_value"] > 0.05 and planted["p_value"] < 0.01
    assert 1 / 301 <= planted["p_value"] <= 1


def test_dyssynchrony_effect_is_configurable():
    _, t0 = simulate_clinical(4000, seed=1, truth={"dyssynchrony_per_sd": 0.0, "late_lateral": 0.0})
    _, t1 = simulate_clinical(4000, seed=1, truth={"dyssynchrony_per_sd": 1.0, "late_lateral": 0.0})
    from sklearn.metrics import roc_auc_score
    c0, _ = simulate_clinical(4000, seed=1, truth={"dyssynchrony_per_sd": 0.0, "late_lateral": 0.0})
    c1, _ = simulate_clinical(4000, seed=1, truth={"dyssynchrony_per_sd": 1.0, "late_lateral": 0.0})
    assert roc_auc_score(c0["responder"], t0["dyssynchrony"]) == pytest.approx(0.5, abs=0.03)
    assert roc_auc_score(c1["responder"], t1["dyssynchrony"]) > 0.65
    with pytest.raises(CardioError, match="spect_polar.synthetic.truth"):
        simulate_clinical(20, truth={"psd_effect": 1.0})


def _folder(root, clinical):
    """A cohort folder: clinical.csv and a ready phase polar map per patient (volumes/<id>.npy)."""
    clinical.to_csv(root / "clinical.csv", index=False)
    (root / "volumes").mkdir()
    for i, pid in enumerate(clinical["patient_id"]):  # each patient's own map (one file under two is refused)
        np.save(root / "volumes" / f"{pid}.npy", np.full((16, 32), 120.0 + i))


def _config(root, label, clinical):
    return {"label": label, "cohort": {"dir": str(root), "allow_outside_paths": False},
            "spect_polar": {"clinical_csv": None, "outcomes": [], "min_esv_ml": None,
                            "analysis": {"clinical": clinical}, "phase": {"rings": 16, "sectors": 32}}}


def test_configured_label_is_used(tmp_path, cpu_context):
    clinical, _ = simulate_clinical(12, seed=0)
    # no `responder`, nor what the papers' rule derives it from (cardio_response.volumetric)
    clinical = clinical.rename(columns={"responder": "crt_response"}).drop(
        columns=["lvesv_reduction_pct", "esv_followup"], errors="ignore")
    _folder(tmp_path, clinical)
    cfg = _config(tmp_path, "crt_response", ["age", "qrs_ms"])
    cohort = load(cfg, cpu_context())
    assert cohort.label == "crt_response" and set(cohort.table["crt_response"]) <= {0, 1}
    assert cohort.targets == ("crt_response",) and cohort.level == "patient"
    # the table has no `responder` column: read as unlabelled, and a run stops naming it and the columns there are
    from cardio.data.checks import cohort_problems

    wrong = {**cfg, "label": "responder"}
    unlabelled = load(wrong, cpu_context())
    problems = cohort_problems(unlabelled, {**wrong, "cv": {"method": "kfold", "folds": 2}})
    assert any("['responder'] hold no value at all" in p and "crt_response" in p for p in problems), problems


def test_constant_label_is_one_line(tmp_path, cpu_context):
    clinical, _ = simulate_clinical(12, seed=0)
    _folder(tmp_path, clinical.assign(responder=1).drop(columns=["lvesv_reduction_pct", "esv_followup"],
                                                          errors="ignore"))  # nothing for the rule to contradict
    cfg = _config(tmp_path, "responder", ["age"])
    with pytest.raises(CardioError, match="label column 'responder' is constant") as err:
        load(cfg, cpu_context())
    assert "\n" not in str(err.value)
