"""Yeung et al.'s two-step training, fold by fold, and the 17-segment regression baselines on the same rows.

Step 1 regresses the 17 segment MFRs from the three polar maps; step 2 starts from step 1's
backbone with a new head and classifies impaired global MFR (< 2.0), sex, smoking, hypertension,
dyslipidemia and diabetes. Both steps go through the core engine on the training fold, with an
inner validation split (by patient) for early stopping and the ResNet's decision thresholds. The
comparators, fitted on the whole training fold: a logistic regression per risk factor and a ridge
regression of the segment MFRs, both on the 51 segment means (17 segments x rest, stress, MFR). `refit`
fits the logistic regressions alone on nested CV's splits (cardio_refit), as the fold model fits them.
With `separate_inputs` (rest, stress, mfr), Yeung et al.'s per-input models are fitted beside the joint
one: the same two steps on one map (copied into the three input planes) and a logistic regression on
that map's 17 segment means.

Targets may be missing (NaN) study by study: a missing segment MFR or risk factor adds nothing to the loss or
its gradient (cardio.engine.masked_mse, masked_loss), each step fits and validates on the rows that have at
least one of its targets, every validation score and threshold uses the rows that have that output's target,
and each logistic regression is fitted on the rows that have its task (the ridge on rows with all 17 MFRs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cardio import CardioError, CoreSettings, Features, Predictions
from cardio.engine import masked_loss, masked_mse
from cardio_perfusion_polar.model import PolarResNet, scaled, weights_source
from cardio_perfusion_polar.settings import PerfusionSettings, Step
from cardio_perfusion_polar.synthetic import CHANNELS, N_SEGMENTS, RISK_TASKS, SEGMENT_TASKS
from cardio_stats import choose_threshold

RESNET, LOGISTIC, RIDGE = "resnet-polar", "logistic-17seg", "ridge-17seg"


def model_names(channel: str | None) -> tuple[str, str]:
    """(ResNet, logistic) model names of the joint model (channel None) or of one input map's models."""
    return (RESNET, LOGISTIC) if channel is None else (f"resnet-{channel}", f"logistic-{channel}")


def channel_input(maps: np.ndarray, channel: str | None) -> np.ndarray:
    """The network's input: the three scaled maps, or one map copied into all three input planes."""
    x = scaled(maps)
    if channel is None:
        return x
    c = CHANNELS.index(channel)
    return np.ascontiguousarray(x[:, [c, c, c]])


def channel_segments(segments: np.ndarray, channel: str | None) -> np.ndarray:
    """The logistic regression's input: all 51 segment means, or the 17 of one map."""
    if channel is None:
        return segments
    c = CHANNELS.index(channel)
    return segments.reshape(len(segments), len(CHANNELS), N_SEGMENTS)[:, c]


@dataclass
class PerfusionModel:
    """One training fold's fit: both ResNet steps, the baselines and every decision threshold."""

    step1: PolarResNet
    step2: PolarResNet
    baselines: dict
    thresholds: dict[str, float]
    train_patients: list[str] = field(default_factory=list)
    history: dict = field(default_factory=dict)
    # per-input models (rest, stress, mfr): {"step2": PolarResNet, "baselines": {task: pipeline}, "thresholds": ...}
    separate: dict = field(default_factory=dict)
    weights: str = ""  # the backbone's starting weights, in words (model.weights_source)
    map_size: int | None = None  # the maps' N it was trained on (None: a bundle from before it was recorded)


def _neg_mae(y: np.ndarray, out: np.ndarray) -> float:
    """Step 1's validation score (higher is better): minus the mean absolute error over the MFRs present."""
    y = np.asarray(y)
    err = np.abs(np.asarray(out) - y)[~np.isnan(y)]
    return -float(err.mean()) if err.size else -np.inf


def _both_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < len(y)


def _mean_auc(y: np.ndarray, out: np.ndarray) -> float:
    """Step 2's validation score: mean AUC over the outputs that have both classes among the rows that have them."""
    aucs = []
    for j in range(y.shape[1]):
        present = ~np.isnan(y[:, j])
        if _both_classes(y[present, j]):
            aucs.append(roc_auc_score(y[present, j], out[present, j]))
    return float(np.mean(aucs)) if aucs else 0.0


def _with_targets(y: np.ndarray, rows: np.ndarray, step: str | None = None) -> np.ndarray:
    """The rows that have at least one of a step's targets (the others would add nothing but batch statistics);
    with `step` (fitting rows), none is one line naming the step."""
    kept = rows[~np.isnan(y[rows]).all(axis=1)]
    if step and not len(kept):
        raise CardioError(f"perfusion {step}: no training record of this fold has any of its targets")
    return kept


def _step_settings(step: Step, n_fit: int) -> dict:
    """Engine settings of one step; a last batch of one row would break BatchNorm, so avoid it."""
    bs = step.batch_size
    while n_fit % bs == 1 and bs < n_fit:
        bs += 1
    return {**step.as_dict(), "batch_size": bs}


def train(features: Features, fit_index: np.ndarray, val_index: np.ndarray, config: dict, ctx) -> PerfusionModel:
    """Both ResNet steps on the fit rows, stopped early and thresholded on the core's validation rows; the baselines
    on the whole training fold."""
    return _train(features, (fit_index, val_index), PerfusionSettings.of(config),
                  CoreSettings.of(config).train.as_dict(), ctx)


def _train(features: Features, rows: tuple[np.ndarray, np.ndarray], s: PerfusionSettings, core_train: dict,
           ctx) -> PerfusionModel:
    table = features.table
    fit_rows, val_rows = rows
    train_index = np.union1d(fit_rows, val_rows)
    y_seg = table[SEGMENT_TASKS].to_numpy(np.float32)
    y_risk = table[RISK_TASKS].to_numpy(np.float32)
    maps, segments = features.x["maps"], features.x["segments"]
    _check_risk_classes(features, train_index, ctx.fold or "")
    step1, step2, thresholds, history = _two_steps(channel_input(maps, None), y_seg, y_risk, fit_rows, val_rows,
                                                   s, core_train, ctx, None)
    baselines, base_thresholds = _fit_baselines(segments, y_seg, y_risk, train_index, s.baseline_c)
    extra = {}
    for ch in s.separate_inputs:
        _, net, thr, hist = _two_steps(channel_input(maps, ch), y_seg, y_risk, fit_rows, val_rows, s, core_train,
                                      ctx, ch)
        logit, logit_thr = _fit_baselines(channel_segments(segments, ch), y_seg, y_risk, train_index,
                                          s.baseline_c, ridge=False)
        extra[ch] = {"step2": net, "baselines": logit, "history": hist,
                     "thresholds": {**{k.replace("resnet/", f"resnet-{ch}/"): v for k, v in thr.items()},
                                    **{k.replace("logistic/", f"logistic-{ch}/"): v for k, v in logit_thr.items()}}}
    return PerfusionModel(step1, step2, baselines, {**thresholds, **base_thresholds},
                          list(dict.fromkeys(table["patient_id"].iloc[train_index].astype(str))), history,
                          separate=extra, weights=weights_source(s), map_size=int(maps.shape[-1]))


def _check_risk_classes(features: Features, rows: np.ndarray, fit: str) -> None:
    """Each risk factor has a logistic regression of its own (the core checked the label's classes): one
    CardioError line where the fit's rows hold one class of any of them."""
    for task in RISK_TASKS:
        features.check_classes(rows, fit, task)


def _two_steps(x: np.ndarray, y_seg: np.ndarray, y_risk: np.ndarray, fit_rows: np.ndarray, val_rows: np.ndarray,
               s: PerfusionSettings, core_train: dict, ctx,
               channel: str | None) -> tuple[PolarResNet, PolarResNet, dict, dict]:
    """Step 1 (segment MFRs) then step 2 (risk outputs from step 1's backbone) on one input, with thresholds."""
    E = ctx.engine
    tag = "perfusion" if channel is None else f"perfusion-{channel}"
    # the joint model and each per-input one start alike, whichever were fitted before
    step1 = E.build(lambda: PolarResNet(s.arch, N_SEGMENTS, s.imagenet, s.weights), ctx)
    step1.freeze(list(s.freeze))
    fit1, val1 = _with_targets(y_seg, fit_rows, "step 1 (segment MFRs)"), _with_targets(y_seg, val_rows)
    r1 = E.fit(step1, E.ArrayDataset(x[fit1], y_seg[fit1]), E.ArrayDataset(x[val1], y_seg[val1]),
               ctx, name=f"{tag}-step1-mfr", train=core_train, settings=_step_settings(s.step1, len(fit1)),
               loss_fn=masked_mse, metric=_neg_mae)
    step1 = r1.model
    # Step 2: the backbone starts from step 1's weights, a new head learns the risk factors.
    step2 = PolarResNet(s.arch, N_SEGMENTS, False)
    step2.load_state_dict({k: v.detach().cpu().clone() for k, v in step1.state_dict().items()})
    step2.new_head(len(RISK_TASKS))
    step2.freeze(list(s.freeze))
    fit2, val2 = _with_targets(y_risk, fit_rows, "step 2 (risk outputs)"), _with_targets(y_risk, val_rows)
    val_set = E.ArrayDataset(x[val2], y_risk[val2])
    r2 = E.fit(step2, E.ArrayDataset(x[fit2], y_risk[fit2]), val_set, ctx, name=f"{tag}-step2-risk",
               train=core_train, settings=_step_settings(s.step2, len(fit2)), loss_fn=masked_loss,
               metric=_mean_auc)
    step2 = r2.model
    thresholds = _resnet_thresholds(step2, val_set, ctx)
    return step1.cpu().eval(), step2.cpu().eval(), thresholds, {"step1": r1.history, "step2": r2.history}


def _resnet_thresholds(step2: PolarResNet, val_set, ctx) -> dict[str, float]:
    """Youden thresholds of the risk outputs on the inner validation rows that have the task (training data,
    never the test fold); 0.5 where those rows hold one class."""
    return {f"resnet/{task}": ctx.engine.threshold(step2, val_set, ctx, "youden", output=j, fallback=0.5)
            for j, task in enumerate(RISK_TASKS)}


def _fit_baselines(seg_x: np.ndarray, y_seg: np.ndarray, y_risk: np.ndarray, train_index: np.ndarray,
                   c: float, ridge: bool = True) -> tuple[dict, dict[str, float]]:
    """Logistic regression per risk factor on the training rows that have it (Youden threshold on its training
    scores; _train has checked that they hold both classes) and a ridge of the MFRs on the training rows that have
    all 17."""
    baselines, thresholds = {}, {}
    for j, task in enumerate(RISK_TASKS):
        rows = train_index[~np.isnan(y_risk[train_index, j])]
        yt = y_risk[rows, j]
        # Newton-Cholesky: 17 columns make a Newton step cheap. The same penalized optimum as L-BFGS's, reached closer
        # (a simulated fit's probabilities 1.7e-4 from the exact optimum, against 1.0e-3), and nested CV's 1,800
        # fits a run took 0.62 times as long side by side
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, solver="newton-cholesky"))
        lr.fit(seg_x[rows], yt)
        baselines[task] = lr
        thresholds[f"logistic/{task}"] = choose_threshold(yt, lr.predict_proba(seg_x[rows])[:, 1], "youden")
    if not ridge:
        return baselines, thresholds
    rows = train_index[~np.isnan(y_seg[train_index]).any(axis=1)]
    if not len(rows):
        raise CardioError("perfusion task 'mfr_segments': no record of a training fold has all 17 segment MFRs "
                          "(the ridge baseline needs some)")
    baselines["mfr_segments"] = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(seg_x[rows], y_seg[rows])
    return baselines, thresholds


def predict(model: PerfusionModel, features: Features, test_index: np.ndarray, ctx) -> Predictions:
    """Predictions: 17 segment MFRs (regression) and six binary tasks, ResNet and 17-segment baselines, one row
    per test record; y_true is NaN where the record lacks that target."""
    table = features.table.iloc[test_index]
    E = ctx.engine
    maps = features.x["maps"][test_index]
    if model.map_size is not None and maps.shape[-1] != model.map_size:
        raise CardioError(f"the model was trained on {model.map_size}x{model.map_size} polar maps, this cohort's are "
                          f"{maps.shape[-1]}x{maps.shape[-1]}; ring x sector tables follow perfusion_polar.size "
                          f"(--set perfusion_polar.size={model.map_size}), .npy maps must be of that size")
    ds = E.ArrayDataset(channel_input(maps, None))
    seg_pred = E.predict(model.step1, ds, ctx)
    risk_prob = E.predict_proba(model.step2, ds, ctx)
    seg_x = features.x["segments"][test_index]
    ridge_pred = model.baselines["mfr_segments"].predict(seg_x)
    rid, pid = table["record_id"], table["patient_id"]
    parts = []
    for j, task in enumerate(SEGMENT_TASKS):
        y = table[task].to_numpy()
        parts.append(Predictions.from_arrays(rid, pid, y, seg_pred[:, j], model=RESNET, task=task, kind="regression"))
        parts.append(Predictions.from_arrays(rid, pid, y, ridge_pred[:, j], model=RIDGE, task=task, kind="regression"))
    for j, task in enumerate(RISK_TASKS):
        y = table[task].to_numpy()
        parts.append(Predictions.from_arrays(rid, pid, y, risk_prob[:, j], model=RESNET, task=task, kind="binary",
                                             threshold=model.thresholds[f"resnet/{task}"]))
        parts.append(_logistic_rows(table, task, model.baselines[task], seg_x, LOGISTIC,
                                    model.thresholds[f"logistic/{task}"]))
    for ch, fit in model.separate.items():  # per-input models: the risk outputs only
        resnet, logistic = model_names(ch)
        prob = E.predict_proba(fit["step2"], E.ArrayDataset(channel_input(maps, ch)), ctx)
        seg_ch = channel_segments(seg_x, ch)
        for j, task in enumerate(RISK_TASKS):
            y = table[task].to_numpy()
            parts.append(Predictions.from_arrays(rid, pid, y, prob[:, j], model=resnet, task=task, kind="binary",
                                                 threshold=fit["thresholds"][f"{resnet}/{task}"]))
            parts.append(_logistic_rows(table, task, fit["baselines"][task], seg_ch, logistic,
                                        fit["thresholds"][f"{logistic}/{task}"]))
    return Predictions.concat(parts)


def _logistic_rows(table: pd.DataFrame, task: str, baseline: Pipeline, seg_x: np.ndarray, name: str,
                   threshold: float) -> Predictions:
    """One logistic baseline's scores of the table's records (their segment means `seg_x`) for one risk factor."""
    return Predictions.from_arrays(table["record_id"], table["patient_id"], table[task].to_numpy(),
                                   baseline.predict_proba(seg_x)[:, 1], model=name, task=task, kind="binary",
                                   threshold=threshold)


def refit(features: Features, train_index: np.ndarray, test_index: np.ndarray, config: dict) -> Predictions:
    """The logistic regressions on the segment means (the joint one and each input's), refitted on the training
    rows as _train fits them and scoring the test rows as predict does: what nested CV refits (cardio_refit, 300
    times). The ResNets are deep and the ridge scores a regression (nested CV's intervals are AUCs): they keep the
    intervals of the run's folds."""
    s = PerfusionSettings.of(config)
    table = features.table
    _check_risk_classes(features, train_index, "nested CV refit")  # else one line: the core keeps fold DeLong
    y_seg = table[SEGMENT_TASKS].to_numpy(np.float32)
    y_risk = table[RISK_TASKS].to_numpy(np.float32)
    test = table.iloc[test_index]
    parts = []
    for ch in (None, *s.separate_inputs):
        segments = channel_segments(features.x["segments"], ch)
        baselines, thresholds = _fit_baselines(segments, y_seg, y_risk, train_index, s.baseline_c, ridge=False)
        for task in RISK_TASKS:
            parts.append(_logistic_rows(test, task, baselines[task], segments[test_index], model_names(ch)[1],
                                        thresholds[f"logistic/{task}"]))
    return Predictions.concat(parts)
