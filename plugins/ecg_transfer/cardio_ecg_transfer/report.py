"""The plugin's report sections: Table 2 (the paper's model comparison), Table 1, and the pretraining results."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CoreSettings, Predictions, Section
from cardio_ecg_transfer import beat_metrics
from cardio_ecg_transfer.fold_models import Prepared
from cardio_ecg_transfer.pretrain import Pretrained
from cardio_ecg_transfer.settings import EcgSettings
from cardio_stats import (
    PAIRED_DELONG,
    StatsError,
    format_ci,
    format_paired,
    headline_auc,
    interval_note,
    note_on_tests,
    paired_note,
    paired_test,
    pick,
    table_one,
)

GROUPS = {"guideline": "guideline rule", "svm": "clinical covariates", "random_forest": "clinical covariates"}
# the fold columns' heading says, in the table itself, that their ± is not the paper's (issue 56)
FOLDS = "(folds, not the paper's ±)"


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


def fold_sd_note(predictions: Predictions) -> str:
    """Why the fold SDs cannot be set beside the paper's ± figures: the SD a proportion has over folds this size."""
    table = predictions.table
    labelled = table[(table["kind"] == "binary") & table["y_true"].notna()]
    per_fold = labelled.drop_duplicates(["fold", "patient_id"]).groupby("fold").size()
    if per_fold.empty:
        return ""
    n = float(per_fold.mean())
    sd = float(np.sqrt(0.7 * 0.3 / n))
    paper = float(np.sqrt(0.7 * 0.3 / (71 / 5)))
    return (f"**The fold SDs are not comparable with the paper's ± figures (0.011-0.018).** A fold here holds about "
            f"{n:.0f} patients, and a proportion near 0.7 measured on {n:.0f} patients varies from fold to fold with "
            f"an SD of about {sd:.2f} from sampling alone (√(0.7 × 0.3 / {n:.0f})); the paper's 71 patients in 5 folds "
            f"give about {paper:.2f}. Its ±0.011-0.018 are far below what an SD over its folds could be, and the paper "
            "does not say what they measure, so the two columns are not alike. ")


def _training(model: str) -> str:
    if model.endswith("-transfer"):
        return "pretrained on MIT-BIH, fine-tuned"
    if model.endswith("-scratch"):
        return "from scratch"
    return GROUPS.get(model, "")


def _one(estimates: list[dict], **keys) -> dict | None:
    """The core's pooled estimate of these keys, or None where it computed none."""
    found = pick(estimates, fold="pooled", **keys)
    return found[0] if found else None


def table2(predictions: Predictions, estimates: list[dict], tests: list[dict], reference: str | None = None,
           repeat: int = 0) -> pd.DataFrame:
    """One row per model: the performance table's AUC (its headline: the cross-validated AUC with its cross-validated
    interval in a K-fold run) and pooled accuracy, sensitivity, specificity at the training-fold thresholds, then
    their mean ± SD over folds (the paper's columns, from `predictions`); then the comparisons with `reference`
    (pre-specified) and with the best model (exploratory), from `tests`."""
    table = predictions.table
    if "repeat" in table.columns:
        table = table[table["repeat"] == repeat]
    table = table[(table["kind"] == "binary") & table["y_true"].notna()].copy()  # patients without a label: no row
    if "threshold" not in table.columns:
        table["threshold"] = 0.5
    table["threshold"] = table["threshold"].fillna(0.5)
    rows = []
    for (model, task), g in table.groupby(["model", "task"], sort=False):
        keys = {"model": model, "task": task, "repeat": repeat}
        auc = headline_auc(estimates, **keys)
        row = {"model": model, "training": _training(model), "n": int(len(g)), "AUC": format_ci(auc)}
        for metric in ("accuracy", "sensitivity", "specificity"):
            row[metric] = format_ci(_one(estimates, metric=metric, **keys))
        for metric in ("accuracy", "sensitivity", "specificity"):
            row[f"{metric} {FOLDS}"] = _fold_mean_sd(g, metric)
        rows.append(row)
    task = table["task"].iloc[0] if len(table) else None
    return _comparisons(pd.DataFrame(rows), pick(tests, task=task, repeat=repeat), reference)


def reference_model(config: dict, task: str | None = None) -> str | None:
    """The model named in the config before any result (`stats.reference`: a name, or task -> name; the task is the
    label, `responder` by default, as in every plugin whose outcome it is)."""
    core = CoreSettings.of(config)
    return core.stats.reference_for(task or core.label)


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.3g}"


def _comparisons(t2: pd.DataFrame, tests: list[dict], reference: str | None) -> pd.DataFrame:
    """Columns comparing each model's AUC with the pre-specified reference's (the core's paired tests as the
    performance section prints them: the cross-validated difference in a K-fold run, Holm over that family), and
    with the best model of these data (exploratory: the best is picked after seeing them)."""
    t2 = t2.copy()
    auc = pd.to_numeric(t2["AUC"].astype(str).str.split(" ").str[0], errors="coerce") if len(t2) else pd.Series()
    shown = dict(zip(t2["model"], auc))
    if reference is not None and reference in set(t2["model"]):
        vs = {m: r for m in t2["model"] if m != reference and (r := paired_test(tests, reference, m, interval="cv"))}
        t2[f"ΔAUC {reference} − model [CI]"] = ["reference" if m == reference else
                                                format_paired(vs[m], (shown[reference], shown[m])) if m in vs
                                                else "–" for m in t2["model"]]
        t2["p vs reference"] = [_p(vs[m]["p"]) if m in vs else "–" for m in t2["model"]]
        t2["p vs reference (Holm)"] = [_p(vs[m]["p_holm"]) if m in vs else "–" for m in t2["model"]]
    if auc.notna().sum() >= 2:
        best = t2["model"].iloc[int(auc.idxmax())]
        vb = {m: r for m in t2["model"] if m != best and (r := paired_test(tests, best, m, interval="cv"))}
        t2["exploratory: ΔAUC best − model"] = ["best" if m == best else
                                                format_paired(vb[m], (shown[best], shown[m]), interval=False)
                                                if m in vb else "–" for m in t2["model"]]
        t2["exploratory: p vs best (unadjusted)"] = [_p(vb[m]["p"]) if m in vb else "–"
                                                     for m in t2["model"]]
    return t2


def comparison_text(reference: str | None, models: list[str], method: str = "paired DeLong") -> str:
    """What Table 2's comparison columns test, naming the pre-specified reference and the interval (`method`)."""
    explore = ("The exploratory columns compare each model with the best AUC of these data; that model is picked "
               "after seeing the results, so their p-values are too small to test anything: they describe these "
               "data only.")
    if reference is None:
        return ("No reference model was named before the results (`stats.reference: null`): no comparison is "
                "confirmatory. " + explore)
    if reference not in models:
        return (f"The pre-specified reference `{reference}` (`stats.reference`) made no prediction in this run "
                f"(models: {', '.join(models)}): no confirmatory comparison. " + explore)
    return (f"The reference, named in the config before any result (`stats.reference`), is **{reference}**, the "
            f"paper's claim. It is compared with each other model on the patients both scored ({_test_text(method)}), "
            "the p-values Holm-adjusted over those comparisons. " + explore)


def _auc_text(estimates: list[dict], models: list[str], task: str) -> str:
    """The interval Table 2's AUC column carries: the performance table's headline, named."""
    methods = sorted({e["method"] for m in models if (e := headline_auc(estimates, model=m, task=task))})
    return "; ".join(interval_note(m) for m in methods) or "none estimated"


def _test_method(tests: list[dict], reference: str | None) -> str:
    """The interval of the reference's comparisons (the cross-validated one in a K-fold run)."""
    shown = [paired_test(tests, str(t.get("model_a")), str(t.get("model_b")), interval="cv") for t in tests
             if reference in (t.get("model_a"), t.get("model_b"))]
    return next((str(t["method"]) for t in shown if t and t.get("method")), "paired DeLong")


def _test_text(method: str) -> str:
    """The paired comparison's interval, as the performance section prints it."""
    if method in PAIRED_DELONG.values():
        return "paired DeLong test, clustered by patient where a patient has several ECG rows; " + interval_note(method)
    return "cross-validated ΔAUC, the mean of the per-fold differences, and its p; " + interval_note(method)


def table2_repeats(predictions: Predictions, estimates: list[dict], tests: list[dict], reference: str | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(Table 2 of the first repeat, or of the single one; a summary over repeats or None).

    Repeated k-fold predicts each patient once per repeat: pooling the repeats would count every
    patient several times and make the CIs too narrow. The performance section evaluates each repeat on
    its own; each repeat's Table 2 pivots that repeat's estimates, and the repeats are summarised by the
    mean, SD and range of each model's estimates over them.
    """
    table = predictions.table
    if "repeat" not in table.columns or table["repeat"].nunique() <= 1:
        return table2(predictions, estimates, tests, reference), None
    per_repeat = []
    for r in sorted(table["repeat"].unique()):
        t = table2(predictions, estimates, tests, reference, repeat=int(r))
        t.insert(0, "repeat", int(r))
        per_repeat.append(t)
    first = per_repeat[0].drop(columns="repeat")
    rows = []
    for model, g in pd.concat(per_repeat).groupby("model", sort=False):
        row = {"model": model, "repeats": int(len(g))}
        for col in ("AUC", "accuracy", "sensitivity", "specificity"):
            v = pd.to_numeric(g[col].str.split(" ").str[0], errors="coerce").dropna()
            row[f"{col} mean ± SD"] = f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else "–"
            row[f"{col} range"] = f"{v.min():.3f}–{v.max():.3f}" if len(v) else "–"
        rows.append(row)
    return first, pd.DataFrame(rows)


def synthetic_truth(config: dict) -> str:
    """'Synthetic truth: ...' of the plugin's own synthetic cohort: its planted effects as config values."""
    from cardio_ecg_transfer import synthetic

    e = synthetic.effects(EcgSettings.of(config).synthetic.effects.as_dict())
    return ("Synthetic truth (`ecg_transfer.synthetic.effects`): response ~ Bernoulli(logistic(logit)), logit = "
            f"{e['intercept']:g} + {e['notch']:g} × (mid-QRS notch depth − 0.45) "
            f"+ {e['qrs_per_ms']:g} × (QRS ms − 170) "
            f"+ {e['lbbb']:g} × LBBB + {e['lvef_per_pct']:g} × (LVEF % − 27) + {e['dm']:g} × diabetes "
            f"+ {e['scar_per_pct']:g} × (scar % − 26) + N(0, {e['noise_sd']:g}²). The notch is in the waveform only "
            "(no table column), so only a model that reads the ECG can use it; QRS and LBBB are read with error. "
            "Nothing here is evidence for the paper's clinical claim: the cohort holds what these values put in.")


def patient_table(cohort) -> pd.DataFrame:
    """One row per patient with a label (the first record's covariates)."""
    table = cohort.table
    return table[table[cohort.label].notna()].drop_duplicates("patient_id").reset_index(drop=True)


def table1(cohort, config: dict) -> pd.DataFrame | None:
    rep = EcgSettings.of(config).report
    patients = patient_table(cohort)
    cont = [c for c in rep.table1_continuous if c in patients.columns]
    cat = [c for c in rep.table1_categorical if c in patients.columns]
    if not cont and not cat:
        return None
    label = CoreSettings.of(config).label
    data = patients[[label, *cont, *cat]].copy()
    data[label] = data[label].map({1: "responder", 0: "non-responder"})  # True == 1
    if rep.table1_tests == "paper":  # uncorrected chi-square: Yates' misses the paper's p (CKD 0.473 for its 0.235)
        return table_one(data, label, cont, cat, tests="student-chi2", yates=False)
    return table_one(data, label, cont, cat)


def given_weights(path: Path) -> str:
    """pretrain.weights_file in words: the file, its whole sha256, and whether its name's hash checked it."""
    from cardio_public.weights import name_hash, sha256_of

    how = ("checked against the hash its name carries" if name_hash(path) else
           "not checked: its name carries no hash, as a run's own checkpoints/ file does")
    return f"the weights of `{path}` (sha256 {sha256_of(path)}, {how}) were fine-tuned."


def pretraining_section(prepared: Pretrained | None, config: dict) -> Section:
    """The MIT-BIH pretraining results of the prepare stage, or why there are none."""
    if prepared is None or prepared.results is None:
        if prepared is not None:
            return Section("ecg_transfer: pretraining",
                           f"No pretraining in this run: {given_weights(prepared.weights)}")
        if not EcgSettings.of(config).finetune.transfer:
            return Section("ecg_transfer: pretraining", "No pretraining in this run: no transfer model was asked "
                           "for (`ecg_transfer.finetune.transfer: false`).")
        return Section("ecg_transfer: pretraining",
                       "Pretraining was disabled (`ecg_transfer.pretrain.enabled: false`).")
    results = prepared.results
    pc = results["per_class"]
    base = results.get("always_n") or {}
    subset = []
    if results["max_beats_per_class"]:
        subset.append(f"at most {results['max_beats_per_class']} beats per class of the fitting records drawn at "
                      f"random (`ecg_transfer.pretrain.max_beats_per_class`)")
    if results["max_eval_beats"]:
        subset.append(f"a random {results['max_eval_beats']} beats of the validation records "
                      f"(`ecg_transfer.pretrain.max_eval_beats`)")
    subset_text = ("This run used a **subset** of DS1 for speed: " + "; ".join(subset) + ". ") if subset else ""
    text = (f"{results['arch']} trained on MIT-BIH DS1 records ({len(results['train_records'])} fitting records; "
            f"beats per AAMI class {results['train_counts']}) and evaluated on {len(results['val_records'])} other "
            f"DS1 records held out by record ({results['n']} beats: {results['val_counts']}). These validation "
            "records also stopped the training and chose the prior strength, so the figures below are optimistic "
            "estimates for the pretraining task, not an inter-patient test result. DS2, the de Chazal test set, is "
            "never read by a run: it is predicted only by `benchmarks/aami_interpatient.py --mode final`, which "
            "records every look in `benchmarks/ledgers/aami_ds2.csv`. Beats are cut at the reference beat "
            f"annotations; paced records are left out. {subset_text}"
            f"Epochs run: {results['epochs_run']} (best {results['best_epoch']}). "
            + (f"Besides each beat's spectrogram, the pretraining head saw {len(results['side_features'])} side "
               f"features ({', '.join(results['side_features'])}: RR intervals and beat shape relative to the "
               f"beat's own record, `ecg_transfer.pretrain.side_features`); fine-tuning transfers the image "
               "backbone only. "
               if results.get("side_features") else "")
            + (f"Logits were shifted from the sampled class mix back to DS1's natural one "
               f"(`ecg_transfer.pretrain.prior_correction`, strength {results.get('prior_strength', 1.0):g}"
               + (", chosen by macro F1 on the DS1 validation records" if results.get("prior_strength_scores") else "")
               + "). " if results.get("prior_strength_scores") or any(results.get("prior_correction") or []) else "")
            + "\n\n"
            f"DS1 validation macro F1 **{results['macro_f1']:.3f}**{_ci(results, 'macro_f1')} "
            f"(over classes {', '.join(results['macro_f1_classes'])}; always N: {_num(base.get('macro_f1'))}), "
            f"balanced accuracy {results['balanced_accuracy']:.3f}{_ci(results, 'balanced_accuracy')} "
            f"(always N: {_num(base.get('balanced_accuracy'))}), V Se {_num(pc['V']['se'])}{_ci(results, 'se_V')}, "
            f"V +P {_num(pc['V']['ppv'])}{_ci(results, 'ppv_V')}, S Se {_num(pc['S']['se'])}{_ci(results, 'se_S')}, "
            f"accuracy {results['accuracy']:.3f} (always N: {_num(base.get('accuracy'))})"
            + (f". Intervals are {results['ci']['estimates']['accuracy']['level']:.0%} Wilson intervals at the "
               f"effective sample size the {results['ci']['n_records']} validation records leave (records, not "
               "beats, the units; the variance bias-reduced for records of unequal size), at t's quantile with "
               "Bell–McCaffrey degrees of freedom; with few records they are wide, and they do not count the choices "
               "these records made."
               if (results.get("ci") or {}).get("estimates") else
               f". No interval: {results['ci']['skipped']} (`ecg_transfer.pretrain.val_fraction`, "
               "`ecg_transfer.pretrain.records`)."
               if (results.get("ci") or {}).get("skipped") else "."))
    figures = [prepared.figure] if prepared.figure is not None and prepared.figure.is_file() else []
    table = beat_metrics.results_table(results)
    if base:
        table["Se (always N)"] = [v["se"] for v in base["per_class"].values()]
        table["+P (always N)"] = [v["ppv"] for v in base["per_class"].values()]
    est = dict(n=results["n"], method="DS1 validation records", model=results["arch"], task="aami_pretraining")
    return Section("ecg_transfer: pretraining (MIT-BIH DS1, AAMI classes)", text, figures,
                   {"DS1 validation records, per class": table.round(4)},
                   estimates=[{"metric": "aami_macro_f1", "estimate": results["macro_f1"], **est},
                              {"metric": "aami_balanced_accuracy", "estimate": results["balanced_accuracy"], **est},
                              {"metric": "aami_accuracy", "estimate": results["accuracy"], **est}])


def _ci(results: dict, key: str) -> str:
    text = beat_metrics.ci_text(results, key)
    return f" {text}" if text else ""


def _num(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def explain_section(fold_models, features, index: np.ndarray, config: dict, ctx) -> Section | None:
    """Grad-CAM of the explained fold's ResNet (attribution.py computes and draws it)."""
    from cardio_ecg_transfer import attribution  # torch: loaded when a run explains, not when it evaluates

    return attribution.explain_section(fold_models, features, index, config, ctx)


def overlap_text(overlap: tuple[tuple[str, str, float], ...], n_records: int) -> str:
    """What the report says of cohort ECGs that are MIT-BIH records the backbone was pretrained on."""
    return (f"**{len(overlap)} of the cohort's {n_records} ECGs are MIT-BIH recordings** that the transfer "
            "models' backbone was pretrained on, found by content (the R-R intervals of their beats in MIT-BIH's "
            "reference annotations, then the waveform, r >= 0.95; not by file name): "
            + ", ".join(f"{rid} = MIT-BIH {rec}" for rid, rec, _ in overlap[:10])
            + (" ..." if len(overlap) > 10 else "")
            + ". The pretraining saw their beats (with beat-type labels, not this cohort's outcome), so the transfer "
            "models are not independent of these ECGs: their estimates on them may be optimistic.")


def evaluate_sections(predictions: Predictions, cohort, prepared: Prepared, config: dict, ctx,
                      estimates: list[dict], tests: list[dict]) -> list[Section]:
    """Table 2 (the performance section's `estimates` and `tests` in the paper's layout), Table 1 and the
    pretraining results (`prepared`, the prepare stage's result)."""
    core, s = CoreSettings.of(config), EcgSettings.of(config)
    level = core.stats.level
    rule = s.baselines.guideline
    reference = reference_model(config)
    t2, over_repeats = table2_repeats(predictions, estimates, tests, reference)
    auc_text = _auc_text(estimates, [str(m) for m in t2["model"]], core.label)
    text = (f"As the paper's Table 2, out-of-fold over {predictions.table['fold'].nunique()} folds split by patient. "
            "A patient's ResNet score is the **mean of the response probabilities of their beats** (with several "
            "ECGs, the mean of each ECG's). Each model's "
            "threshold is Youden's, chosen on its training fold only (ResNets: on the patient scores of the training "
            f"fold's {'validation patients' if s.finetune.threshold_rows == 'validation' else 'patients'}; "
            "SVM and random forest: on out-of-fold scores within the training fold); the guideline rule scores 0/1 "
            "(LBBB and QRS >= "
            f"{rule.qrs_ms} ms and LVEF <= "
            f"{rule.lvef_max}%) "
            f"at threshold 0.5. The AUC, the pooled columns and the comparisons are the performance section's "
            f"estimates and paired tests, laid out as the paper's table ({int(level * 100)}% CIs; AUC: "
            f"{auc_text}; proportions: Wilson, or a patient bootstrap "
            "where a patient has several ECGs, one fold's scores pooled: they ignore training variability); the "
            f"{FOLDS} columns are mean ± SD over folds, where the paper's layout has its ± figures, computed here "
            "from the out-of-fold "
            "predictions. " + fold_sd_note(predictions)
            + comparison_text(reference, [str(m) for m in t2["model"]], _test_method(tests, reference)))
    text += paired_note(t2.to_numpy().ravel())
    tables = {"Table 2": t2}
    if over_repeats is not None:
        n_rep = predictions.table["repeat"].nunique()
        text += (f" With {n_rep} repeats of the cross-validation, each patient is predicted once per repeat: Table 2 "
                 "shows repeat 0 (its CIs count each patient once) and the table across repeats gives the mean ± SD "
                 "and range of each estimate over the repeats, computed repeat by repeat (never on pooled "
                 "duplicates).")
        tables["Table 2 across repeats"] = over_repeats
    truth = cohort.planted_effects(lambda: synthetic_truth(config))
    if truth:
        text += "\n\n" + truth
    out = [Section("ecg_transfer: Table 2, model comparison", text, tables=tables)]
    overlap = cohort.stage.pretraining_overlap if cohort.stage is not None else ()
    if overlap:
        out.append(Section("Cohort ECGs that are MIT-BIH pretraining records", overlap_text(overlap, len(cohort)),
                           tables={"ECGs found in MIT-BIH": pd.DataFrame(
                               [{"record": rid, "MIT-BIH record": rec, "waveform r": r} for rid, rec, r in overlap])},
                           part="summary"))
    try:
        t1 = table1(cohort, config)
    except StatsError as exc:
        ctx.log.warning("Table 1 skipped: %s", exc)
        t1 = None
    if t1 is not None:
        out.append(Section("ecg_transfer: Table 1, baseline characteristics by response",
                           "Patients of the cohort by responder status (mean (SD) or median [Q1, Q3]; n (%)). "
                           + note_on_tests(t1) + (" These are the tests that reproduce the paper's p-values "
                           "(`ecg_transfer.report.table1_tests: paper`)." if s.report.table1_tests == "paper" else
                           " The paper's would be Student t and chi-square throughout "
                           "(`ecg_transfer.report.table1_tests: paper`)."), tables={"Table 1": t1}, part="cohort"))
    if s.pretrain.enabled:
        for arch, one in prepared.by_arch.items():
            section = dataclasses.replace(pretraining_section(one, config), part="methods")  # how the backbone was made
            out.append(dataclasses.replace(section, title=f"{section.title} ({arch})") if prepared.named else section)
    return out
