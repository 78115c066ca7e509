"""Beat-classification metrics of the AAMI protocol: per-class sensitivity and +P, macro F1, balanced accuracy,
and their intervals with records the units (beats of one record are not independent)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from cardio import CoreSettings
from cardio_ecg_transfer import aami
from cardio_stats import Estimate, format_interval, wilson_ratio_mean


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


#: The record-level intervals' method (`record_intervals`).
RECORD_WILSON = ("wilson at the effective sample size the records leave (bias-reduced variance), t quantile "
                 "(Bell-McCaffrey df)")


def record_intervals(y_true: np.ndarray, pred: np.ndarray, record: np.ndarray, config: dict) -> dict:
    """CIs (stats.level, 95% by default) of accuracy, macro F1, balanced accuracy and per-class Se and +P, the
    records the units.

    Beats of one record are alike, so a beat-level interval would be far too narrow; the record (patient) is the
    unit that varies between studies. Each metric is a ratio of per-record sums, or a mean of such ratios over the
    classes (macro F1, balanced accuracy), and takes Wilson's interval at the effective sample size its
    record-clustered variance leaves (cardio_stats.wilson_ratio_mean with few_units): the variance bias-reduced,
    as a record that holds much of a class pulls the ratio toward itself, and t's quantile with Bell-McCaffrey
    degrees of freedom, fewer than records - 1 where records differ in size. The percentile bootstrap over records
    these rows had missed 19.6-24.7% at 4 records (the default's DS1 validation), 11.0-13.2% at 10 and 7.4-9.8% at
    22 (DS2); these miss 0.1-3.1% at 4 and 1.8-6.5% at 10 and 22, the most where records differ much
    (benchmarks/coverage_kinds/beats.py, docs/statistics.md). A metric whose class two records do not hold gets no
    interval; `n` counts its denominator's beats (a macro average: the beats of its records).
    """
    labels = list(range(len(aami.AAMI_CLASSES)))
    names = np.unique(record)
    if len(names) < 2:  # one record: nothing to resample (the report says there is no interval)
        return {"unit": "record", "n_records": int(len(names)), "estimates": {},
                "skipped": "a record-level interval needs at least 2 records"}
    cms = np.stack([confusion_matrix(y_true[record == r], pred[record == r], labels=labels) for r in names])
    cms = cms.astype(float)
    level = CoreSettings.of(config).stats.level
    beats = cms.sum(axis=(1, 2))
    out = {}
    for metric, (num, den) in record_ratios(cms).items():
        held = den.sum(axis=1) > 0  # the records that hold the metric's denominator
        if not num.shape[1] or not held.any():
            continue
        n = int(den[held].sum() if den.shape[1] == 1 else beats[held].sum())
        if held.sum() < 2:
            est = float((num.sum(axis=0) / den.sum(axis=0)).mean())
            out[metric] = Estimate(metric, est, None, None, level, RECORD_WILSON, n,
                                   warnings=["no interval: one record holds it"],
                                   extra={"n_records": int(held.sum())}).to_dict()
            continue
        r = wilson_ratio_mean(num[held], den[held], level, few_units=True)
        out[metric] = Estimate(metric, r.estimate, r.low, r.high, level, RECORD_WILSON, n,
                               extra={"n_records": int(held.sum()), "n_effective": r.n_effective,
                                      "df": r.df}).to_dict()
    return {"unit": "record", "n_records": int(len(names)), "estimates": out}


def record_ratios(cms: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each record-level metric's per-record numerators and denominators, (records, ratios) each, from per-record
    confusion matrices over the AAMI classes: accuracy, macro F1 and balanced accuracy (a ratio per class of
    MACRO_CLASSES that some record holds), and per-class Se and +P."""
    classes = np.arange(len(aami.AAMI_CLASSES))
    macro = [aami.AAMI_CLASSES.index(c) for c in MACRO_CLASSES if cms[:, aami.AAMI_CLASSES.index(c)].sum()]
    tp = cms[:, classes, classes]  # (records, classes)
    support, predicted = cms.sum(axis=2), cms.sum(axis=1)
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "accuracy": (tp.sum(axis=1, keepdims=True), cms.sum(axis=(1, 2))[:, None]),
        "macro_f1": (2 * tp[:, macro], (support + predicted)[:, macro]),
        "balanced_accuracy": (tp[:, macro], support[:, macro])}
    for i, c in enumerate(aami.AAMI_CLASSES):
        if c in MACRO_CLASSES:
            rows[f"se_{c}"] = (tp[:, [i]], support[:, [i]])
            rows[f"ppv_{c}"] = (tp[:, [i]], predicted[:, [i]])
    return rows


def ci_text(results: dict, key: str) -> str:
    """'[lo, hi]' of a record-level CI in results, or '' where there is none."""
    e = (results.get("ci") or {}).get("estimates", {}).get(key) or {}
    return format_interval(e.get("ci_low"), e.get("ci_high"))


def results_table(results: dict) -> pd.DataFrame:
    level = (results.get("ci") or {}).get("estimates", {}).get("accuracy", {}).get("level", 0.95)
    rows = [{"class": c, "n": v["support"], "Se": v["se"], f"Se {level:.0%} CI (records)": ci_text(results, f"se_{c}"),
             "+P": v["ppv"], f"+P {level:.0%} CI (records)": ci_text(results, f"ppv_{c}"), "F1": v["f1"]}
            for c, v in results["per_class"].items()]
    return pd.DataFrame(rows)
