"""Issue 38: the view fusion is fitted on out-of-fold view outputs: no output it is fitted on comes from a network that
trained on that patient."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from sklearn.linear_model import LogisticRegression

from cardio_echo_cmr import plugin, training, view_fusion
from cardio_echo_cmr.settings import EchoSettings
from cardio_testing.harness import cpu_context, plugin_config


def test_each_training_row_is_scored_by_a_model_that_never_saw_its_patient():
    rng = np.random.default_rng(0)
    patients = pd.Series(np.repeat([f"p{i}" for i in range(30)], 2))  # two studies a patient
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + rng.normal(size=60) > 0).astype(int)
    train, fit_rows = np.arange(48), np.arange(40)  # rows 48+ are the outer test fold; 40-47 the validation rows
    folds = view_fusion.inner_folds(patients, train, 3, seed=1)
    roles = []

    def fit(i, f, v):
        roles.append((f, v))
        return LogisticRegression().fit(x[np.concatenate([f, v])], y[np.concatenate([f, v])])

    inner = view_fusion.out_of_fold(folds, fit_rows, np.arange(40, 48), 60, 1, fit,
                                    lambda m, rows: m.decision_function(x[rows])[:, None])
    assert set(inner.predicted_by[:48]) == {0, 1, 2} and set(inner.predicted_by[48:]) == {-1}
    for row in train:
        seen = set(patients.iloc[inner.trained_on[inner.predicted_by[row]]])
        assert patients.iloc[row] not in seen, f"row {row}'s output came from a model that trained on its patient"
    assert not (inner.outputs[48:]).any()  # the outer test rows are never fitted on, nor scored
    for (f, v), rest in zip(roles, inner.trained_on):  # fit and validation roles kept within the inner training rows
        assert set(f) <= set(fit_rows) and set(v) <= set(range(40, 48)) and set(f) | set(v) == set(rest)
    in_sample = LogisticRegression().fit(x[train], y[train]).decision_function(x[train])
    assert not np.allclose(inner.outputs[train, 0], in_sample)  # the check can fail: in-sample outputs differ
    with pytest.raises(Exception, match="fusion_folds=1"):
        view_fusion.inner_folds(patients, train, 1, seed=1)


@pytest.mark.slow  # 9 video-network fits (the narrow R(2+1)D: seconds; r2plus1d_10 took 90 s on 2 cores)
def test_echo_training_fits_the_fusion_on_outputs_of_networks_that_never_saw_the_patient(tmp_path, monkeypatch):
    config = plugin_config("echo_cmr", sets=[
        "echo_cmr.synthetic.n_patients=12", "echo_cmr.synthetic.n_frames=12", "echo_cmr.arch=r2plus1d_10_narrow",
        "echo_cmr.clip.size=16",
        "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=1", "echo_cmr.train.batch_size=4", "echo_cmr.workers=0",
        "echo_cmr.fusion_folds=2"])
    ctx = cpu_context(tmp_path / "run")
    features = plugin.cardio_featurize(plugin.cardio_load(config, ctx), EchoSettings.of(config), ctx)
    fits, scored = [], []
    real_fit, real_logits = training._fit_view, training.view_logits

    def fit_spy(view, feats, rows, *args, **kwargs):
        fits.append((args[3].fold, np.union1d(*rows)))  # (y, cfg, core_train, ctx, targets)
        return real_fit(view, feats, rows, *args, **kwargs)

    def logits_spy(view_model, studies, *args, **kwargs):
        scored.append((id(view_model), list(studies)))
        return real_logits(view_model, studies, *args, **kwargs)

    monkeypatch.setattr(training, "_fit_view", fit_spy)
    monkeypatch.setattr(training, "view_logits", logits_spy)
    pids = features.table["patient_id"].astype(str)
    train_index = np.arange(len(pids))[: len(pids) - 3]
    model = training.train(features, train_index, np.array([], dtype=int), config, ctx.for_fit("fold0"))
    inner = [(fold, rows) for fold, rows in fits if fold and "fusion" in fold]
    assert [f for f, _ in inner] == ["fold0-fusion0", "fold0-fusion1"] * 3 and len(fits) == 9  # 3 views
    assert len(scored) == len(inner)  # the networks of the whole training fold score no training study
    for v, ((_, trained), (_, studies)) in enumerate(zip(inner, scored)):  # each scores only the other inner fold
        clips = features.x[("A4C", "A2C", "PLAX")[v // 2]]
        held = [i for i in train_index if clips[i] in studies]
        assert held and not set(pids.iloc[held]) & set(pids.iloc[trained])
    assert "wma" in model.fusion
