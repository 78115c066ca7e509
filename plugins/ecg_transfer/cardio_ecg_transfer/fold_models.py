"""Everything trained in one fold: the fine-tuned and from-scratch ResNets and the clinical comparators."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from cardio import CardioError, Predictions
from cardio_ecg_transfer.baselines import ClinicalBaselines, fit_baselines
from cardio_ecg_transfer.finetune import AGGREGATION, BeatModel, freeze_report, record_scores, train_beat_model
from cardio_ecg_transfer.pretrain import Pretrained
from cardio_ecg_transfer.pretrain import prepare as pretrain_prepare
from cardio_ecg_transfer.settings import EcgSettings

#: Suffix of the comparators fitted on a fine-tuned network's deep features.
DEEP = "-deep"


@dataclass(frozen=True)
class Prepared:
    """What the prepare stage hands every fold and evaluate: each architecture's pretraining (None: no transfer
    model), and whether finetune.archs named the architectures (then the report's sections carry the name)."""

    by_arch: dict[str, Pretrained | None]
    named: bool = False


@dataclass
class FoldModels:
    beat_models: list[BeatModel] = field(default_factory=list)
    baselines: ClinicalBaselines | None = None
    #: SVM / forest / logistic regression on the pooled features of beat_models[deep_source]
    deep: ClinicalBaselines | None = None
    deep_source: int = 0


class _Pooled(torch.nn.Module):
    """The network up to its pooled image features, so that the core's batched predict returns them."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def deep_features(beat_model: BeatModel, features, index: np.ndarray, ctx) -> pd.DataFrame:
    """One row per patient among `index` rows: the fine-tuned network's pooled features, averaged over the
    patient's beats and leads (columns deep_0 ... deep_{C-1}, index patient_id)."""
    index = np.asarray(index)
    out = ctx.engine.predict(_Pooled(beat_model.model), ctx.engine.ArrayDataset(features.x[index]), ctx)
    frame = pd.DataFrame(out.reshape(len(index), -1), columns=[f"deep_{i}" for i in range(out.reshape(
        len(index), -1).shape[1])])
    frame["patient_id"] = features.table["patient_id"].astype(str).to_numpy()[index]
    return frame.groupby("patient_id", sort=False).mean()


def patients_of(features, index: np.ndarray) -> pd.DataFrame:
    """One row per patient among `index` rows: the patient's first record id and covariates (and label: NaN
    for a patient without one, and throughout for an unlabelled cohort, which `cardio predict` accepts)."""
    rows = features.table.iloc[np.asarray(index)]
    first = rows.drop_duplicates("patient_id").copy()
    first["patient_id"] = first["patient_id"].astype(str)
    if features.label in rows.columns:
        first[features.label] = rows.groupby("patient_id", sort=False)[features.label].max().to_numpy()
    else:
        first[features.label] = np.nan
    return first.set_index("patient_id", drop=False)


def records_of(features, index: np.ndarray) -> pd.DataFrame:
    """One row per ECG record among `index` rows (its first beat's): record_id, patient_id and the label (NaN
    where the patient has none), in order of first appearance."""
    rows = features.table.iloc[np.asarray(index)].drop_duplicates("record_id")
    y = rows[features.label].to_numpy(dtype=float) if features.label in rows.columns else np.full(len(rows), np.nan)
    return pd.DataFrame({"record_id": rows["record_id"].astype(str).to_numpy(),
                         "patient_id": rows["patient_id"].astype(str).to_numpy(), "y": y})


def architectures(config: dict) -> list[str]:
    """The ResNets of the run: finetune.archs (the paper's three in its profile), else pretrain.arch."""
    s = EcgSettings.of(config)
    return [s.pretrain.arch] if s.finetune.archs is None else list(s.finetune.archs)


def prepare(config: dict, ctx) -> Prepared:
    """Pretraining through pretrain.prepare, once per architecture of finetune.archs, or once for pretrain.arch."""
    s = EcgSettings.of(config)
    if s.finetune.archs is None:
        return Prepared({s.pretrain.arch: pretrain_prepare(config, ctx)})
    if s.pretrain.weights_file and len(architectures(config)) > 1:
        raise CardioError("config keys ecg_transfer.finetune.archs and ecg_transfer.pretrain.weights_file: one "
                          f"weights file cannot serve {len(s.finetune.archs)} architectures; set "
                          "ecg_transfer.finetune.archs: null")
    archs = architectures(config)
    if len(archs) == 1:
        return Prepared({archs[0]: pretrain_prepare(config, ctx, archs[0])}, named=True)
    # each architecture's pretraining gets its own engine tag (checkpoints/<arch>-pretrain.pt): none resumes another's
    return Prepared({arch: pretrain_prepare(config, ctx, arch, tag=f"{arch}-pretrain") for arch in archs}, named=True)


def train_fold(features, fit_index: np.ndarray, val_index: np.ndarray, config: dict, ctx,
               prepared: Prepared) -> FoldModels:
    """The fold's models: per architecture, fine-tuned from its pretraining (the prepare stage's result; None: no
    transfer model) and from scratch, and the comparators, as the config enables them. The networks fit on
    `fit_index` and stop early on the core's validation rows; the comparators fit on the whole training fold."""
    out = FoldModels()
    s = EcgSettings.of(config)
    ft = s.finetune
    train_index = np.union1d(fit_index, val_index)  # the training fold: its rows were sorted
    for arch in architectures(config):
        pre = prepared.by_arch.get(arch)
        if ft.transfer and pre is not None:
            m = train_beat_model(features, fit_index, val_index, config, ctx, arch=arch, init="pretrained",
                                 pretrained=pre.weights)
            ctx.log.info("%s: %s; training threshold %.3f", m.name, freeze_report(m.model), m.threshold)
            out.beat_models.append(m)
        if ft.scratch:
            m = train_beat_model(features, fit_index, val_index, config, ctx, arch=arch, init="scratch")
            ctx.log.info("%s: training threshold %.3f", m.name, m.threshold)
            out.beat_models.append(m)
    bl = s.baselines
    if bl.guideline.enabled or bl.svm.enabled or bl.rf.enabled or bl.logistic.enabled:
        patients = patients_of(features, train_index)
        out.baselines = fit_baselines(patients, patients[features.label].to_numpy(), bl, ctx.seed)
    models_on = bl.svm.enabled or bl.rf.enabled or bl.logistic.enabled
    if bl.deep_features and out.beat_models and models_on:
        # the paper's classifiers on CNN features: the transfer model's (else the first network's), fitted on
        # the training fold's patients only, as the network itself was
        order = [f"{s.pretrain.arch}-transfer"] + [m.name for m in out.beat_models if m.init == "pretrained"]
        names = [m.name for m in out.beat_models]
        out.deep_source = next((names.index(n) for n in order if n in names), 0)
        deep = deep_features(out.beat_models[out.deep_source], features, train_index, ctx)
        y = patients_of(features, train_index)[features.label].loc[deep.index].to_numpy()
        deep_settings = replace(bl, covariates=tuple(deep.columns), guideline=replace(bl.guideline, enabled=False))
        out.deep = fit_baselines(deep, y, deep_settings, ctx.seed)
    return out


def refit(features, train_index: np.ndarray, test_index: np.ndarray, config: dict, ctx) -> Predictions | None:
    """The comparators that are cheap to refit, the guideline rule and the logistic regression on the covariates,
    refitted on the training rows' patients as train_fold fits them and scoring the test rows: what nested CV
    refits (cardio_refit, 300 times). The SVM (a grid search of 27 fits a fit) and the forest (300 trees) cost
    seconds a fit, and the ResNets and the comparators on their features are deep: they keep the fold-DeLong
    interval of the run's folds."""
    bl = EcgSettings.of(config).baselines
    if not (bl.guideline.enabled or bl.logistic.enabled):
        return None
    cheap = replace(bl, svm=replace(bl.svm, enabled=False), rf=replace(bl.rf, enabled=False))
    patients = patients_of(features, train_index)
    fitted = fit_baselines(patients, patients[features.label].to_numpy(), cheap, ctx.seed, thresholds=False)
    return predict_fold(FoldModels(baselines=fitted), features, test_index, ctx)


def predict_fold(models: FoldModels, features, test_index: np.ndarray, ctx) -> Predictions:
    """Predictions of every model of the fold, one row per ECG record and model: a ResNet scores each ECG (the mean
    over its beats and leads); the covariate models score the patient, given to each of the patient's ECGs. The
    core averages a patient's ECG scores into the patient's (cohort_table.SCHEMA.level)."""
    recs = records_of(features, test_index)
    patients = patients_of(features, test_index)
    parts = []

    def rows(scores: np.ndarray, name: str, threshold: float, **extra) -> Predictions:
        return Predictions.from_arrays(recs["record_id"], recs["patient_id"], recs["y"], scores, model=name,
                                       task=features.label, kind="binary", threshold=threshold, **extra)

    for m in models.beat_models:
        scores = record_scores(m.model, features, test_index, ctx).loc[recs["record_id"]]
        parts.append(rows(scores.to_numpy(), m.name, m.threshold, aggregation=AGGREGATION))
    if models.baselines is not None:
        for name, scores in models.baselines.scores(patients).items():
            per_patient = pd.Series(scores, index=patients.index)
            parts.append(rows(per_patient.loc[recs["patient_id"]].to_numpy(), name, models.baselines.thresholds[name]))
    if models.deep is not None:
        deep = deep_features(models.beat_models[models.deep_source], features, test_index, ctx).loc[patients.index]
        for name, scores in models.deep.scores(deep).items():
            per_patient = pd.Series(scores, index=patients.index)
            parts.append(rows(per_patient.loc[recs["patient_id"]].to_numpy(), name + DEEP,
                              models.deep.thresholds[name]))
    return Predictions.concat(parts)
