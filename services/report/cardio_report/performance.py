"""A plugin every study registers (the report service's, cardio.services.cardio_study_plugins): the core's evaluation
of every model and task, with CIs, tests and figures.

Registered before any installed plugin (cardio.plugins.get_plugin_manager) and run first: its sections are the
report's frame (summary, cohort, headline performance, comparisons, calibration, statistical methods), and every
other section reads the estimates it made (`estimates`, `tests`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cardio.config import PluginInfo
from cardio.data import Cohort, Predictions, Section
from cardio.hookspecs import hookimpl
from cardio_report.outputs import display_name, split_unit
from cardio_report.summary import cohort_section, summary_section
from cardio_stats import PAIRED_DELONG, format_ci, format_difference
from cardio_stats.nested_cv import FLOOR, PAIR_FLOOR, SPREAD_FLOOR
from cardio_stats.roc import DIFF_SCORE_FLOOR

if TYPE_CHECKING:
    from cardio.context import RunContext
    from cardio_stats.nested_cv import Refitted

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
                                  "thresholded metrics with Clopper-Pearson CIs, paired tests, ROC, calibration "
                                  "and confusion figures.")


@hookimpl(tryfirst=True)
def cardio_evaluate(predictions: Predictions, cohort: Cohort, config: dict, ctx: RunContext,
                    refits: Refitted | None) -> list[Section]:
    return evaluate_sections(predictions, config, ctx, cohort.truth, refits)


# The AUC rows a report shows: the headline (cross-validated with K folds; DeLong's score interval of one model's
# scores otherwise) and the pooled DeLong estimate beside it. Every interval printed is one whose coverage
# benchmarks/cv_coverage.py shows.
HEADLINE_AUC = {"nested CV (Bates, Hastie & Tibshirani 2023)": "nested CV (Bates et al. 2023)",
                "cv: fold DeLong x 2": "fold DeLong × 2",
                "cv: no interval": "none",
                "delong-score": "DeLong, score interval",
                "delong-logit": "DeLong, small-sample logit",
                "delong": ""}
# What each headline interval counts, as the performance text says it ("<interval>, which <note>").
INTERVAL_NOTES = {"nested CV (Bates et al. 2023)": "refits the model on splits of the cohort: it counts the patients "
                                                   "and that another training set gives another model",
                  "fold DeLong × 2": "reads the run's own fold models: it counts the patients and that each fold's "
                                     "model was fitted on a different training set",
                  "DeLong, score interval": "reads one model's scores: it counts the patients, not training "
                                            "variability",
                  "DeLong, small-sample logit": "reads one model's scores: it counts the patients, not training "
                                                "variability"}
AUC_TABLE, MAE_TABLE = "AUC of every model and task", "MAE of every model and task"


def auc_interval_name(e: dict) -> str:
    """The interval an AUC row carries, named, with what a reader must know of it: separated classes (the interval
    is Hanley & McNeil's), a fold with 1 patient of a class (its variance is Hanley & McNeil's: THIN_FOLD)."""
    from cardio_stats import THIN_FOLD  # SciPy's distributions: loaded when a run evaluates

    name = HEADLINE_AUC.get(e["method"]) or e["method"]
    return name + "".join(f"; {w}" for w in e.get("warnings", []) if "do not overlap" in w or THIN_FOLD in w)


def _auc_cells(row: dict, e: dict) -> None:
    """The headline AUC and the interval it carries, named; beside it, with K folds, the pooled AUC of every
    out-of-fold score (its DeLong interval, which ignores training variability, stays in metrics.json) and the
    mean ± SD over folds."""

    if e["method"] != "delong":
        row["auc"] = format_ci(e)
        if e.get("ci_low") is None:  # too few folds, a fold with one class, tied scores: the row says why
            row["auc_interval"] = "; ".join(w for w in e.get("warnings", []) if w.startswith("no interval")) or "none"
        else:
            row["auc_interval"] = auc_interval_name(e)
        return
    folds = (e.get("extra") or {}).get("fold_summary")
    if folds:
        row["auc_pooled"] = f"{e['estimate']:.3f}"
        sd = "" if folds["sd"] is None else f" ± {folds['sd']:.3f}"
        row["auc_fold_mean"] = f"{folds['mean']:.3f}{sd}"


# The metric rows' columns each table shows: discrimination in detail, agreement (regression), calibration, and the
# metrics at the training-fold thresholds.
DETAIL = ("model", "task", "n", "auc", "auc_interval", "auc_pooled", "auc_fold_mean")
AGREEMENT = ("model", "task", "n", "mae", "rmse", "r2", "ba_bias")
CALIBRATION = ("model", "task", "n", "brier", "calibration_slope", "calibration_intercept")
THRESHOLDED = ("model", "task", "n", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")
CALIBRATION_TITLE = "Calibration, thresholds and decision curves"


def metric_rows(estimates: list[dict]) -> list[dict]:
    """Pooled out-of-fold estimates, one row per model and task, each metric as "estimate [low, high]"."""

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
    return list(rows.values())


def metric_table(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows that have any of the columns' metrics, those columns only, headed as the report shows them."""
    metrics = [c for c in columns if c not in ("model", "task", "n")]
    df = pd.DataFrame([r for r in rows if any(m in r for m in metrics)])
    return df[[c for c in columns if c in df.columns]].rename(columns=HEADERS) if len(df) else df


def pivot_table(rows: list[dict], metric: str, names: dict) -> pd.DataFrame:
    """One metric of every model and task as a grid: tasks down and models across, or models down where there are
    more models than tasks, so that the grid stays narrow."""

    kept = [r for r in rows if metric in r]
    models = list(dict.fromkeys(r["model"] for r in kept))
    tasks = list(dict.fromkeys(r["task"] for r in kept))
    cell = {(r["model"], r["task"]): r[metric] for r in kept}
    if len(models) > len(tasks):
        return pd.DataFrame([{"model": m, **{display_name(t, names): cell.get((m, t), "–") for t in tasks}}
                             for m in models])
    return pd.DataFrame([{"task": t, **{display_name(m, names): cell.get((m, t), "–") for m in models}}
                         for t in tasks])


def evaluate_sections(predictions: Predictions, config: dict, ctx, truth: str | None = None,
                      refits: Refitted | None = None) -> list[Section]:
    """The core's evaluation of every model and task as the report's sections, each in its part: the headline
    performance (it carries every estimate and test), the paired comparisons, calibration with the thresholds and
    decision curves, the statistical methods (appendix), and the summary and cohort that open the report (`truth`:
    what a synthetic-crt cohort planted, Cohort.truth, which the cohort part states; `refits`: the models refitted
    for nested CV)."""

    s = config["stats"]
    names = config["report"]["display_names"]
    n_repeats = predictions.table["repeat"].nunique()
    table = predictions.table[predictions.table["repeat"] == predictions.table["repeat"].min()]  # repeat 0's figures
    external = set(table["fold"].astype(str)) == {"external"}
    draw = bool(config["report"].get("figures", True))  # off: sweeps and tests that read metrics.json only
    # the figures that need no estimate first: they render in the report service's workers while the statistics
    # are computed here (cardio_report.figures.parallel_saves)
    calibration, agreement = (_calibration_figures(table, names, ctx, external),
                              _agreement_figures(table, names, ctx, external)) if draw else ([], [])
    estimates, tests = _estimate_all(predictions.table, s, ctx, refits)
    headline = (_roc_figures(table, estimates, names, s, ctx, external) if draw else []) + agreement
    rows = metric_rows(estimates)
    tables = {AUC_TABLE: pivot_table(rows, "auc", names), "AUC in detail": metric_table(rows, DETAIL),
              MAE_TABLE: pivot_table(rows, "mae", names), "agreement in detail": metric_table(rows, AGREEMENT)}
    tables = {k: v for k, v in tables.items() if len(v)}
    k_fold = table["fold"].astype(str).nunique() > 1
    text = _results_text(rows, estimates, names, external, s, k_fold)
    if n_repeats > 1:
        text += f" The tables and figures show repeat 0 of {n_repeats}; every repeat is in metrics.json."
        aucs = pd.DataFrame([e for e in estimates if e["metric"] == "auc" and e["method"] == "delong"
                             and e["fold"] == "pooled"])
        tables["AUC across repeats"] = aucs.groupby(["model", "task"])["estimate"].agg(
            ["mean", "std", "min", "max"]).reset_index()
    level = int(round(s["level"] * 100))
    sections = [Section("Performance", text, headline, tables, estimates, tests, part="performance")]
    shown = [t for t in tests if t["repeat"] == 0]
    if shown:
        sections.append(_comparison_section(shown, s, names, level))
    thresholds = {"calibration": metric_table(rows, CALIBRATION), "at the thresholds": metric_table(rows, THRESHOLDED)}
    sections.append(Section(CALIBRATION_TITLE, _calibration_text(external, k_fold), calibration,
                            {k: v for k, v in thresholds.items() if len(v)}, part="calibration"))
    sections.append(Section("Statistical methods", _methods_text(table, config, level, s, ctx.seed, external),
                            part="methods"))
    return sections + [summary_section(rows, shown, table, config, external),
                       cohort_section(table, config, external, truth)]


def _estimate_all(table: pd.DataFrame, s: dict, ctx, refits: Refitted | None = None) -> tuple[list[dict], list[dict]]:
    """Every estimate and paired test of every repeat (repeated k-fold predicts each record once per repeat: each
    repeat is evaluated on its own; the nested-CV refits, whose first split is repeat 0's, serve repeat 0)."""
    estimates, tests = [], []
    for repeat, part in table.groupby("repeat", sort=True):
        est, tst = ctx.stats.evaluate_predictions(part.drop(columns="repeat"), level=s["level"],
                                                  n_resamples=s["n_resamples"], seed=ctx.seed,
                                                  reference=s.get("reference"),
                                                  across_tasks=bool(s.get("reference_across_tasks")),
                                                  refits=refits if repeat == table["repeat"].min() else None)
        estimates += [{**e, "repeat": int(repeat)} for e in est]
        tests += [{**t, "repeat": int(repeat)} for t in tst]
    return estimates, tests


def _roc_figures(table: pd.DataFrame, estimates: list[dict], names: dict, s: dict, ctx,
                 external: bool) -> list[Path]:
    """The headline ROC figure of each binary task, its legend carrying each model's AUC row of the table."""
    return [roc_figure(task, sub, names, float(s["level"]), ctx, _headline_aucs(estimates, task, names), external)
            for task, sub in table[table["kind"] == "binary"].groupby("task", sort=False)]


def _calibration_figures(table: pd.DataFrame, names: dict, ctx, external: bool) -> list[Path]:
    """The calibration part's figures of every binary task: calibration plots, decision curves, confusion matrices."""
    return [f for task, sub in table[table["kind"] == "binary"].groupby("task", sort=False)
            for f in risk_figures(task, sub, names, ctx, external)]


def _agreement_figures(table: pd.DataFrame, names: dict, ctx, external: bool) -> list[Path]:
    """The headline Bland–Altman figure of each regression model and task (the first MAX_AGREEMENT_FIGURES)."""
    figures: list[Path] = []
    source = "external cohort" if external else "out-of-fold"
    regression = table[table["kind"] == "regression"].groupby(["model", "task"], sort=False)
    for i, ((model, task), g) in enumerate(regression):
        if i >= MAX_AGREEMENT_FIGURES:
            break
        quantity, unit = split_unit(display_name(task, names))
        fig = ctx.stats.plot_bland_altman(g["y_true"].to_numpy(), g["y_score"].to_numpy(), quantity=quantity,
                                          unit=unit, title=f"{display_name(model, names)} / {quantity} ({source})")
        caption = (f"Bland–Altman plot of {display_name(model, names)} for {quantity} ({source}, {len(g)} records): "
                   "the difference between prediction and truth against their mean, with the bias and the 95% "
                   "limits of agreement.")
        figures.append(ctx.save_figure(fig, f"bland_altman_{_slug(model)}_{_slug(task)}", caption=caption))
    return figures


# What the agreement tables of a one-fold run hold (docs/statistics.md, "One model's rows").
ONE_MODEL_AGREEMENT = ("Continuous targets: the mean absolute error (MAE) with its interval (t on the log scale), its "
                       "detail (RMSE and R² without an interval, the Bland–Altman bias with t), and the Bland–Altman "
                       "plots; one model's predictions, so no interval counts training variability.")
# What the agreement tables of a K-fold run hold (docs/statistics.md, the estimand table).
FOLD_AGREEMENT = ("Continuous targets: the mean absolute error (MAE) and its detail (RMSE, R², Bland–Altman bias), "
                  "each the mean of its per-fold values (each fold's model on the records it scored; R² against the "
                  "variance of the whole cohort's target), and the Bland–Altman plots. Where the run has 5 folds or "
                  "more (fewer: no interval, and the row says why) the intervals count training variability: MAE "
                  "and RMSE read each fold's test noise from its patients and the folds' spread beyond it (on the "
                  "log scale), the bias the spread of its per-fold values left after each is regressed on its "
                  "fold's training-less-test mean target (which cancels in their mean) plus its folds' test noise "
                  "(the limits of agreement, in metrics.json, combine intervals of the bias and of the SD, each "
                  "read the MAE's way); R² is "
                  "printed without one: the simulation found none from one run's folds that holds its level without "
                  "being several times too wide (docs/statistics.md). The pooled values with one model's intervals, "
                  "which ignore training variability, are in metrics.json (`extra.pooled`).")


def _results_text(rows: list[dict], estimates: list[dict], names: dict, external: bool, s: dict,
                  k_fold: bool = False) -> str:
    """What the headline tables hold, and the flags a reader must see beside them."""

    level = f"{round(float(s['level']) * 100)}%"
    methods = sorted({r["auc_interval"] for r in rows if "auc_interval" in r})
    where = "on this cohort" if external else "from the out-of-fold predictions"
    named = "; ".join(f"{m}, which {INTERVAL_NOTES[m]}" if m in INTERVAL_NOTES else m for m in methods)
    text = (f"The AUC of every model for every task {where}, with its {level} interval ({named}), and the ROC "
            "curves. The AUC in detail adds the pooled AUC and the spread over folds. Appendix A says how every "
            "number was computed." if methods else "")
    if any("mae" in r for r in rows):
        text += " " + (FOLD_AGREEMENT if k_fold else ONE_MODEL_AGREEMENT)
    below = [e for e in estimates if e["repeat"] == 0 and e.get("subgroup") is None
             and (e.get("extra") or {}).get("below_chance")]
    if below:
        text += (" **Pooled AUC below chance** (interval under 0.5): " + "; ".join(
            f"{display_name(e['model'], names)} / {display_name(e['task'], names)} {e['estimate']:.3f}, mean over "
            f"folds {e['extra']['fold_summary']['mean']:.3f}" for e in below)
            + ". A pooled AUC below chance is no evidence of a reversed effect.")
    return text.strip()


def _comparison_section(tests: list[dict], s: dict, names: dict, level: int) -> Section:
    """The paired tests of one repeat, one table per family (reference, all pairs, exploratory)."""
    tables = {}
    for family, title in (("reference", "paired tests against the reference"),
                          ("all pairs", "paired tests"),
                          ("exploratory", "exploratory paired tests (neither model the reference)")):
        rows = [t for t in tests if t["extra"].get("family", "all pairs") == family]
        if rows:
            tables[title] = pd.DataFrame([_test_row(t, level) for t in rows])
    return Section("Model comparisons", _reference_text(s.get("reference"), tests, names).strip(), tables=tables,
                   part="comparison")


# What the calibration and threshold tables of a K-fold run hold (docs/statistics.md, the estimand table).
FOLD_LEVEL = ("Accuracy, sensitivity, specificity, PPV, NPV, F1, Brier score and calibration slope and intercept are "
              "each the mean of their per-fold values (each fold's model on the records it scored): what the "
              "procedure is expected to reach at this cohort size, as the cross-validated AUC. The accuracy, PPV and "
              "NPV read each fold's test noise from its patients and the folds' spread beyond it, the Brier score "
              "the same within each class (on the log scale); the sensitivity and specificity, which move with each "
              "fold's threshold, the corrected t's variance of their per-fold values: all count training "
              "variability. The proportions' intervals are binomial (Wilson's; Clopper–Pearson's for the PPV) at "
              "the effective sample size of that variance, so that near 0 or 1 they stay within [0, 1] and hold "
              "their estimate; one equal in every fold (1 in every fold, say), which leaves no variance to read, at "
              "its denominator's patients. F1, the calibration slope (each fold's by Firth's bias-reduced logistic "
              "recalibration) and the intercept are printed without an interval: the "
              "simulation found none from one run's folds that holds its level (docs/statistics.md). Where a fold "
              "lacks a metric (no positive record in it, say), the pooled value is printed alone. The pooled values "
              "with one model's intervals (Clopper–Pearson, log-scale t, Wald, score), which count the patients "
              "scored but not training variability, are in metrics.json (`extra.pooled`).")


def _calibration_text(external: bool, k_fold: bool = False) -> str:
    where = "the training cohort" if external else "the training folds"
    return ("For models that output risks: the Brier score and the calibration slope (1 is ideal) and intercept (0 is "
            "ideal), the calibration plots, and the decision curves (net benefit against treating everyone or no "
            "one). Then each model's accuracy, sensitivity, specificity, PPV and NPV at the threshold chosen on "
            f"{where} (0.5 where a plugin gave none), with the confusion matrices at those thresholds. Yes/no rules "
            "get no calibration. "
            + (FOLD_LEVEL if k_fold else "These are one model's scores: proportions with Clopper–Pearson intervals "
               "(at the effective sample size where patients have several records), the Brier score with a log-scale t "
               "interval (its upper limit a score bound for unseen errors where few patients are misclassified), the "
               "slope with a Wald and the intercept with a score interval; none counts training variability."))


def _methods_text(table: pd.DataFrame, config: dict, level: int, s: dict, seed: int, external: bool) -> str:
    if external:
        text = _one_model_text("Predictions of the exported model on this cohort: one set of scores, nothing "
                               "cross-validated, refitted or recalibrated here.", "the training cohort when the model "
                               "was fitted", level)
    elif table["fold"].nunique() == 1:  # a holdout: one model's intervals, not the fold-level ones of K folds
        text = _one_model_text(
            f"Predictions of one held-out fold (`cv.method={config['cv']['method']}`, split by patient): one model, "
            "fitted on the training patients, scored the test patients once, so every interval is that model's on "
            "the population the test patients come from and none counts training variability (another training "
            "set gives another model; K-fold cross-validation estimates that).", "the training patients", level)
    else:
        text = _cv_text(table, config, level, s, seed)
    if table["record_id"].nunique() > table["patient_id"].nunique():
        text += (" Some patients have several records, and records of one patient are not independent: for those "
                 "tasks every interval and test counts patients. DeLong's variance is Obuchowski's clustered one "
                 "(1997), the bootstraps resample patients with all their records, the thresholded proportions and "
                 "F1 take Clopper–Pearson's interval at the effective number of records, the Brier score, MAE and "
                 "bias their SE from per-patient sums, and calibration intervals are cluster-robust by patient.")
    return text


def _test_row(t: dict, level: int) -> dict:
    """One paired comparison as the report shows it: with K folds the cross-validated difference (mean of the
    per-fold differences, nested CV or fold-DeLong: counts training variability), its p-value and Holm's; with one fold
    (holdout, external) the paired DeLong test of that one set of scores, its score interval."""
    e = t["extra"]
    row = {"task": e.get("task"), "model A": e.get("model_a"), "model B": e.get("model_b")}
    if t["method"] not in PAIRED_DELONG:
        interval = HEADLINE_AUC.get(t["method"], t["method"])
        if e.get("constant") in ("A", "B"):  # its AUC is 0.5 in every fold: the other's own interval, shifted
            flat, other = (row["model B"], row["model A"]) if e["constant"] == "B" else (row["model A"], row["model B"])
            interval += f"; {flat} scored every patient of each fold alike: {other}'s own AUC interval less 0.5"
        return {**row, "ΔAUC (A − B), cross-validated": _diff(t), "interval": interval,
                "p": t["p_value"], "p (Holm)": t.get("p_adjusted")}
    return {**row, "ΔAUC (A − B)": _diff(t), "interval": PAIRED_DELONG[t["method"]],
            "z": round(t["statistic"], 3) if t["statistic"] is not None else None, "p": t["p_value"],
            "p (Holm)": t.get("p_adjusted")}


def _diff(t: dict) -> str:
    """The AUC difference the test row leads with and its interval, as one cell; bounds that coincide (two models
    at the same bound, both AUCs 1) are no interval, and the row's warning says why."""
    return format_difference(t.get("estimate"), t.get("ci_low"), t.get("ci_high"),
                             why=(t.get("warnings") or ["zero width"])[0])


_UNADJUSTED = (" Each ΔAUC interval is its comparison's own, not adjusted for the family: an interval may exclude 0 "
               "while the Holm-adjusted p exceeds 0.05.")


def _reference_text(reference: str | dict | None, tests: list[dict], names: dict) -> str:
    """What the paired tests are: against a reference fixed in the config, or every pair (no reference); and that
    the intervals, unlike the p-values, are not adjusted for the family."""

    if not tests:
        return ""
    return _families(reference, tests, names) + _UNADJUSTED


def _families(reference: str | dict | None, tests: list[dict], names: dict) -> str:
    """Which tests form which Holm family."""
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

    out: dict[str, dict] = {}
    for e in estimates:
        if (e["metric"] == "auc" and e["task"] == task and e["fold"] == "pooled" and e.get("repeat", 0) == 0
                and e.get("subgroup") is None and e["method"] in HEADLINE_AUC and e["method"] != "delong"):
            out[display_name(e["model"], names)] = e
    return out


def _curves(sub: pd.DataFrame) -> dict[str, tuple]:
    """Each model's (labels, scores) of one binary task, in the table's order of models."""
    return {m: (g["y_true"].to_numpy(), g["y_score"].to_numpy()) for m, g in sub.groupby("model", sort=False)}


def roc_figure(task: str, sub: pd.DataFrame, names: dict, level: float, ctx, aucs: dict[str, dict] | None = None,
               external: bool = False) -> Path:
    """The ROC figure of one binary task (small multiples when several models), its legend the AUC rows `aucs`."""
    shown = display_name(task, names)
    source = "external cohort" if external else "out-of-fold"
    pct = f"{level * 100:.0f}%"
    curves = _curves(sub)
    patients = {display_name(m, names): g["patient_id"].to_numpy() for m, g in sub.groupby("model", sort=False)}
    fig = ctx.stats.plot_roc({display_name(m, names): c for m, c in curves.items()},
                             title=f"ROC, {shown} ({source})", seed=ctx.seed, level=level, aucs=aucs, groups=patients)
    return ctx.save_figure(fig, f"roc_{_slug(task)}", caption=(
        f"ROC curve{'s' if len(curves) > 1 else ''} of {_listed([display_name(m, names) for m in curves])} for "
        f"{shown} ({source}). The legend gives each AUC with its {pct} interval, as the table does; the shaded band "
        f"is a {pct} pointwise bootstrap band of the scores, patients resampled with all their records as the "
        "legend's interval counts them (it ignores training variability)."))


def risk_figures(task: str, sub: pd.DataFrame, names: dict, ctx, external: bool = False) -> list[Path]:
    """Calibration and decision curve for the models that output risks, and the confusion matrices at the
    training-fold thresholds, of one binary task: none needs an estimate, so they can render before any is made."""
    from sklearn.metrics import confusion_matrix

    # statsmodels and SciPy's distributions (1.5 s): loaded when a run evaluates, so `cardio plugins` stays fast
    from cardio_stats.evaluate import DEFAULT_THRESHOLD, is_probabilistic

    stats = ctx.stats
    shown = display_name(task, names)
    source = "external cohort" if external else "out-of-fold"
    curves = _curves(sub)
    figures: list[Path] = []
    risks = {m: p for m, (_, p) in curves.items() if is_probabilistic(p)}  # not yes/no rules
    for model, p in risks.items():
        fig = stats.plot_calibration(curves[model][0], p,
                                     title=f"Calibration, {display_name(model, names)} / {shown} ({source})")
        figures.append(ctx.save_figure(fig, f"calibration_{_slug(model)}_{_slug(task)}", caption=(
            f"Calibration of {display_name(model, names)} for {shown} ({source}): the observed rate against the "
            "predicted risk in groups of equal size, with 95% Wilson intervals; below, how the predicted risks are "
            "spread.")))
    if risks:  # models aligned on the records every one of them scored
        wide = sub[sub["model"].isin(list(risks))].pivot_table(index="record_id", columns="model",
                                                               values="y_score").dropna()
        y = sub.drop_duplicates("record_id").set_index("record_id").loc[wide.index, "y_true"].to_numpy()
        fig = stats.plot_decision_curve(y, {display_name(m, names): wide[m].to_numpy() for m in risks},
                                        title=f"Decision curve, {shown} ({source}, {len(y)} records)")
        figures.append(ctx.save_figure(fig, f"decision_curve_{_slug(task)}", caption=(
            f"Decision curve for {shown} ({source}, the {len(y)} records every model scored): the net benefit of "
            f"acting on {_listed([display_name(m, names) for m in risks])} at each threshold probability, against "
            "treating everyone or no one.")))
    matrices = {}
    for model, g in sub.groupby("model", sort=False):
        thr = g["threshold"].fillna(DEFAULT_THRESHOLD) if "threshold" in g.columns else DEFAULT_THRESHOLD
        predicted = (g["y_score"] >= thr).astype(int)
        matrices[display_name(model, names)] = confusion_matrix(g["y_true"].astype(int), predicted, labels=[0, 1])
    classes = [names.get(f"{task}=0", "negative (0)"), names.get(f"{task}=1", "positive (1)")]
    chosen = "training cohort" if external else "training folds"
    fig = stats.plot_confusion(matrices, classes, title=f"Confusion at the {chosen.replace(' folds', '-fold')} "
                                                       f"thresholds, {shown} ({source})")
    figures.append(ctx.save_figure(fig, f"confusion_{_slug(task)}", caption=(
        f"Confusion matrices for {shown} ({source}) at the thresholds chosen on the {chosen}: counts, and the "
        "share of each true class.")))
    return figures


def _listed(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(name)).strip("_").lower()


def _cv_text(table: pd.DataFrame, config: dict, level: int, s: dict, seed: int) -> str:
    """What the estimates of a cross-validated run are."""
    return (f"Out-of-fold predictions of {table['fold'].nunique()} fold(s) of `cv.method={config['cv']['method']}`, "
            f"split by patient. Intervals are {level}%. **AUC**: the cross-validated AUC, the mean of the per-fold "
            "AUCs, which estimates the AUC this procedure reaches trained on the folds' share of a cohort of this "
            "size; its interval (the `AUC interval` column names it) counts the patients scored and that another "
            "training set gives another model. Models the plugin can refit cheaply (classical models, rules) get "
            "nested cross-validation (Bates, Hastie & Tibshirani 2023): refitted on "
            f"{int(s.get('nested_repeats', 0))} splits of the cohort, the estimate is their mean and the interval "
            "rests on the measured error of a cross-validated AUC, kept at least "
            f"{FLOOR['auc']:g} times the test folds' own noise (a difference's is measured for the mean of the splits, "
            f"and kept at least {FLOOR['auc_difference']:g} times that noise with {SPREAD_FLOOR:g} times the splits' "
            f"spread, and {PAIR_FLOOR:g} times the noise its two AUCs would have apart), where simulation found the "
            "measured error too small (docs/statistics.md). Deep models, which cannot be "
            "refitted hundreds of times, get the fold-DeLong interval from the run's own fold models: twice the "
            "mean within-fold DeLong variance over K, the spread of a mean of K correlated fold AUCs. Fewer than "
            "5 folds, or a fold without both classes, gives no interval, and the row says why (coverage and width "
            "of each by simulation: `benchmarks/coverage.py`, docs/statistics.md). Beside it, the pooled AUC of every "
            "out-of-fold score (its DeLong interval, in metrics.json, treats the scores as one fixed model's and "
            "ignores training variability: with no signal it excluded chance in 14% of data sets, not 5%). "
            "With no signal, pooled scores of models fitted "
            "on different folds can rank below 0.5; the report "
            "flags a pooled AUC whose interval lies below chance. Paired comparisons: the cross-validated "
            "difference (mean of the per-fold differences) with nested CV where both models are refitted, else the "
            "fold-DeLong variance of the difference plus a fold covariance that stays as the two models agree "
            "(`fold DeLong + fold covariance`), either inverted as a score interval over the two AUCs (each "
            "AUC's variance taken at the candidate pair, so it reaches further where an AUC leaves its bound) with "
            "the score test's p-value (the paired DeLong test "
            "of the pooled scores, which ignores training variability, is in metrics.json). Whether a model beats "
            "chance at all is also tested by rerunning the whole cross-validation on permuted labels (`cardio sweep "
            "--grid cohort.permute_labels=true --seeds 1-99 --permutation-of RUN`: a permutation p-value per model). "
            f"{FOLD_LEVEL} "
            + (f"Regression: {FOLD_AGREEMENT.removeprefix('Continuous targets: ')} "
               if (table["kind"] == "regression").any() else "")
            + "Thresholds were chosen on training folds only (0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. "
            "Calibration plots and a decision curve for models that output risks; yes/no rules get none. "
            "Paired tests of one task are one family: p-values are shown raw and Holm-adjusted.")


def _one_model_text(what: str, thresholds_from: str, level: int) -> str:
    """What the estimates of one model's one set of scores are: a model applied to a new cohort (cardio predict)
    or a holdout's test fold."""
    from cardio_stats.calibration import FEW_ERRORS  # here: the module brings statsmodels, `cardio plugins` none

    return (f"{what} Intervals are {level}% (AUC: DeLong's score interval, "
            "which holds 95% at 40-300 patients and AUCs up to 0.99, Hanley & McNeil's where the classes do not "
            "overlap, not [1, 1]; proportions and F1: Clopper–Pearson's, at the effective sample size where patients "
            "have several records; MAE: t on the log scale; Bland–Altman bias: t; its limits: exact (Carkeet 2015); "
            "RMSE and R²: none; docs/statistics.md, \"One model's rows\"). Thresholds are those chosen on "
            f"{thresholds_from} "
            "(0.5 where a plugin gave none); the confusion matrices "
            "show counts and the rate within each true class at those thresholds. For models that output risks: "
            f"Brier score (log-scale t CI; where fewer than {FEW_ERRORS} patients are misclassified at 0.5, its upper "
            "limit reaches as far as unseen errors could take it), calibration slope (Wald CI) and intercept (score "
            "CI, its variance the larger of the robust and model-based one) on these patients (a fit "
            "that is unstable is reported as not estimable), calibration plots and a decision curve. Paired DeLong "
            "tests (the difference's interval a score interval over the two AUCs, each AUC's DeLong variance kept at "
            f"least {DIFF_SCORE_FLOOR:g} times Hanley & McNeil's; pROC's normal interval missed up to 10.8% near "
            "separation) of one task are one family: p-values are shown raw and Holm-adjusted.")
