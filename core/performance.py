"""Built-in plugin: the core's evaluation of every model and task, with CIs, tests and figures.

Registered before any installed plugin (`cardio.plugins.DEFAULT_PLUGINS`) and run first, so the
performance section leads the report.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

from cardio.data import PluginInfo, Predictions, Section
from cardio.hookspecs import hookimpl

if TYPE_CHECKING:
    from cardio.context import RunContext

MAX_AGREEMENT_FIGURES = 8
# The performance table's columns, as the report shows them (metrics.json keeps the metric names).
HEADERS = {"model": "model", "task": "task", "n": "n", "auc": "AUC", "auc_fold_mean": "AUC, mean ± SD over folds",
           "accuracy": "accuracy",
           "sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV", "f1": "F1",
           "brier": "Brier score", "calibration_slope": "calibration slope",
           "calibration_intercept": "calibration intercept", "mae": "MAE", "rmse": "RMSE", "r2": "R²",
           "ba_bias": "Bland–Altman bias"}


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="performance", modality=None,
                      description="Evaluates every model and task: AUC with DeLong and bootstrap CIs, "
                                  "thresholded metrics with Wilson CIs, paired tests, ROC, calibration and confusion "
                                  "figures.")


@hookimpl(tryfirst=True)
def cardio_evaluate(predictions: Predictions, config: dict, ctx: RunContext) -> Section:
    return evaluate_section(predictions, config, ctx)


def summary_table(estimates: list[dict]) -> pd.DataFrame:
    """Pooled out-of-fold estimates, one row per model and task."""
    from cardio.stats import format_ci  # loaded when a run evaluates: `cardio plugins` stays fast

    pooled = [e for e in estimates if e.get("fold") == "pooled" and e.get("subgroup") is None
              and e.get("repeat", 0) == 0]
    rows: dict[tuple, dict] = {}
    for e in pooled:
        if e["metric"] == "auc" and e["method"] != "delong":
            continue  # the bootstrap AUC interval is in metrics.json; the table shows DeLong's
        row = rows.setdefault((e["model"], e["task"]), {"model": e["model"], "task": e["task"], "n": e["n"]})
        row[e["metric"]] = format_ci(e)
        folds = (e.get("extra") or {}).get("fold_summary") if e["metric"] == "auc" else None
        if folds:  # beside the pooled AUC: pooling can rank below chance when there is no signal
            sd = "" if folds["sd"] is None else f" ± {folds['sd']:.3f}"
            row["auc_fold_mean"] = f"{folds['mean']:.3f}{sd}"
    df = pd.DataFrame(list(rows.values()))
    return df[[c for c in HEADERS if c in df.columns]].rename(columns=HEADERS) if len(df) else df


def evaluate_section(predictions: Predictions, config: dict, ctx) -> Section:
    """The core's evaluation of every model and task, with CIs, tests and figures."""
    from cardio.report import display_name, split_unit

    stats = ctx.stats
    s = config["stats"]
    names = config["report"]["display_names"]
    table = predictions.table
    estimates, tests = [], []
    # Repeated k-fold predicts each record once per repeat: each repeat is evaluated on its own.
    for repeat, part in table.groupby("repeat", sort=True):
        est, tst = stats.evaluate_predictions(part.drop(columns="repeat"), level=s["level"],
                                              n_resamples=s["n_resamples"], seed=ctx.seed,
                                              reference=s.get("reference"),
                                              across_tasks=bool(s.get("reference_across_tasks")))
        estimates += [{**e, "repeat": int(repeat)} for e in est]
        tests += [{**t, "repeat": int(repeat)} for t in tst]
    n_repeats = table["repeat"].nunique()
    table = table[table["repeat"] == table["repeat"].min()]  # figures show the first repeat
    figures = []
    draw = bool(config["report"].get("figures", True))  # off: sweeps and tests that read metrics.json only
    for task, sub in table[table["kind"] == "binary"].groupby("task", sort=False):
        figures += binary_figures(task, sub, names, float(s["level"]), ctx) if draw else []
    regression = table[table["kind"] == "regression"].groupby(["model", "task"], sort=False)
    for i, ((model, task), g) in enumerate(regression):
        if i >= MAX_AGREEMENT_FIGURES or not draw:
            break
        quantity, unit = split_unit(display_name(task, names))
        fig = stats.plot_bland_altman(g["y_true"].to_numpy(), g["y_score"].to_numpy(), quantity=quantity, unit=unit,
                                      title=f"{display_name(model, names)} / {quantity} (out-of-fold)")
        figures.append(ctx.save_figure(fig, f"bland_altman_{_slug(model)}_{_slug(task)}"))
    level = int(round(s["level"] * 100))
    if set(table["fold"].astype(str)) == {"external"}:
        text = _external_text(level, s, ctx.seed)
    else:
        text = _cv_text(table, config, level, s, ctx.seed)
    if table["record_id"].nunique() > table["patient_id"].nunique():
        text += (" Some patients have several records, and records of one patient are not independent: for those "
                 "tasks every interval and test counts patients. DeLong's variance is Obuchowski's clustered one "
                 "(1997), the bootstraps resample patients with all their records (thresholded proportions then get "
                 "these intervals instead of Wilson's), and calibration intervals are cluster-robust by patient.")
    below = [e for e in estimates if e["repeat"] == 0 and e.get("subgroup") is None
             and (e.get("extra") or {}).get("below_chance")]
    if below:
        text += (" **Pooled AUC below chance** (interval under 0.5): " + "; ".join(
            f"{display_name(e['model'], names)} / {display_name(e['task'], names)} {e['estimate']:.3f}, mean over "
            f"folds {e['extra']['fold_summary']['mean']:.3f}" for e in below)
            + ". A pooled AUC below chance is no evidence of a reversed effect.")
    tables = {"performance": summary_table(estimates)}
    if n_repeats > 1:
        text += f" The table and figures show repeat 0 of {n_repeats}; every repeat is in metrics.json."
        aucs = pd.DataFrame([e for e in estimates if e["metric"] == "auc" and e["method"] == "delong"
                             and e["fold"] == "pooled"])
        tables["AUC across repeats"] = aucs.groupby(["model", "task"])["estimate"].agg(
            ["mean", "std", "min", "max"]).reset_index()
    shown = [t for t in tests if t["repeat"] == 0]
    text += _reference_text(s.get("reference"), shown, names)
    for family, title in (("reference", "paired DeLong tests against the reference"),
                          ("all pairs", "paired DeLong tests"),
                          ("exploratory", "exploratory paired DeLong tests (neither model the reference)")):
        rows = [t for t in shown if t["extra"].get("family", "all pairs") == family]
        if rows:
            tables[title] = pd.DataFrame([{
                "task": t["extra"].get("task"), "model A": t["extra"].get("model_a"),
                "model B": t["extra"].get("model_b"), "ΔAUC (A − B)": _diff(t["extra"], level),
                "z": round(t["statistic"], 3) if t["statistic"] is not None else None, "p": t["p_value"],
                "p (Holm)": t.get("p_adjusted")} for t in rows])
    return Section("Performance", text, figures, tables, estimates, tests)


def _diff(extra: dict, level: int) -> str:
    """The AUC difference with its DeLong interval, as one cell."""
    if extra.get("diff") is None:
        return "–"
    return f"{extra['diff']:+.3f} [{extra['diff_ci_low']:+.3f}, {extra['diff_ci_high']:+.3f}]"


def _reference_text(reference: str | dict | None, tests: list[dict], names: dict) -> str:
    """What the paired tests are: against a reference fixed in the config, or every pair (no reference)."""
    from cardio.report import display_name

    if not tests:
        return ""
    if reference is None:
        return (" No reference model was named (`stats.reference`), so every pair of models is tested, one Holm "
                "family per task; name the reference before looking at results to test a pre-specified claim.")
    if not any(t["extra"].get("family") == "reference" for t in tests):
        return (f" The reference model named in the config (`stats.reference`: {reference}) made no prediction in "
                "this run, so every pair of models is tested, one Holm family per task.")
    named = (display_name(reference, names) if isinstance(reference, str)
             else "; ".join(f"{display_name(t, names)}: {display_name(m, names)}" for t, m in reference.items()))
    over = "Holm over every task: `stats.reference_across_tasks`" if any(
        "over every task" in str(t.get("adjustment", "")) for t in tests) else "Holm per task"
    return (f" The reference model, fixed in the config before the results (`stats.reference`), is {named}: its "
            f"paired DeLong tests against each other model are the confirmatory family ({over}). Tests "
            "between two other models are exploratory, adjusted as a family of their own.")


def binary_figures(task: str, sub: pd.DataFrame, names: dict, level: float, ctx) -> list:
    """ROC (small multiples when several models), calibration and decision curve for the models that output
    risks, and the confusion matrices at the training-fold thresholds, of one binary task."""
    from sklearn.metrics import confusion_matrix

    from cardio.report import display_name
    from cardio.stats.evaluate import DEFAULT_THRESHOLD, is_probabilistic

    stats = ctx.stats
    shown = display_name(task, names)
    curves = {m: (g["y_true"].to_numpy(), g["y_score"].to_numpy()) for m, g in sub.groupby("model", sort=False)}
    fig = stats.plot_roc({display_name(m, names): c for m, c in curves.items()},
                         title=f"ROC, {shown} (out-of-fold)", seed=ctx.seed, level=level)
    figures = [ctx.save_figure(fig, f"roc_{_slug(task)}")]
    risks = {m: p for m, (_, p) in curves.items() if is_probabilistic(p)}  # not yes/no rules
    for model, p in risks.items():
        fig = stats.plot_calibration(curves[model][0], p,
                                     title=f"Calibration, {display_name(model, names)} / {shown} (out-of-fold)")
        figures.append(ctx.save_figure(fig, f"calibration_{_slug(model)}_{_slug(task)}"))
    if risks:  # models aligned on the records every one of them scored
        wide = sub[sub["model"].isin(list(risks))].pivot_table(index="record_id", columns="model",
                                                               values="y_score").dropna()
        y = sub.drop_duplicates("record_id").set_index("record_id").loc[wide.index, "y_true"].to_numpy()
        fig = stats.plot_decision_curve(y, {display_name(m, names): wide[m].to_numpy() for m in risks},
                                        title=f"Decision curve, {shown} (out-of-fold, {len(y)} records)")
        figures.append(ctx.save_figure(fig, f"decision_curve_{_slug(task)}"))
    matrices = {}
    for model, g in sub.groupby("model", sort=False):
        thr = g["threshold"].fillna(DEFAULT_THRESHOLD) if "threshold" in g.columns else DEFAULT_THRESHOLD
        predicted = (g["y_score"] >= thr).astype(int)
        matrices[display_name(model, names)] = confusion_matrix(g["y_true"].astype(int), predicted, labels=[0, 1])
    classes = [names.get(f"{task}=0", "negative (0)"), names.get(f"{task}=1", "positive (1)")]
    fig = stats.plot_confusion(matrices, classes,
                               title=f"Confusion at the training-fold thresholds, {shown} (out-of-fold)")
    figures.append(ctx.save_figure(fig, f"confusion_{_slug(task)}"))
    return figures


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(name)).strip("_").lower()


def _cv_text(table: pd.DataFrame, config: dict, level: int, s: dict, seed: int) -> str:
    """What the estimates of a cross-validated run are."""
    return (f"Out-of-fold predictions pooled over {table['fold'].nunique()} fold(s) of "
            f"`cv.method={config['cv']['method']}`, split by patient. Intervals are {level}% "
            f"(AUC: DeLong; proportions: Wilson; regression: bootstrap, {s['n_resamples']} resamples, "
            f"seed {seed}). The pooled AUC ranks every out-of-fold score together; beside it, the mean ± SD of "
            "the per-fold AUCs (with no signal, pooled scores of models fitted on different folds can rank below "
            "0.5; the report flags a pooled AUC whose interval lies below chance). "
            "These intervals count which patients were scored, not that another training set would give another "
            "model: with no signal (400 data sets of 200 patients, a logistic model, `benchmarks/cv_auc_null.py`) "
            "the 95% DeLong interval of a pooled AUC lay above 0.5 in 5.5%, not 2.5%. A claim that a model beats "
            "chance at all "
            "needs the whole cross-validation rerun on permuted labels (`cardio sweep --grid "
            "cohort.permute_labels=true --seeds 1-99 --permutation-of RUN`: a permutation p-value per model), "
            "which held 4% there. "
            "Thresholds were chosen on training folds only (0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. "
            "For models that output risks: Brier score (bootstrap CI), calibration slope (1 is ideal) and "
            "intercept (0 is ideal) with Wald CIs, calibration plots and a decision curve; yes/no rules get none. "
            "Paired DeLong tests of one task are one family: p-values are shown raw and Holm-adjusted.")


def _external_text(level: int, s: dict, seed: int) -> str:
    """What the estimates of a model applied to a new cohort (cardio predict) are."""
    return (f"Predictions of the exported model on this cohort: one set of scores, nothing cross-validated, "
            f"refitted or recalibrated here. Intervals are {level}% (AUC: DeLong; proportions: Wilson; "
            f"regression: bootstrap, {s['n_resamples']} resamples, seed {seed}). Thresholds are those chosen on "
            "the training cohort when the model was fitted (0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. For models that output risks: "
            "Brier score (bootstrap CI), calibration slope and intercept on this cohort with Wald CIs (a fit that "
            "is unstable is reported as not estimable), calibration plots and a decision curve. Paired DeLong tests "
            "of one task are one family: p-values are shown raw and Holm-adjusted.")
