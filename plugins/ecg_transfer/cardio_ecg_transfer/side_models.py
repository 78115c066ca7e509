"""Side models of pretraining: class-balanced scikit-learn classifiers on each beat's context features (RR
intervals, QRS shape, the second lead), whose log-probabilities add to the network's."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cardio import CardioError
from cardio_ecg_transfer import aami, beat_context
from cardio_ecg_transfer.beat_set import BeatSet
from cardio_ecg_transfer.settings import EcgSettings

if TYPE_CHECKING:  # scikit-learn is imported when a side model is fitted
    from sklearn.base import BaseEstimator

#: Classes the side-feature model is fitted on; Q (8 DS1 beats) would be a class of a handful of points.
SIDE_MODEL_CLASSES = ("N", "S", "V", "F")


#: Classifiers a side model of the fused protocol may be (pretrain.side_models[*].model).
SIDE_MODELS = ("logistic", "boosting")


@dataclass
class SideModel:
    """One fitted side classifier of the fused protocol and the side-feature columns it reads."""

    columns: np.ndarray
    model: BaseEstimator  # a fitted classifier (classes_, predict_proba)


def fit_side_model(beats: BeatSet, kind: str = "logistic", columns: np.ndarray | None = None,
                   seed: int = 0) -> SideModel:
    """Class-balanced classifier of the side features of `beats` (N, S, V, F; `columns` of them, all by default).

    "logistic" is the linear, de Chazal-like model on standardized features: RR intervals relative to
    the record's own rhythm find S beats that the spectrogram alone cannot tell from N. "boosting" is
    scikit-learn's histogram gradient boosting, which finds interactions such as "wide and unlike the
    record's beat on either channel". Balanced class weights give either the same (uniform) class prior
    as the balanced CNN, so their log-probabilities add.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in SIDE_MODELS:
        raise CardioError(f"ecg_transfer.pretrain.side_models: model {kind!r} is not known; use one of {SIDE_MODELS}")
    if not beats.side.shape[1]:
        raise CardioError("the side-feature model needs ecg_transfer.pretrain.side_features")
    columns = np.arange(beats.side.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    keep = np.isin(beats.y, [aami.AAMI_CLASSES.index(c) for c in SIDE_MODEL_CLASSES])
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    else:
        model = HistGradientBoostingClassifier(class_weight="balanced", max_iter=200, max_leaf_nodes=15,
                                               early_stopping=False, random_state=int(seed))
    return SideModel(columns, model.fit(beats.side[keep][:, columns], beats.y[keep]))


def fit_side_models(beats: BeatSet, config: dict, seed: int = 0) -> list[SideModel]:
    """Every side model of pretrain.side_models, each on the columns of its feature kinds."""
    pt = EcgSettings.of(config).pretrain
    specs = pt.side_models or [{"model": "logistic", "features": list(pt.side_features)}]
    all_names = beat_context.names(pt.side_features)
    fitted = []
    for spec in specs:
        if not isinstance(spec, Mapping) or set(spec) != {"model", "features"}:
            raise CardioError("ecg_transfer.pretrain.side_models: each entry is {model: ..., features: [...]}, "
                              f"got {spec!r}")
        missing = [k for k in spec["features"] if k not in pt.side_features]
        if missing:
            raise CardioError(f"ecg_transfer.pretrain.side_models: features {missing} are not in "
                              f"ecg_transfer.pretrain.side_features {list(pt.side_features)}")
        wanted = set(beat_context.names(tuple(spec["features"])))
        columns = np.array([i for i, n in enumerate(all_names) if n in wanted])
        fitted.append(fit_side_model(beats, str(spec["model"]), columns, seed=seed))
    return fitted


def side_log_proba(models: SideModel | list[SideModel], beats: BeatSet) -> np.ndarray:
    """(n, 5) summed log-probabilities of the side models over AAMI_CLASSES (-30 for a class one was not fitted on)."""
    total = np.zeros((len(beats.y), len(aami.AAMI_CLASSES)))
    for m in [models] if isinstance(models, SideModel) else models:
        out = np.full_like(total, -30.0)
        # log of predict_proba: gradient boosting has no predict_log_proba; the floor keeps a 0 finite
        out[:, m.model.classes_] = np.log(np.maximum(m.model.predict_proba(beats.side[:, m.columns]), 1e-13))
        total += out
    return total
