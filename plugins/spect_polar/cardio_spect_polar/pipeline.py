"""The method cross-validated: inside each training fold, the autoencoder on the training patients' phase
maps, then He et al.'s screen and logistic models (analysis.fit_response_models) on the same patients;
the held-out fold is scored with the fold's Youden thresholds."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio import CardioError, CoreSettings, Features, Predictions
from cardio_spect_polar.analysis import MODEL_NAMES, FittedResponseModels, fit_conventional_models, fit_response_models
from cardio_spect_polar.autoencoder import FittedAutoencoder, feature_names, fit_autoencoder
from cardio_spect_polar.settings import SpectSettings


@dataclass
class PhaseAEModel:
    """One training fold's fit: the AE (unsupervised) and the response models on its features."""

    ae: FittedAutoencoder
    response: FittedResponseModels
    ae_cols: list[str]
    outcome: str


def with_ae_features(table: pd.DataFrame, z: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
    """The table with the AE features (n, k) as columns ae_01..ae_k, and those column names."""
    cols = feature_names(z.shape[1])
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(z, columns=cols)], axis=1), cols


def fit_phase_pipeline(features: Features, rows: np.ndarray, config: dict, ctx, name: str = "ae") -> PhaseAEModel:
    """AE on the phase maps of `rows` (label-free), then the univariate screen, the logistic models and
    their thresholds on those of `rows` that have a label (cardio_train gives it the training fold's
    labelled rows; called with unlabelled rows, the AE uses them and the response models do not)."""
    rows = np.asarray(rows)
    s = SpectSettings.of(config)
    ae = fit_autoencoder(features.x[rows], features.table["patient_id"].iloc[rows], s.autoencoder, ctx,
                         name=name, train=CoreSettings.of(config).train.as_dict())
    labelled = _labelled(features, rows)
    table = features.table.iloc[labelled]
    df, cols = with_ae_features(table, ae.transform(features.x[labelled], ctx))
    try:  # statsmodels' logistic overflows exp() on separated data; the fit itself reports that
        with np.errstate(over="ignore"):
            response = fit_response_models(df, features.label, list(s.analysis.clinical), cols,
                                           p_enter=s.analysis.p_enter, p_ae=s.analysis.p_significant,
                                           max_ae=s.analysis.max_ae_features, method=s.analysis.logistic)
    except stats.StatsError as exc:  # a training fold too small or too one-sided for the logistic models
        y = table[features.label].to_numpy()
        raise CardioError(f"training fold {getattr(ctx, 'fold', None) or ''}: the response models cannot be fitted on "
                          f"{len(labelled)} scans ({int((y == 1).sum())} responders, {int((y == 0).sum())} not): "
                          f"{' '.join(str(exc).split())}; use fewer cv.folds or a larger cohort") from None
    return PhaseAEModel(ae, response, cols, features.label)


def predict_phase_pipeline(model: PhaseAEModel, features: Features, rows: np.ndarray, ctx) -> Predictions:
    """Scores of the three models on `rows` (the test fold), with the fold's Youden thresholds; y_true is NaN
    where the label is missing (the core scores labelled rows only)."""
    rows = np.asarray(rows)
    table = features.table.iloc[rows]
    df, _ = with_ae_features(table, model.ae.transform(features.x[rows], ctx))
    scores = model.response.predict(df)
    return _scored(table, model.outcome, {name: scores[name] for name in MODEL_NAMES}, model.response.thresholds)


def _labelled(features: Features, rows: np.ndarray) -> np.ndarray:
    """Those of `rows` that have a label: the response models' rows."""
    return rows[features.table[features.label].iloc[rows].notna().to_numpy()]


def _scored(table: pd.DataFrame, outcome: str, scores: dict[str, np.ndarray],
            thresholds: dict[str, float]) -> Predictions:
    """Each model's scores of the table's rows, with its training rows' Youden threshold."""
    return Predictions.concat([
        Predictions.from_arrays(table["record_id"], table["patient_id"], table[outcome], score, model=name,
                                task=outcome, kind="binary", threshold=thresholds[name])
        for name, score in scores.items()])


def refit_conventional(features: Features, train_index: np.ndarray, test_index: np.ndarray, config: dict,
                       ctx) -> Predictions:
    """cardio_refit: clinical+psd and clinical+pbw refitted on the training fold's labelled rows and scored on the
    test rows, as cardio_train + cardio_predict score them, for their nested-CV intervals (300 refits). clinical+ae
    trains the autoencoder, is deep, and keeps the fold-DeLong interval of the run's folds."""
    s = SpectSettings.of(config)
    with np.errstate(over="ignore"):  # statsmodels' logistic on separated data; the fit reports it
        models, thresholds = fit_conventional_models(
            features.table.iloc[_labelled(features, np.asarray(train_index))], features.label,
            list(s.analysis.clinical), p_enter=s.analysis.p_enter, method=s.analysis.logistic)
    table = features.table.iloc[np.asarray(test_index)]
    return _scored(table, features.label,
                   {name: np.asarray(m.predict_proba(table), dtype=float) for name, m in models.items()}, thresholds)


def describe(model) -> dict:
    """What a fold's models chose on its training rows (cardio_describe_model: the core keeps it per fold)."""
    return {"variables": {name: list(model.response.variables[name]) for name in MODEL_NAMES},
            "ae_forced": bool(model.response.ae_forced), "firth": list(model.response.firth)}


def fold_selection_table(model_facts: dict[str, dict]) -> pd.DataFrame:
    """Which variables each fold's models used (chosen on that fold's training rows), from describe()'s facts."""
    rows = [{"fold": fold, **{name: "+".join(v) for name, v in facts["variables"].items()},
             "ae_forced": int(bool(facts.get("ae_forced"))),
             "firth": "+".join(facts.get("firth") or []) or "-"}
            for fold, facts in model_facts.items() if facts.get("variables")]
    return pd.DataFrame(rows)
