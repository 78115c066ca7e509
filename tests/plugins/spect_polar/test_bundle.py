"""spect_polar's final model: exported to a bundle and applied by `cardio predict` to a second site; the
pre-specified reference; the neutral setting. One site-A run (the `neutral` profile, late_lateral 0) serves
every test of the module."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("cardio_spect_polar")

import pandas as pd
import torch

import cardio_stats as stats
from cardio import Cache, Features
from cardio.engine import load_checkpoint
from cardio.study import bundle as core_bundle
from cardio_deploy import bundle as deploy_bundle
from cardio_spect_polar import bundle
from cardio_spect_polar.cohort import simulate_clinical, write_default_cohort
from cardio_spect_polar.pipeline import describe, fit_phase_pipeline, predict_phase_pipeline
from cardio_testing.harness import invoke, plugin_config, pooled, read_metrics, run_plugin

GRID = ["spect_polar.synthetic.slices=20", "spect_polar.synthetic.size=40", "spect_polar.phase.rings=16",
        "spect_polar.phase.sectors=32"]
SITE_A = ["profile=neutral", "spect_polar.synthetic.n_patients=60", *GRID, "spect_polar.autoencoder.hidden=32",
          "spect_polar.autoencoder.iterations=40", "spect_polar.autoencoder.batch_size=null",
          "cv.folds=3", "stats.n_resamples=100", "report.figures=false",
          "explain=false"]


def _features(n: int, seed: int) -> Features:
    """A labelled table with the clinical columns and PSD/PBW, and random phase maps on a 16 x 32 grid."""
    table, _ = simulate_clinical(n, seed=seed)
    rng = np.random.default_rng(seed)
    table = table.assign(record_id=table["patient_id"], psd=rng.gamma(4, 10, n), pbw=rng.gamma(6, 15, n))
    x = (rng.normal(120, 40, (n, 16 * 32)) + 30 * table["responder"].to_numpy()[:, None]) % 360
    return Features(table, x=x.astype(np.float32), label="responder", targets=("responder",))


def test_imported_model_scores_as_the_fitted_one(ctx, tmp_path):
    """Fit, export, write and read the bundle's files, import: the scores of a second cohort are the fitted
    model's (to float rounding), and a second export gives back every array bit for bit."""
    config = plugin_config("spect_polar", [*GRID, "spect_polar.autoencoder.hidden=16",
                                           "spect_polar.autoencoder.iterations=20"])
    site_a, site_b = _features(40, seed=1), _features(25, seed=2)
    fitted = fit_phase_pipeline(site_a, np.arange(40), config, ctx)
    state = bundle.export(fitted)
    assert not any("P0" in json.dumps(v) for v in state.params.values())  # counts, never patient ids
    core_bundle.write(tmp_path, state, config, {"plugin": "spect_polar"})
    _, read_back, _ = deploy_bundle.read(tmp_path)
    imported = bundle.load(read_back)
    before = predict_phase_pipeline(fitted, site_b, np.arange(25), ctx).table
    after = predict_phase_pipeline(imported, site_b, np.arange(25), ctx).table
    # the same weights (bit for bit, below) in arrays laid out anew: on some CPUs (AMD EPYC here) BLAS then sums in
    # another order, 1 ulp apart
    np.testing.assert_allclose(after["y_score"].to_numpy(), before["y_score"].to_numpy(), rtol=1e-12, atol=0)
    assert after[["model", "threshold"]].equals(before[["model", "threshold"]])
    assert describe(imported) == describe(fitted)  # the variables each model uses survive the bundle
    again = bundle.export(imported)
    assert set(again.tensors) == set(read_back.tensors) and again.params == read_back.params
    for name, value in again.tensors.items():
        assert np.array_equal(torch.as_tensor(value).numpy(), read_back.tensors[name].numpy()), name


@pytest.fixture(scope="module")
def site_a(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spect_site_a")
    return run_plugin("spect_polar", tmp / "a", sets=(*SITE_A, "train.keep_checkpoints=true"),  # final-ae.pt, read
                      cache_dir=tmp / "cache"), tmp


def test_neutral_setting_finds_no_ae_advantage(site_a):
    """late_lateral 0 (what only the AE sees carries no effect, global dyssynchrony and clinical effects kept):
    the CI of the paired out-of-fold AUC difference clinical+ae minus clinical+psd covers 0."""
    run, _ = site_a
    pred = pd.read_csv(run / "predictions.csv")
    wide = pred.pivot_table(index="patient_id", columns="model", values="y_score")
    y = pred.groupby("patient_id")["y_true"].first().reindex(wide.index).to_numpy()
    test = stats.delong_test(y, wide["clinical+ae"].to_numpy(), wide["clinical+psd"].to_numpy())
    e = test.extra
    print(f"neutral setting, n = {len(y)}: AUC clinical+ae {e['auc1']:.3f}, clinical+psd {e['auc2']:.3f}, "
          f"difference {e['diff']:+.3f} [{e['diff_ci_low']:+.3f}, {e['diff_ci_high']:+.3f}]")
    assert len(y) == 60 and e["diff_ci_low"] <= 0 <= e["diff_ci_high"], e


def test_report_names_the_reference_and_tests_against_it(site_a):
    run, _ = site_a
    report = (run / "report.md").read_text()
    assert "Pre-specified reference: clinical+ae" in report
    assert "Held-out incremental value of the clinical+ae score" in report
    assert "held-out clinical+ae score added to clinical+psd score" in report
    assert "secondary (stats.reference)" in report
    assert "late_lateral" in report and "0 x late_lateral" in report  # the neutral truth, stated


def _site_b(folder_a, tmp, labelled: bool):
    """Site B: the synthetic cohort of another seed, ids of its own (B-...), with or without its labels."""
    source = write_default_cohort(Cache(tmp / "cache"), 24, seed=5, slices=20, size=40, progress=lambda it, **_: it)
    dest = tmp / f"site_b_{int(labelled)}"
    if not dest.exists():
        shutil.copytree(source / "volumes", dest / "volumes")
    table = pd.read_csv(source / "clinical.csv")
    table = table.assign(file="volumes/" + table["patient_id"] + ".dcm", patient_id="B-" + table["patient_id"])
    if not labelled:
        table = table.drop(columns=["responder", "lvesv_reduction_pct", "esv_followup"])
    table.to_csv(dest / "clinical.csv", index=False)
    return dest, table


@pytest.mark.parametrize("labelled", [True, False], ids=["labelled", "unlabelled"])
def test_site_a_model_predicts_site_b(site_a, labelled):
    run, tmp = site_a
    info, state, cfg = deploy_bundle.read(run)
    assert info["plugin"] == "spect_polar" and info["n_patients"] == 60
    assert set(state.params["thresholds"]) >= {"clinical+ae", "clinical+psd", "clinical+pbw"}
    # the bundle's autoencoder is the final fit's (the engine's checkpoint of it)
    final = load_checkpoint(run / "checkpoints" / "final-ae.pt")["model"]
    for name, value in final.items():
        assert torch.equal(state.tensors[f"ae.{name}"], value), name

    folder, table = _site_b(run, tmp, labelled)
    out = tmp / f"b_{int(labelled)}"
    result = invoke("predict", "--model", str(run), "--cohort", str(folder), "--out", str(out))
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["model"]) == {"clinical+ae", "clinical+psd", "clinical+pbw"}
    assert (pred.groupby("model")["patient_id"].nunique() == 24).all() and pred["y_score"].between(0, 1).all()
    if not labelled:
        assert pred["y_true"].isna().all() and not (out / "metrics.json").exists()
        return
    auc = pooled(read_metrics(out), "auc", model="clinical+ae")
    assert len(auc) == 1 and auc[0]["n"] == 24 and auc[0]["ci_low"] <= auc[0]["estimate"] <= auc[0]["ci_high"]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert "External validation" in (out / "report.md").read_text()
