"""Everything trained in one fold: the fine-tuned and from-scratch ResNets and the clinical comparators."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cardio import Predictions
from cardio_ecg_transfer.baselines import ClinicalBaselines, fit_baselines
from cardio_ecg_transfer.finetune import AGGREGATION, BeatModel, freeze_report, predict_patients, train_beat_model
from cardio_ecg_transfer.pretrain import Pretrained

TASK = "crt_response"


@dataclass
class FoldModels:
    beat_models: list[BeatModel] = field(default_factory=list)
    baselines: ClinicalBaselines | None = None


def patients_of(features, index: np.ndarray) -> pd.DataFrame:
    """One row per patient among `index` rows: the patient's first record id and covariates."""
    rows = features.table.iloc[np.asarray(index)]
    first = rows.drop_duplicates("patient_id").copy()
    first["patient_id"] = first["patient_id"].astype(str)
    first[features.label] = rows.groupby("patient_id", sort=False)[features.label].max().to_numpy()
    return first.set_index("patient_id", drop=False)


def train_fold(features, train_index: np.ndarray, config: dict, ctx, pretrained: Pretrained | None) -> FoldModels:
    """The fold's models: fine-tuned from `pretrained` (the prepare stage's result; None: no transfer
    model), from scratch, and the clinical comparators, as the config enables them."""
    out = FoldModels()
    ft = config["finetune"]
    if ft["transfer"] and pretrained is not None:
        m = train_beat_model(features, train_index, config, ctx, init="pretrained", pretrained=pretrained.weights)
        ctx.log.info("%s: %s; training threshold %.3f", m.name, freeze_report(m.model), m.threshold)
        out.beat_models.append(m)
    if ft["scratch"]:
        m = train_beat_model(features, train_index, config, ctx, init="scratch")
        ctx.log.info("%s: training threshold %.3f", m.name, m.threshold)
        out.beat_models.append(m)
    bl = config["baselines"]
    if bl["guideline"]["enabled"] or bl["svm"]["enabled"] or bl["rf"]["enabled"]:
        patients = patients_of(features, train_index)
        out.baselines = fit_baselines(patients, patients[features.label].to_numpy(), bl, ctx.seed)
    return out


def predict_fold(models: FoldModels, features, test_index: np.ndarray, ctx) -> Predictions:
    """Patient-level predictions of every model of the fold (one row per patient and model)."""
    patients = patients_of(features, test_index)
    y = patients[features.label].to_numpy(dtype=float)
    parts = []
    for m in models.beat_models:
        scores = predict_patients(m, features, test_index, ctx).loc[patients.index]
        parts.append(Predictions.from_arrays(patients["record_id"], patients.index, y, scores.to_numpy(),
                                             model=m.name, task=TASK, kind="binary", threshold=m.threshold,
                                             aggregation=AGGREGATION))
    if models.baselines is not None:
        for name, scores in models.baselines.scores(patients).items():
            parts.append(Predictions.from_arrays(patients["record_id"], patients.index, y, scores, model=name,
                                                 task=TASK, kind="binary",
                                                 threshold=models.baselines.thresholds[name]))
    return Predictions.concat(parts)
