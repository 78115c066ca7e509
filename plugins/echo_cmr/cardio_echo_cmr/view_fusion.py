"""The views' outputs the fusion is fitted on: out-of-fold, from view networks that never saw those patients.

The fused model is a regression on the views' outputs (training.fit_fusion). Fitted on the outputs of the view
networks that trained on the same studies, it learns how far to trust outputs that are better on those studies
than on any new one, which tilts every fused-versus-view comparison towards the fusion (issue 38). So the training
fold's patients are split again (`echo_cmr.fusion_folds` inner folds, grouped by patient), each inner fold's
studies are scored by view networks fitted on the other inner folds only, and the fusion is fitted on those
scores. The networks that predict the test studies are still the ones fitted on the whole training fold.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from cardio import CardioError

M = TypeVar("M")  # a fitted view model


@dataclass(frozen=True)
class InnerOutputs:
    """Out-of-fold outputs of the training rows, and which rows each inner model was fitted on (for checks)."""

    outputs: np.ndarray                  # (n_rows, width); rows outside the training fold, or unscored, are 0
    predicted_by: np.ndarray             # (n_rows,) the inner fold whose model scored the row; -1 none
    trained_on: tuple[np.ndarray, ...]   # per inner fold, the rows its model was fitted on


def inner_folds(patients: pd.Series, train_index: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """The training rows cut into k groups by patient (a patient's rows in one group), shuffled by `seed`."""
    from sklearn.model_selection import GroupKFold  # lazily: the plugin's import stays light

    ids = patients.iloc[train_index].astype(str).to_numpy()
    if k < 2 or len(set(ids)) < k:
        raise CardioError(f"echo_cmr.fusion_folds={k}: the view fusion needs >= 2 inner folds and at least as many "
                          f"training patients (the training fold has {len(set(ids))})")
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [train_index[test] for _, test in splitter.split(ids, groups=ids)]


def out_of_fold(folds: list[np.ndarray], fit_index: np.ndarray, val_index: np.ndarray, n_rows: int, width: int,
                fit: Callable[[int, np.ndarray, np.ndarray], M],
                predict: Callable[[M, np.ndarray], np.ndarray]) -> InnerOutputs:
    """Each inner fold's rows scored by a model fitted on the other folds' rows: `fit(i, fit_rows, val_rows)` keeps
    the training fold's own fit/validation roles of those rows; `predict(model, rows)` gives (len(rows), width)."""
    outputs = np.zeros((n_rows, width), np.float32)
    predicted_by = np.full(n_rows, -1)
    trained_on = []
    for i, held in enumerate(folds):
        rest = np.setdiff1d(np.concatenate(folds), held)
        model = fit(i, np.intersect1d(rest, fit_index), np.intersect1d(rest, val_index))
        trained_on.append(rest)
        if len(held):
            outputs[held] = predict(model, held)
            predicted_by[held] = i
    return InnerOutputs(outputs, predicted_by, tuple(trained_on))


def view_outputs(view: str, features, rows: tuple[np.ndarray, np.ndarray], folds: list[np.ndarray], heads: tuple,
                 ctx, fit_view: Callable[[np.ndarray, np.ndarray, object], M],
                 score: Callable[[M, list], np.ndarray]) -> InnerOutputs:
    """One view's out-of-fold outputs of the training studies: `fit_view(fit_rows, val_rows, fit_ctx)` fits the view's
    network (its tags and checkpoints named <fold>-fusion<i>); `score(model, studies)` gives their outputs."""
    studies = features.x[view]

    def fit(i: int, fit_rows: np.ndarray, val_rows: np.ndarray) -> M:
        return fit_view(fit_rows, val_rows, ctx.for_fit(f"{ctx.fold or 'final'}-fusion{i}"))

    def predict(model: M, held: np.ndarray) -> np.ndarray:
        out = np.zeros((len(held), len(heads)), np.float32)  # a study without the view: 0, as at test time
        has = np.array([len(studies[i]) > 0 for i in held], dtype=bool)
        if has.any():
            out[has] = score(model, [studies[i] for i in held[has]])
        return out

    return out_of_fold(folds, rows[0], rows[1], len(features.table), len(heads), fit, predict)
