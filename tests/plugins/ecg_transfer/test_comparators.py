"""Table 2's comparisons with the best model (paired DeLong, Holm), the logistic comparator, the comparators on
the fine-tuned network's deep features, and several architectures in one run."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import torch

from cardio import CardioError, Predictions
from cardio.config import resolve
from cardio.stats import adjust_pvalues, delong_test
from cardio.testing import cpu_context
from cardio_ecg_transfer import baselines, cohort_ecg, fold_models, plugin, report
from cardio_ecg_transfer.finetune import BeatModel
from cardio_ecg_transfer.resnet import SpectrogramResNet


def _predictions(n: int = 80, seed: int = 0) -> tuple[Predictions, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    scores = {"strong": y + rng.normal(0, 0.6, n), "middle": y + rng.normal(0, 1.2, n), "noise": rng.normal(0, 1, n)}
    ids = [f"p{i}" for i in range(n)]
    parts = [Predictions.from_arrays(ids, ids, y, s, model=m, task="t", threshold=0.5) for m, s in scores.items()]
    out = Predictions.concat(parts)
    out.table["fold"] = np.tile(np.arange(n) % 4, 3)
    return out, y, scores


def test_table2_compares_every_model_with_the_best_by_delong_holm():
    preds, y, scores = _predictions()
    t2 = report.table2(preds).set_index("model")
    assert t2.loc["strong", "ΔAUC vs best"] == "best" and t2.loc["strong", "p vs best (DeLong)"] == "–"
    raw = [delong_test(y, scores["strong"], scores[m]).p_value for m in ("middle", "noise")]
    holm = adjust_pvalues(raw, "holm")
    for m, p, h in zip(("middle", "noise"), raw, holm):
        assert float(t2.loc[m, "p vs best (DeLong)"]) == pytest.approx(p, rel=1e-2)
        assert float(t2.loc[m, "p vs best (Holm)"]) == pytest.approx(h, rel=1e-2)
        assert float(t2.loc[m, "ΔAUC vs best"]) < 0
    assert float(t2.loc["noise", "p vs best (Holm)"]) < 0.05  # a planted gap is found


def test_logistic_comparator_is_fitted_with_the_others():
    rng = np.random.default_rng(1)
    n = 60
    patients = pd.DataFrame({"qrs_ms": rng.normal(160, 20, n), "lbbb": rng.integers(0, 2, n),
                             "lvef": rng.normal(27, 5, n), "age": rng.normal(65, 8, n),
                             "sex": rng.choice(["M", "F"], n)})
    y = (patients["qrs_ms"] + rng.normal(0, 10, n) > 160).astype(int).to_numpy()
    config = resolve(plugin.cardio_plugin_info().default_config)["ecg_transfer"]["baselines"]
    fitted = baselines.fit_baselines(patients, y, config, seed=0)
    assert set(fitted.models) == {"svm", "random_forest", "logistic"}
    lr = fitted.models["logistic"].predict_proba(patients[fitted.covariates])[:, 1]
    assert np.corrcoef(lr, patients["qrs_ms"])[0, 1] > 0.8  # it learns the planted QRS effect


def test_deep_feature_comparators_fit_in_the_training_fold_only(tmp_path):
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=["ecg_transfer.synthetic.n_patients=40", "ecg_transfer.preprocess.max_beats_per_record=2",
                           "ecg_transfer.baselines.threshold_cv=2", "ecg_transfer.baselines.rf.n_estimators=10",
                           "ecg_transfer.baselines.svm.calibration_cv=2"])
    ctx = cpu_context(tmp_path / "run", config)
    feats = cohort_ecg.featurize(cohort_ecg.preprocess(cohort_ecg.load(config, ctx), config, ctx), config, ctx)
    model = SpectrogramResNet("resnet18", n_outputs=1).eval()
    beat = BeatModel("resnet18-transfer", model, 0.5, "pretrained")
    pids = feats.table["patient_id"].astype(str)
    test_p = set(pids.unique()[:8])
    train_index = np.flatnonzero(~pids.isin(test_p).to_numpy())
    test_index = np.flatnonzero(pids.isin(test_p).to_numpy())
    deep = fold_models.deep_features(beat, feats, train_index, ctx)
    assert deep.shape == (pids.nunique() - 8, 512) and not set(deep.index) & test_p
    # a patient's deep features are the mean of their beats' pooled features
    one = deep.index[0]
    rows = np.flatnonzero((pids == one).to_numpy())
    with torch.no_grad():
        direct = model.features(torch.as_tensor(feats.x[rows])).mean(0).numpy()
    np.testing.assert_allclose(deep.loc[one].to_numpy(), direct, rtol=1e-4, atol=1e-5)
    fm = fold_models.FoldModels(beat_models=[beat])
    y = fold_models.patients_of(feats, train_index)[feats.label].loc[deep.index].to_numpy()
    bl = config["ecg_transfer"]["baselines"]
    fm.deep = baselines.fit_baselines(deep, y, {**bl, "covariates": list(deep.columns),
                                                "guideline": {**bl["guideline"], "enabled": False}}, 0)
    preds = fold_models.predict_fold(fm, feats, test_index, ctx).table
    assert set(preds["model"]) == {"resnet18-transfer", "svm-deep", "random_forest-deep", "logistic-deep"}
    assert set(preds["patient_id"]) == test_p


def test_architectures_of_a_run():
    cfg = resolve(plugin.cardio_plugin_info().default_config)
    assert fold_models.architectures(cfg) == ["resnet18"]
    paper = resolve(plugin.cardio_plugin_info().default_config, sets=["profile=paper"])
    assert fold_models.architectures(paper) == ["resnet18", "resnet50", "resnet101"]
    with pytest.raises(CardioError, match="finetune.archs"):
        fold_models.architectures(resolve(plugin.cardio_plugin_info().default_config,
                                          sets=["ecg_transfer.finetune.archs=[resnet18, resnet18]"]))
    with pytest.raises(CardioError, match="pretrain.weights_file"):
        fold_models.prepare(resolve(plugin.cardio_plugin_info().default_config,
                                    sets=["ecg_transfer.finetune.archs=[resnet18, resnet50]",
                                          "ecg_transfer.pretrain.weights_file=w.pt"]),
                            None)
