"""The paper's analysis (in-sample) and its cross-validated twin (pipeline.py): tables, tests, and no leakage."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("cardio_spect_polar")

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio import CardioError, Features
from cardio.data import make_folds
from cardio_spect_polar import analysis, pipeline
from cardio_spect_polar.settings import Analysis
from cardio_testing.harness import train_settings

CLINICAL = ["age", "sex", "qrs_ms", "lvef"]
CATEGORICAL = ["sex"]
CFG = {"p_enter": 0.1, "p_significant": 0.05, "max_ae_features": 1, "clinical": CLINICAL,
       "categorical": CATEGORICAL}
AE_CFG = {"hidden": 16, "features": 64, "activation": "relu", "iterations": 30, "batch_size": None, "lr": 3e-3,
          "weight_decay": 0.0}


def study_table(n: int = 80, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients whose response depends on QRS and on a spatial pattern of their phase map."""
    rng = np.random.default_rng(seed)
    pattern = rng.normal(size=n)
    qrs = rng.normal(155, 20, n)
    logit = 1.5 * pattern + 0.04 * (qrs - 155)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    table = pd.DataFrame({"record_id": [f"R{i}" for i in range(n)], "patient_id": [f"P{i:03d}" for i in range(n)],
                          "responder": y, "age": rng.normal(62, 12, n).round(),
                          "sex": (rng.random(n) < 0.7).astype(int),
                          "qrs_ms": qrs.round(), "lvef": rng.normal(29, 6, n).round(1),
                          "psd": rng.normal(55, 15, n), "pbw": rng.normal(190, 60, n)})
    grid = np.linspace(0, 1, 8 * 16).reshape(8, 16)
    maps = 140 + 40 * pattern[:, None, None] * grid[None] + rng.normal(0, 3, (n, 8, 16))
    return table, maps.reshape(n, -1).astype(np.float32)


def test_response_models_select_on_their_rows_and_predict(ctx):
    table, _ = study_table()
    table["ae_01"] = table["responder"] + np.random.default_rng(1).normal(0, 0.6, len(table))
    table["ae_02"] = np.random.default_rng(2).normal(size=len(table))
    fitted = analysis.fit_response_models(table, "responder", CLINICAL, ["ae_01", "ae_02"], max_ae=1)
    assert list(fitted.screen.columns[:6]) == ["variable", "n", "or", "ci_low", "ci_high", "p_value"]
    assert set(fitted.screen["variable"]) == set(CLINICAL + ["psd", "pbw", "ae_01", "ae_02"])
    assert fitted.ae_selected == ["ae_01"] and not fitted.ae_forced
    assert set(fitted.models) == {"clinical+ae", "clinical+psd", "clinical+pbw", "clinical+psd+ae", "clinical+pbw+ae"}
    assert fitted.variables["clinical+psd"] == fitted.clinical_selected + ["psd"]
    assert fitted.patients == table["patient_id"].tolist()
    scores = fitted.predict(table)
    assert all(s.shape == (len(table),) and ((s > 0) & (s < 1)).all() for s in scores.values())


def test_paper_analysis_tables_figures_and_lr_tests(ctx, tmp_path):
    table, _ = study_table(90, seed=3)
    rng = np.random.default_rng(4)
    for j in range(1, 7):
        table[f"ae_{j:02d}"] = rng.normal(size=len(table)) + (1.2 * table["responder"] if j == 3 else 0)
    cols = [f"ae_{j:02d}" for j in range(1, 7)]
    res = analysis.paper_analysis(table, "responder", CLINICAL, CATEGORICAL, cols,
                                  Analysis.from_mapping(CFG, "analysis"), ctx.save_figure)
    sec = res.section
    assert "in-sample" in sec.title.lower() and "explanatory" in sec.title.lower()
    assert "optimistic" in sec.text
    t1 = sec.tables["Table 1 by responder status (in-sample)"]
    assert {"variable", "p_value", "test"} <= set(t1.columns)
    assert {"age", "qrs_ms", "psd", "pbw", "sex"} <= set(t1["variable"])
    uni = sec.tables["Univariate logistic regression (in-sample)"]
    assert list(uni.columns[:9]) == ["variable", "label", "n", "or_per_unit", "or_per_sd", "ci_low", "ci_high",
                                     "p_value", "p_holm"]
    assert (uni["p_holm"] >= uni["p_value"]).all() and uni[["p_value", "p_holm"]].notna().all().all()
    sd = table["qrs_ms"].std()
    qrs = uni.set_index("variable").loc["qrs_ms"]
    assert qrs["or_per_sd"] == pytest.approx(qrs["or_per_unit"] ** sd, rel=1e-6)
    assert len(uni) == len(CLINICAL) + 2 + len(cols)
    multi = sec.tables["Multivariate logistic models (in-sample)"]
    assert set(multi["model"]) == {"clinical+ae", "clinical+psd", "clinical+pbw", "clinical+psd+ae", "clinical+pbw+ae"}
    corr = sec.tables["Pearson correlation of significant AE features with PSD/PBW (in-sample)"]
    assert list(corr.columns) == ["ae_feature", "r_psd", "r_pbw", "p_psd", "p_pbw"]
    assert "ae_03" in set(corr["ae_feature"]) and res.fitted.ae_selected == ["ae_03"]
    lr = sec.tables["Likelihood-ratio tests (in-sample chi-square p; permutation p valid under selection)"]
    assert list(lr["full"]) == ["clinical+psd+ae", "clinical+pbw+ae"]
    assert (lr["df"] == 1).all() and (lr["p_value_in_sample"] < 0.05).all()  # ae_03 carries real signal
    # the permutation p re-runs the whole recipe: larger than the in-sample p, still small for a real signal
    assert (lr["permutations"] == 1000).all() and (lr["p_value_permutation"] < 0.05).all()
    assert (lr["p_value_permutation"] >= lr["p_value_in_sample"]).all()
    assert "Valid under selection" in sec.text
    assert {t["name"] for t in sec.tests} == {"LR test: clinical+psd+ae vs clinical+psd (in-sample)",
                                              "LR test: clinical+pbw+ae vs clinical+pbw (in-sample)"}
    aucs = sec.tables["In-sample AUC of the multivariate models"]
    assert ((aucs["ci_low"] <= aucs["auc"]) & (aucs["auc"] <= aucs["ci_high"])).all()
    names = {p.name for p in sec.figures}
    assert names == {"spect_univariate_forest.png", "spect_ae_correlation.png", "spect_roc_in_sample.png"}
    assert all(p.stat().st_size > 5000 for p in sec.figures)


def test_cross_validation_is_leak_free(ctx):
    """Inside every fold the AE, the univariate screen and the regressions see training patients only."""
    table, x = study_table(60, seed=5)
    features = Features(table, x=x, label="responder")
    config = {"spect_polar": {"autoencoder": AE_CFG, "analysis": CFG}, "train": train_settings(cpu_threads=1)}
    folds = make_folds(table, {"method": "kfold", "folds": 3, "repeats": 1, "stratify": True}, "responder", 0)
    parts, facts = [], {}
    for fold in folds:
        fold_ctx = ctx.for_fit(fold.name)
        train_ids = set(table["patient_id"].iloc[fold.train])
        test_ids = set(table["patient_id"].iloc[fold.test])
        model = pipeline.fit_phase_pipeline(features, fold.train, config, fold_ctx)
        assert set(model.ae.patients) == train_ids and not set(model.ae.patients) & test_ids
        assert set(model.response.patients) == train_ids and not set(model.response.patients) & test_ids
        assert (model.response.screen["n"] == len(fold.train)).all()
        assert all(m.n == len(fold.train) for m in model.response.models.values())
        pred = pipeline.predict_phase_pipeline(model, features, fold.test, fold_ctx)
        t = pred.table
        assert set(t["patient_id"]) == test_ids and set(t["model"]) == set(analysis.MODEL_NAMES)
        assert t["threshold"].notna().all() and "variables" not in t.columns  # the fold's choice is a model fact
        facts[fold.name] = pipeline.describe(model)
        assert all(len(v) for v in facts[fold.name]["variables"].values())
        parts.append(t.assign(fold=fold.name))
    pooled = pd.concat(parts, ignore_index=True)
    assert pooled.groupby("model")["patient_id"].nunique().eq(len(table)).all()  # every patient scored once

    # the optimism table takes the out-of-fold AUC the performance table leads with (K folds: the cross-validated
    # AUC, not the pooled DeLong one) from the core's estimates of these predictions
    estimates = [{**e, "repeat": 0} for e in stats.evaluate_predictions(pooled, n_resamples=20)[0]]
    insample = {name: {"estimate": 0.9} for name in analysis.MODEL_NAMES[:2]}
    side = analysis.optimism_table(insample, estimates, "responder")
    # (three folds: the mean of the per-fold AUCs without an interval, which needs five; the row says why)
    head = stats.headline_auc(estimates, model="clinical+ae")
    assert head is not None
    core = [head]
    assert core[0]["method"] == "cv: no interval" and core[0]["ci_low"] is None
    assert list(side.columns) == ["model", "in_sample_auc", "out_of_fold_auc", "optimism"]
    assert list(side["model"]) == list(analysis.MODEL_NAMES[:2])  # no in-sample AUC, no row
    assert side.loc[0, "out_of_fold_auc"] == core[0]["estimate"]
    assert side.loc[0, "optimism"] == pytest.approx(0.9 - core[0]["estimate"])
    sel = pipeline.fold_selection_table(facts)
    assert list(sel["fold"]) == [f.name for f in folds] and "ae_forced" in sel.columns
    assert sel.loc[0, "clinical+ae"] == "+".join(facts[folds[0].name]["variables"]["clinical+ae"])


def test_the_refit_scores_the_conventional_models_as_the_fold_pipeline_does(ctx):
    """cardio_refit (nested CV's 300 refits) fits clinical+psd and clinical+pbw without the autoencoder: on a fold's
    rows their scores and thresholds are the fold pipeline's (which trains the AE first), to the last bit; and
    clinical+ae, which needs the AE, is not refitted."""
    table, x = study_table(60, seed=5)
    table.loc[table.index[:4], "responder"] = np.nan  # unlabelled rows reach the AE only, never the models
    features = Features(table, x=x, label="responder")
    config = {"spect_polar": {"autoencoder": AE_CFG, "analysis": CFG}, "train": train_settings(cpu_threads=1)}
    folds = make_folds(table, {"method": "kfold", "folds": 3, "repeats": 1, "stratify": False}, None, 0)
    for fold in folds:
        full = pipeline.predict_phase_pipeline(pipeline.fit_phase_pipeline(features, fold.train, config, ctx),
                                               features, fold.test, ctx).table
        refit = pipeline.refit_conventional(features, fold.train, fold.test, config, ctx).table
        assert set(refit["model"]) == {"clinical+psd", "clinical+pbw"}
        for name, part in refit.groupby("model"):
            same = full[full["model"] == name]
            assert list(part["record_id"]) == list(same["record_id"])
            np.testing.assert_array_equal(part["y_score"].to_numpy(), same["y_score"].to_numpy())
            assert part["threshold"].iloc[0] == same["threshold"].iloc[0]


def test_unlabelled_rows_reach_the_autoencoder_only(ctx):
    """A missing label (NaN) leaves the scan to the label-free AE: the screen, the models and the thresholds see
    the labelled training rows; predictions keep y_true NaN for the core to leave unscored."""
    table, x = study_table(60, seed=6)
    table["responder"] = table["responder"].astype(float).where(np.arange(60) % 3 != 0)
    features = Features(table, x=x, label="responder")
    rows = np.arange(40)
    labelled = rows[table["responder"].iloc[rows].notna().to_numpy()]
    config = {"spect_polar": {"autoencoder": AE_CFG, "analysis": CFG}, "train": train_settings(cpu_threads=1)}
    model = pipeline.fit_phase_pipeline(features, rows, config, ctx)
    assert model.ae.patients == table["patient_id"].iloc[rows].tolist()
    assert model.response.patients == table["patient_id"].iloc[labelled].tolist() and len(labelled) == 26
    assert all(m.n == len(labelled) for m in model.response.models.values())
    pred = pipeline.predict_phase_pipeline(model, features, np.arange(40, 60), ctx).table
    assert pred["y_true"].isna().sum() == 3 * 6 and pred["y_score"].notna().all()  # 6 unlabelled of 20, 3 models


def test_bad_table_is_a_clear_error():
    table, _ = study_table(30)
    table.loc[3, "lvef"] = np.nan
    with pytest.raises(Exception, match="lvef"):
        analysis.fit_response_models(table, "responder", CLINICAL, [], max_ae=1)


def test_paper_profile_models_side_by_side_and_student_t(ctx):
    """analysis.ae_model_sizes [1, 2]: the single-feature and the two-feature AE models in one report;
    student_t: Table 1 with Student's t-test."""
    table, _ = study_table(90, seed=3)
    rng = np.random.default_rng(4)
    for j in range(1, 7):
        table[f"ae_{j:02d}"] = rng.normal(size=len(table)) + (1.2 * table["responder"] if j in (3, 5) else 0)
    cols = [f"ae_{j:02d}" for j in range(1, 7)]
    cfg = Analysis.from_mapping({**CFG, "ae_model_sizes": [1, 2], "student_t": True, "permutations": 50}, "analysis")
    res = analysis.paper_analysis(table, "responder", CLINICAL, CATEGORICAL, cols, cfg, ctx.save_figure)
    multi = res.section.tables["Multivariate logistic models (in-sample)"]
    assert {"clinical+ae", "clinical+ae(2)"} <= set(multi["model"])
    assert set(res.fitted.variables["clinical+ae(2)"]) >= {"ae_03", "ae_05"}
    assert "clinical+ae(2)" in set(res.section.tables["In-sample AUC of the multivariate models"]["model"])
    t1 = res.section.tables["Table 1 by responder status (in-sample)"]
    tests = set(t1["test"].dropna().astype(str))
    assert "Student t-test" in tests and "Welch t-test" not in tests


def _pred_table(n=60, repeats=2, signal=2.0, seed=0, folds=5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rows = []
    for r in range(repeats):
        for name in analysis.MODEL_NAMES:
            s = 1 / (1 + np.exp(-(signal * (y - 0.5) * (name == "clinical+ae") + rng.normal(size=n))))
            rows.append(pd.DataFrame({"record_id": [f"r{i}" for i in range(n)],
                                      "patient_id": [f"p{i}" for i in range(n)],
                                      "model": name, "task": "responder", "kind": "binary", "y_true": y, "y_score": s,
                                      "fold": np.arange(n) % folds, "repeat": r}))
    return pd.concat(rows, ignore_index=True)


def test_held_out_incremental_value_per_repeat():
    pred = _pred_table()
    held = analysis.held_out_incremental_value(pred, "responder")
    assert len(held) == 4 and (held["status"] == "estimated").all() and (held["n"] == 60).all()
    assert (held["p_value"] < 0.01).all() and (held["or_reference_per_sd"] > 1).all()  # the AE score's signal
    assert set(held["comparison"]) == {"held-out clinical+ae score added to clinical+psd score",
                                       "held-out clinical+ae score added to clinical+pbw score"}
    assert (held["p_holm"] >= held["p_value"]).all() and set(held["family"]) == {"secondary (stats.reference)"}
    # another pre-specified reference is tested against the others, and none at all is labelled exploratory
    psd = analysis.held_out_incremental_value(pred, "responder", reference="clinical+psd")
    assert set(psd["comparison"]) == {"held-out clinical+psd score added to clinical+ae score",
                                      "held-out clinical+psd score added to clinical+pbw score"}
    assert psd.loc[psd["comparison"].str.endswith("clinical+ae score"), "p_value"].iloc[0] > 0.01
    none = analysis.held_out_incremental_value(pred, "responder", reference=None)
    assert set(none["family"]) == {"exploratory (no stats.reference)"}
    null = analysis.held_out_incremental_value(_pred_table(signal=0.0, seed=1), "responder")
    assert null[["lr_chi2", "p_value"]].notna().all().all()


def test_held_out_test_counts_the_fold_models():
    """Scores of 5 fold models: the LR statistic halved and the OR's Wald variance doubled (one model's test rejected
    7.4-12.6% of null data sets, benchmarks/held_out_lr.py); one model's scores (a holdout) keep one model's test; 3
    folds give the statistics but no p-value or interval, and say why."""
    from scipy.stats import chi2

    pred = _pred_table(repeats=1, signal=0.8, seed=2)
    held = analysis.held_out_incremental_value(pred, "responder").set_index("comparison")
    one = analysis.held_out_incremental_value(pred, "responder", fold_factor=1.0).set_index("comparison")
    assert (held["fold_factor"] == 2.0).all() and (one["fold_factor"] == 1.0).all()
    np.testing.assert_allclose(held["lr_chi2"], one["lr_chi2"])  # the same fits
    np.testing.assert_allclose(held["p_value"].astype(float), chi2.sf(held["lr_chi2"].astype(float) / 2, 1))
    assert (held["p_value"].astype(float) > one["p_value"].astype(float)).all()
    # the OR's interval: Wald's on the log scale, sqrt(2) times as wide, about the same OR
    log = {k: np.log(t["or_reference_ci"].str.strip("[]").str.split(",", expand=True).astype(float))
           for k, t in (("folds", held), ("one", one))}
    np.testing.assert_allclose(log["folds"][1] - log["folds"][0], np.sqrt(2) * (log["one"][1] - log["one"][0]),
                               rtol=1e-2)
    centre = np.log(held["or_reference_per_sd"].astype(float))
    np.testing.assert_allclose((log["folds"][1] + log["folds"][0]) / 2, centre, atol=2e-3)
    holdout = analysis.held_out_incremental_value(pred.assign(fold=0), "responder")
    assert (holdout["fold_factor"] == 1.0).all()
    three = analysis.held_out_incremental_value(_pred_table(repeats=1, folds=3), "responder")
    assert (three["p_value"] == "").all() and (three["or_reference_ci"] == "").all()
    assert three["lr_chi2"].astype(float).gt(0).all()
    assert set(three["status"]) == {"estimated; no p or interval with fewer than 5 folds"}


def test_reference_is_read_from_the_config_and_checked():
    assert analysis.reference_model({"stats": {"reference": "clinical+ae"}}, "responder") == "clinical+ae"
    assert analysis.reference_model({"stats": {"reference": {"responder": "clinical+pbw"}}}, "responder") == \
        "clinical+pbw"
    assert analysis.reference_model({"stats": {}}, "responder") is None
    with pytest.raises(CardioError, match="stats.reference = 'svm' names no spect_polar model"):
        analysis.reference_model({"stats": {"reference": "svm"}}, "responder")


def test_one_class_fold_gives_no_nan_row():
    pred = _pred_table(repeats=1)
    pred.loc[pred["model"] == "clinical+psd", "y_true"] = 1  # one class only for this model
    # the core estimates no AUC of a one-class model (the performance section says why): no row for it here
    estimates, _ = stats.evaluate_predictions(pred[pred["model"] != "clinical+psd"].drop(columns="repeat"),
                                              n_resamples=20)
    table = analysis.optimism_table({name: {"estimate": 0.8} for name in analysis.MODEL_NAMES},
                                    [{**e, "repeat": 0} for e in estimates], "responder")
    assert "clinical+psd" not in set(table["model"]) and table["out_of_fold_auc"].notna().all()
    held = analysis.held_out_incremental_value(pred.assign(y_true=1), "responder")
    assert held["status"].str.startswith("skipped").all() and not held.isna().any().any()


def test_incremental_value_figure_is_the_papers_figure_3(tmp_path):
    """Issue 56: each comparison's model chi-square with and without the reference's held-out score, whose
    difference is the table's LR chi-square, drawn as the paper's Figure 3 through the one figure helper."""
    from cardio_report.figures import save_figure
    from cardio_spect_polar.report import incremental_figure

    held = analysis.held_out_incremental_value(_pred_table(), "responder")
    diff = held["chi2_with_reference"].astype(float) - held["chi2_other"].astype(float)
    np.testing.assert_allclose(diff, held["lr_chi2"].astype(float), rtol=1e-6)
    assert (held["chi2_other"].astype(float) >= 0).all()
    saved = {}

    def save(fig, name, caption=None):
        saved["caption"] = caption
        return save_figure(fig, tmp_path / f"{name}.png", caption=caption)

    path = incremental_figure(held, "clinical+ae", save)
    assert path is not None, "the figure is saved"
    assert path.name == "spect_incremental_value.png" and path.is_file() and "Figure 3" in saved["caption"]
    assert incremental_figure(held.iloc[:0], "clinical+ae", save) is None
    # with 3 folds the bars stand without a p-value
    three = analysis.held_out_incremental_value(_pred_table(folds=3), "responder")
    assert incremental_figure(three, "clinical+ae", save) is not None


def test_the_coverage_benchmarks_screened_pipeline_is_this_one():
    """benchmarks/coverage.py's kinds "... with a screen" simulate nested CV of fit_conventional_models with a
    batched copy (hundreds of fits a data set): on the same rows the copy keeps the same clinical variables, and its
    coefficients are the fitted models' (maximum likelihood; the copy's ridge of 1e-3 moves them by under 0.01)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    from coverage_kinds.headline import draw
    from coverage_kinds.screened import CLINICAL, COLUMNS, SHIFTS, screened_newton

    rng = np.random.default_rng(4)
    x, y, _, _ = draw(rng, 120, False, True, shifts=SHIFTS["signal"])
    clinical = [f"c{j}" for j in range(CLINICAL)]
    df = pd.DataFrame(x[:, :CLINICAL], columns=clinical).assign(pbw=x[:, CLINICAL], psd=x[:, CLINICAL + 1], y=y)
    rows = [np.arange(120), *(np.sort(rng.permutation(120)[:90]) for _ in range(5))]
    weights = np.zeros((len(rows), 120))
    for i, r in enumerate(rows):
        weights[i, r] = 1.0
    copies = {m: screened_newton(x[:, COLUMNS[m]], y, weights) for m in COLUMNS}
    kept_any = set()
    for i, r in enumerate(rows):
        models, _ = analysis.fit_conventional_models(df.iloc[r], "y", clinical)
        for name, m in (("clinical+pbw", "A"), ("clinical+psd", "B")):
            w = copies[m][i]
            kept = [c for j, c in enumerate(clinical) if w[1 + j] != 0]
            kept_any.update(kept)
            assert list(models[name].variables) == kept + [name.split("+")[1]]
            np.testing.assert_allclose(np.asarray(models[name].result.params), w[w != 0], atol=0.01)
    assert "c0" in kept_any and len(kept_any) > 1  # the shifted variable and a chance one: the screen selects
