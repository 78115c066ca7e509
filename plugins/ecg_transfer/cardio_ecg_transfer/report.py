"""The plugin's report sections: Table 2 (the paper's model comparison), Table 1, and the pretraining results."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio import Predictions, Section
from cardio.stats import StatsError, binary_metrics, delong_ci, format_ci, table_one
from cardio_ecg_transfer import pretrain as pretrain_mod
from cardio_ecg_transfer.pretrain import Pretrained

GROUPS = {"guideline": "guideline rule", "svm": "clinical covariates", "random_forest": "clinical covariates"}


def _fold_mean_sd(g: pd.DataFrame, metric: str) -> str:
    """Mean ± SD over folds of a thresholded metric, as the paper reports it."""
    values = []
    for _, f in g.groupby("fold"):
        y = f["y_true"].to_numpy().astype(int)
        pred = (f["y_score"].to_numpy() >= f["threshold"].to_numpy()).astype(int)
        if metric == "accuracy":
            values.append(np.mean(pred == y))
        elif metric == "sensitivity" and (y == 1).any():
            values.append(np.mean(pred[y == 1] == 1))
        elif metric == "specificity" and (y == 0).any():
            values.append(np.mean(pred[y == 0] == 0))
    if not values:
        return "–"
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3f} ± {sd:.3f}"


def _training(model: str) -> str:
    if model.endswith("-transfer"):
        return "pretrained on MIT-BIH, fine-tuned"
    if model.endswith("-scratch"):
        return "from scratch"
    return GROUPS.get(model, "")


def table2(predictions: Predictions, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """One row per model: AUC (DeLong CI); accuracy, sensitivity, specificity at the training-fold
    thresholds (Wilson CIs) pooled over the out-of-fold patients, and their mean ± SD over folds."""
    table = predictions.table
    table = table[(table["kind"] == "binary")].copy()
    if "threshold" not in table.columns:
        table["threshold"] = 0.5
    table["threshold"] = table["threshold"].fillna(0.5)
    rows = []
    for model, g in table.groupby("model", sort=False):
        y, s, thr = g["y_true"].to_numpy(), g["y_score"].to_numpy(), g["threshold"].to_numpy()
        try:
            auc = format_ci(delong_ci(y, s, level=level))
        except StatsError:
            auc = "–"
        m = binary_metrics(y, s, thr, level=level, n_resamples=200, seed=seed)
        rows.append({"model": model, "training": _training(model), "n": int(len(g)), "AUC": auc,
                     "accuracy": format_ci(m["accuracy"]), "sensitivity": format_ci(m["sensitivity"]),
                     "specificity": format_ci(m["specificity"]),
                     "accuracy (folds)": _fold_mean_sd(g, "accuracy"),
                     "sensitivity (folds)": _fold_mean_sd(g, "sensitivity"),
                     "specificity (folds)": _fold_mean_sd(g, "specificity")})
    return pd.DataFrame(rows)


def patient_table(cohort) -> pd.DataFrame:
    """One row per patient (the first record's covariates)."""
    return cohort.table.drop_duplicates("patient_id").reset_index(drop=True)


def table1(cohort, config: dict) -> pd.DataFrame | None:
    rep = config["report"]
    patients = patient_table(cohort)
    cont = [c for c in rep["table1_continuous"] if c in patients.columns]
    cat = [c for c in rep["table1_categorical"] if c in patients.columns]
    if not cont and not cat:
        return None
    data = patients[[config["label"], *cont, *cat]].copy()
    data[config["label"]] = data[config["label"]].map({1: "responder", 0: "non-responder"})  # True == 1
    return table_one(data, config["label"], cont, cat)


def pretraining_section(prepared: Pretrained | None, config: dict) -> Section:
    """The MIT-BIH pretraining results of the prepare stage, or why there are none."""
    results = prepared.results if prepared is not None else None
    if results is None:
        if prepared is not None:
            return Section("ecg_transfer: pretraining",
                           f"No pretraining in this run: the weights of `{prepared.weights}` were fine-tuned.")
        if not config["finetune"]["transfer"]:
            return Section("ecg_transfer: pretraining",
                           "No pretraining in this run: no transfer model was asked for (`finetune.transfer: false`).")
        return Section("ecg_transfer: pretraining", "Pretraining was disabled (`pretrain.enabled: false`).")
    pc = results["per_class"]
    subset = []
    if results["max_beats_per_class"]:
        subset.append(f"at most {results['max_beats_per_class']} DS1 beats per class drawn at random "
                      f"(of ~51,000; `pretrain.max_beats_per_class`)")
    if results["max_eval_beats"]:
        subset.append(f"a random {results['max_eval_beats']} of the ~49,700 DS2 beats as test set "
                      f"(`pretrain.max_eval_beats`)")
    subset_text = ("This run used a **subset** of MIT-BIH for speed: " + "; ".join(subset) +
                   ". `benchmarks/aami_interpatient.py` and `--set profile=paper` use all beats.") if subset else \
        "All DS1 beats trained and all DS2 beats were tested."
    text = (f"{results['arch']} trained on MIT-BIH records of DS1 ({len(results['train_records'])} records; beats per "
            f"AAMI class {results['train_counts']}) and tested on DS2 ({len(results['test_records'])} records, "
            f"{results['n']} beats: {results['test_counts']}), the de Chazal inter-patient split without the paced "
            f"records. Beats are cut at the reference beat annotations. {subset_text} "
            f"Epochs run: {results['epochs_run']} (best {results['best_epoch']}, on the DS1 validation records). "
            + (f"Besides each beat's spectrogram, the pretraining head saw {len(results['side_features'])} side "
               f"features ({', '.join(results['side_features'])}: RR intervals and QRS shape relative to the "
               f"beat's own record, `pretrain.side_features`); fine-tuning transfers the image backbone only. "
               if results.get("side_features") else "")
            + (f"Test logits were shifted from the sampled class mix back to DS1's natural one "
               f"(`pretrain.prior_correction`, strength {results.get('prior_strength', 1.0):g}"
               + (", chosen by macro F1 on the DS1 validation records" if results.get("prior_strength_scores") else "")
               + "). " if any(results.get("prior_correction") or []) else "")
            + "\n\n"
            f"DS2 accuracy **{results['accuracy']:.3f}** {pretrain_mod.ci_text(results, 'accuracy')}, "
            f"macro F1 {results['macro_f1']:.3f} "
            f"(over classes {', '.join(results['macro_f1_classes'])}), V sensitivity "
            f"{_num(pc['V']['se'])} {pretrain_mod.ci_text(results, 'se_V')}, V +P {_num(pc['V']['ppv'])}, "
            f"S sensitivity {_num(pc['S']['se'])}"
            + (f". Intervals are {results['ci']['estimates']['accuracy']['level']:.0%} percentile bootstrap "
               f"intervals that resample the {results['ci']['n_records']} test records, not beats."
               if results.get("ci") else "."))
    figures = [prepared.figure] if prepared.figure is not None and prepared.figure.is_file() else []
    table = pretrain_mod.results_table(results)
    return Section("ecg_transfer: pretraining (MIT-BIH, AAMI classes)", text, figures,
                   {"DS2 per class": table.round(4)},
                   estimates=[{"metric": "aami_accuracy", "estimate": results["accuracy"], "n": results["n"],
                               "method": "DS1->DS2", "model": results["arch"], "task": "aami_pretraining"},
                              {"metric": "aami_macro_f1", "estimate": results["macro_f1"], "n": results["n"],
                               "method": "DS1->DS2", "model": results["arch"], "task": "aami_pretraining"}])


def _num(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def sections(predictions: Predictions, cohort, prepared: Pretrained | None, config: dict, ctx) -> list[Section]:
    """Table 2, Table 1 and the pretraining results (`prepared`, the prepare stage's result)."""
    level = float(config["stats"]["level"])
    t2 = table2(predictions, level=level, seed=ctx.seed)
    text = (f"As the paper's Table 2, out-of-fold over {predictions.table['fold'].nunique()} folds split by patient. "
            "A patient's ResNet score is the **mean of the response probabilities of their beats**. Each model's "
            "threshold is Youden's, chosen on its training fold only (ResNets: on the patient scores of the training "
            f"fold's {'validation patients' if config['finetune']['threshold_rows'] == 'validation' else 'patients'}; "
            "SVM and random forest: on out-of-fold scores within the training fold); the guideline rule scores 0/1 "
            "(LBBB and QRS >= "
            f"{config['baselines']['guideline']['qrs_ms']} ms and LVEF <= "
            f"{config['baselines']['guideline']['lvef_max']}%) "
            f"at threshold 0.5. Pooled columns carry {int(level * 100)}% CIs (AUC: DeLong; proportions: Wilson); "
            "the (folds) columns are mean ± SD over folds, as the paper reports.")
    out = [Section("ecg_transfer: Table 2, model comparison", text, tables={"Table 2": t2})]
    try:
        t1 = table1(cohort, config)
    except StatsError as exc:
        ctx.log.warning("Table 1 skipped: %s", exc)
        t1 = None
    if t1 is not None:
        out.append(Section("ecg_transfer: Table 1, baseline characteristics by response",
                           "Patients of the cohort by responder status (mean ± SD, Welch t-test; n (%), chi-square "
                           "or Fisher).", tables={"Table 1": t1}))
    if config["pretrain"]["enabled"]:
        out.append(pretraining_section(prepared, config))
    return out
