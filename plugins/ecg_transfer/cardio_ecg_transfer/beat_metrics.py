"""Beat-classification metrics of the AAMI protocol: per-class sensitivity and +P, macro F1, balanced accuracy,
and their intervals from a bootstrap over records (beats of one record are not independent)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from cardio import CoreSettings
from cardio_ecg_transfer import aami
from cardio_stats import bootstrap_metric, format_interval


def weighted_macro_f1(y_true: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> float:
    """Macro F1 over MACRO_CLASSES present in y_true, each beat counted with its weight."""
    cm = confusion_matrix(y_true, pred, labels=list(range(len(aami.AAMI_CLASSES))), sample_weight=weights)
    f1 = [2 * cm[i, i] / (cm[i].sum() + cm[:, i].sum())
          for i, c in enumerate(aami.AAMI_CLASSES) if c in MACRO_CLASSES and cm[i].sum() > 0]
    return float(np.mean(f1)) if f1 else float("nan")


def balanced_accuracy(y_true: np.ndarray, outputs: np.ndarray) -> float:
    """Mean per-class sensitivity over the classes present: the early-stopping metric."""
    pred = np.asarray(outputs).argmax(axis=1)
    y_true = np.asarray(y_true)
    return float(np.mean([np.mean(pred[y_true == c] == c) for c in np.unique(y_true)]))


#: Classes averaged by the macro F1: Q has 15 beats in all of MIT-BIH once the paced records
#: are out (8 in DS1, 7 in DS2), so, as in most inter-patient studies, it is reported but not averaged.
MACRO_CLASSES = ("N", "S", "V", "F")


def classification_results(y_true: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, per-class sensitivity (Se), positive predictivity (+P) and F1, macro F1, balanced accuracy,
    confusion matrix.

    Macro F1 and balanced accuracy (mean Se) average N, S, V and F where they occur in the test set;
    `macro_f1_present` averages every class that occurs (Q too). A class never predicted has +P
    undefined (None) and F1 0.
    """
    k = len(aami.AAMI_CLASSES)
    cm = confusion_matrix(y_true, pred, labels=list(range(k)))
    per_class = {}
    for i, name in enumerate(aami.AAMI_CLASSES):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        se = tp / support if support else None
        ppv = tp / predicted if predicted else None
        f1 = 2 * tp / (support + predicted) if support + predicted else None
        per_class[name] = {"support": int(support), "predicted": int(predicted),
                           "se": None if se is None else float(se), "ppv": None if ppv is None else float(ppv),
                           "f1": None if f1 is None else float(f1)}
    macro = [c for c in MACRO_CLASSES if per_class[c]["support"]]
    present = [c for c in aami.AAMI_CLASSES if per_class[c]["support"]]
    return {"n": int(len(y_true)), "accuracy": float(np.mean(y_true == pred)),
            "macro_f1": float(np.mean([per_class[c]["f1"] for c in macro])), "macro_f1_classes": macro,
            "balanced_accuracy": float(np.mean([per_class[c]["se"] for c in macro])),
            "macro_f1_present": float(np.mean([per_class[c]["f1"] for c in present])),
            "per_class": per_class, "confusion": cm.tolist(), "classes": list(aami.AAMI_CLASSES)}


def always_n(y_true: np.ndarray) -> dict:
    """classification_results of the baseline that calls every beat N."""
    return classification_results(np.asarray(y_true), np.zeros(len(y_true), dtype=np.int64))


# Metrics of a stack of per-record confusion matrices (the record bootstrap resamples records).
def _accuracy(cms: np.ndarray) -> float:
    cm = cms.sum(axis=0)
    return float(np.trace(cm) / cm.sum())


def _class_se(c: int):
    def se(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        return float(cm[c, c] / cm[c].sum()) if cm[c].sum() else float("nan")
    return se


def _class_ppv(c: int):
    def ppv(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        return float(cm[c, c] / cm[:, c].sum()) if cm[:, c].sum() else float("nan")
    return ppv


def _macro(classes: list[int], kind: str):
    def metric(cms: np.ndarray) -> float:
        cm = cms.sum(axis=0)
        vals = []
        for c in classes:
            if not cm[c].sum():
                continue
            vals.append(cm[c, c] / cm[c].sum() if kind == "se" else 2 * cm[c, c] / (cm[c].sum() + cm[:, c].sum()))
        return float(np.mean(vals)) if vals else float("nan")
    return metric


def record_bootstrap(y_true: np.ndarray, pred: np.ndarray, record: np.ndarray, config: dict, seed: int) -> dict:
    """CIs (stats.level, 95% by default) of accuracy, macro F1, balanced accuracy and per-class Se and +P that
    resample test records, not beats.

    Beats of one record are alike, so a beat-level interval would be far too narrow; the
    record (patient) is the unit that varies between studies. Percentile bootstrap of
    cardio_stats over per-record confusion matrices.
    """
    labels = list(range(len(aami.AAMI_CLASSES)))
    names = np.unique(record)
    if len(names) < 2:  # one record: nothing to resample (the report says there is no interval)
        return {"unit": "record", "n_records": int(len(names)), "estimates": {},
                "skipped": "a record-level interval needs at least 2 records"}
    cms = np.stack([confusion_matrix(y_true[record == r], pred[record == r], labels=labels) for r in names])
    st = CoreSettings.of(config).stats
    kw: dict[str, Any] = dict(n_resamples=st.n_resamples, seed=seed, level=st.level)
    macro = [aami.AAMI_CLASSES.index(c) for c in MACRO_CLASSES]
    out = {"accuracy": bootstrap_metric(_accuracy, cms, metric="accuracy", **kw).to_dict(),
           "macro_f1": bootstrap_metric(_macro(macro, "f1"), cms, metric="macro_f1", **kw).to_dict(),
           "balanced_accuracy": bootstrap_metric(_macro(macro, "se"), cms, metric="balanced_accuracy", **kw).to_dict()}
    for i, c in enumerate(aami.AAMI_CLASSES):
        if c in MACRO_CLASSES and cms[:, i].sum():
            out[f"se_{c}"] = bootstrap_metric(_class_se(i), cms, metric=f"se_{c}", **kw).to_dict()
        if c in MACRO_CLASSES and cms[:, :, i].sum():
            out[f"ppv_{c}"] = bootstrap_metric(_class_ppv(i), cms, metric=f"ppv_{c}", **kw).to_dict()
    return {"unit": "record", "n_records": int(len(names)), "estimates": out}


def ci_text(results: dict, key: str) -> str:
    """'[lo, hi]' of a record-bootstrap CI in results, or '' where there is none."""
    e = (results.get("ci") or {}).get("estimates", {}).get(key) or {}
    return format_interval(e.get("ci_low"), e.get("ci_high"))


def results_table(results: dict) -> pd.DataFrame:
    level = (results.get("ci") or {}).get("estimates", {}).get("accuracy", {}).get("level", 0.95)
    rows = [{"class": c, "n": v["support"], "Se": v["se"], f"Se {level:.0%} CI (records)": ci_text(results, f"se_{c}"),
             "+P": v["ppv"], f"+P {level:.0%} CI (records)": ci_text(results, f"ppv_{c}"), "F1": v["f1"]}
            for c, v in results["per_class"].items()]
    return pd.DataFrame(rows)
