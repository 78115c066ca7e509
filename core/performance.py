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
HEADERS = {"model": "model", "task": "task", "n": "n", "auc": "AUC", "auc_interval": "AUC interval",
           "auc_pooled": "pooled AUC", "auc_fold_mean": "AUC, mean ± SD over folds",
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
        if e["metric"] == "auc" and e["method"] not in HEADLINE_AUC:
            continue  # the bootstrap AUC interval is in metrics.json
        row = rows.setdefault((e["model"], e["task"]), {"model": e["model"], "task": e["task"], "n": e["n"]})
        if e["metric"] == "auc":
            _auc_cells(row, e)
        else:
            row[e["metric"]] = format_ci(e)
    df = pd.DataFrame(list(rows.values()))
    return df[[c for c in HEADERS if c in df.columns]].rename(columns=HEADERS) if len(df) else df


# The AUC rows a report shows: the headline (cross-validated with K folds; small-sample DeLong of one model's
# scores otherwise) and the pooled DeLong estimate beside it. Every interval printed is one whose coverage
# benchmarks/cv_coverage.py shows.
HEADLINE_AUC = {"cv-corrected t (Nadeau & Bengio 2003)": "counts training variability",
                "delong-logit": "DeLong, logit small-sample interval: one model's scores, ignores training variability",
                "delong": ""}


def _auc_cells(row: dict, e: dict) -> None:
    """The headline AUC and the interval it carries, named; beside it, with K folds, the pooled AUC of every
    out-of-fold score (its DeLong interval, which ignores training variability, stays in metrics.json) and the
    mean ± SD over folds."""
    from cardio.stats import format_ci

    if e["method"] != "delong":
        row["auc"] = format_ci(e)
        row["auc_interval"] = (f"{e['method']}: {HEADLINE_AUC[e['method']]}" if e["method"] in HEADLINE_AUC
                               else e["method"])
        return
    folds = (e.get("extra") or {}).get("fold_summary")
    if folds:
        row["auc_pooled"] = f"{e['estimate']:.3f}"
        sd = "" if folds["sd"] is None else f" ± {folds['sd']:.3f}"
        row["auc_fold_mean"] = f"{folds['mean']:.3f}{sd}"


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
        legend = _headline_aucs(estimates, task, names)
        figures += binary_figures(task, sub, names, float(s["level"]), ctx, legend) if draw else []
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
    for family, title in (("reference", "paired tests against the reference"),
                          ("all pairs", "paired tests"),
                          ("exploratory", "exploratory paired tests (neither model the reference)")):
        rows = [t for t in shown if t["extra"].get("family", "all pairs") == family]
        if rows:
            tables[title] = pd.DataFrame([_test_row(t, level) for t in rows])
    return Section("Performance", text, figures, tables, estimates, tests)


def _test_row(t: dict, level: int) -> dict:
    """One paired comparison as the report shows it: with K folds the cross-validated difference (mean of the
    per-fold differences, corrected t: counts training variability), its p-value and Holm's; with one fold
    (holdout, external) the paired DeLong test of that one set of scores."""
    e = t["extra"]
    row = {"task": e.get("task"), "model A": e.get("model_a"), "model B": e.get("model_b")}
    if e.get("cv_diff") is not None:
        return {**row, "ΔAUC (A − B), cross-validated": f"{e['cv_diff']:+.3f} [{e['cv_diff_ci_low']:+.3f}, "
                                                        f"{e['cv_diff_ci_high']:+.3f}]",
                "p": e["cv_p_value"], "p (Holm)": e.get("cv_p_adjusted")}
    return {**row, "ΔAUC (A − B)": _diff(e, level), "z": round(t["statistic"], 3) if t["statistic"] is not None
            else None, "p": t["p_value"], "p (Holm)": t.get("p_adjusted")}


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
            f"paired tests against each other model are the confirmatory family ({over}). Tests "
            "between two other models are exploratory, adjusted as a family of their own.")


def _headline_aucs(estimates: list[dict], task: str, names: dict) -> dict[str, dict]:
    """Each model's AUC row that the performance table shows for this task (repeat 0), by display name: the ROC
    legend carries the same interval as the table."""
    from cardio.report import display_name

    out: dict[str, dict] = {}
    for e in estimates:
        if (e["metric"] == "auc" and e["task"] == task and e["fold"] == "pooled" and e.get("repeat", 0) == 0
                and e.get("subgroup") is None and e["method"] in HEADLINE_AUC and e["method"] != "delong"):
            out[display_name(e["model"], names)] = e
    return out


def binary_figures(task: str, sub: pd.DataFrame, names: dict, level: float, ctx,
                   aucs: dict[str, dict] | None = None) -> list:
    """ROC (small multiples when several models), calibration and decision curve for the models that output
    risks, and the confusion matrices at the training-fold thresholds, of one binary task."""
    from sklearn.metrics import confusion_matrix

    from cardio.report import display_name
    from cardio.stats.evaluate import DEFAULT_THRESHOLD, is_probabilistic

    stats = ctx.stats
    shown = display_name(task, names)
    curves = {m: (g["y_true"].to_numpy(), g["y_score"].to_numpy()) for m, g in sub.groupby("model", sort=False)}
    fig = stats.plot_roc({display_name(m, names): c for m, c in curves.items()},
                         title=f"ROC, {shown} (out-of-fold)", seed=ctx.seed, level=level, aucs=aucs)
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
    return (f"Out-of-fold predictions of {table['fold'].nunique()} fold(s) of `cv.method={config['cv']['method']}`, "
            f"split by patient. Intervals are {level}%. **AUC**: the cross-validated AUC, the mean of the per-fold "
            "AUCs, with the corrected t interval of Nadeau & Bengio (2003; the `AUC interval` column names it): it "
            "counts the patients scored and that each fold's model was fitted on a different training set, from the "
            "run's own fold models, without refitting (coverage by simulation at 40, 100 and 300 patients: "
            "`benchmarks/cv_coverage.py`, docs/statistics.md). Beside it, the pooled AUC of every out-of-fold score "
            "(its DeLong interval, in metrics.json, treats the scores as one fixed model's and ignores training "
            "variability: with no signal it excluded chance in 14% of data sets, not 5%); with one fold (holdout) "
            "the AUC carries the small-sample (logit) DeLong interval of that one model and says so. With no signal, "
            "pooled scores of models fitted on different folds can rank below 0.5; the report flags a pooled AUC "
            "whose interval lies below chance. Paired comparisons: the cross-validated difference (mean of the "
            "per-fold differences) with the same corrected t interval and its t-test p-value (the paired DeLong test "
            "of the pooled scores, which ignores training variability, is in metrics.json). Whether a model beats "
            "chance at all is also tested by rerunning the whole cross-validation on permuted labels (`cardio sweep "
            "--grid cohort.permute_labels=true --seeds 1-99 --permutation-of RUN`: a permutation p-value per model). "
            f"Proportions: Wilson; regression: bootstrap, {s['n_resamples']} resamples, seed {seed}. "
            "Thresholds were chosen on training folds only (0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. "
            "For models that output risks: Brier score (bootstrap CI), calibration slope (1 is ideal) and "
            "intercept (0 is ideal) with Wald CIs, calibration plots and a decision curve; yes/no rules get none. "
            "Paired tests of one task are one family: p-values are shown raw and Holm-adjusted.")


def _external_text(level: int, s: dict, seed: int) -> str:
    """What the estimates of a model applied to a new cohort (cardio predict) are."""
    return (f"Predictions of the exported model on this cohort: one set of scores, nothing cross-validated, "
            f"refitted or recalibrated here. Intervals are {level}% (AUC: DeLong, small-sample logit interval, "
            f"which holds 95% at 40 patients; proportions: Wilson; regression: bootstrap, {s['n_resamples']} "
            f"resamples, seed {seed}). Thresholds are those chosen on "
            "the training cohort when the model was fitted (0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. For models that output risks: "
            "Brier score (bootstrap CI), calibration slope and intercept on this cohort with Wald CIs (a fit that "
            "is unstable is reported as not estimable), calibration plots and a decision curve. Paired DeLong tests "
            "of one task are one family: p-values are shown raw and Holm-adjusted.")
