"""A plugin every study registers (the report service's): every metric per subgroup column named in `subgroups:` (e.g.
sex, site); its section comes last."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from cardio.config import CoreSettings, PluginInfo
from cardio.data import CardioError, Cohort, Predictions, Section
from cardio.hookspecs import hookimpl
from cardio_report.outputs import display_name
from cardio_report.performance import auc_interval_name
from cardio_stats.subgroups import level_text

if TYPE_CHECKING:
    from cardio.context import RunContext


#: The level of a subgroup column for a patient (or study) whose records hold different values of it.
SEVERAL = "(several)"
#: The column of the cohort table naming the unit predictions are made for (Cohort.level; cardio.study.evaluate).
_LEVEL_ID = {"patient": "patient_id", "study": "study_id"}


def _unit(cohort: Cohort) -> str:
    return cohort.level if cohort.level in _LEVEL_ID else "record"


def with_subgroup_values(table: pd.DataFrame, cohort: Cohort, columns: list[str]) -> tuple[pd.DataFrame, dict]:
    """The predictions with each subgroup column's value, as written (level_text), for the unit each row is: a
    record, or the patient (study) the core averaged its records to (at_level puts that unit's id in record_id).
    Returns (table, {column: number of units whose records hold several values}); those units get SEVERAL."""

    key = _LEVEL_ID.get(cohort.level, "record_id")
    if key not in cohort.table.columns:
        key = "record_id"
    ids = cohort.table[key].astype(str)
    out, mixed = table.copy(), {}
    for col in columns:
        values = pd.Series([level_text(v) for v in cohort.table[col]], index=cohort.table.index, dtype=object)
        per_unit = values.groupby(ids.to_numpy()).agg(lambda v: sorted({x for x in v if x is not None}))
        several = per_unit.map(len) > 1
        if several.any():
            mixed[col] = int(several.sum())
        lookup = per_unit.map(lambda v: SEVERAL if len(v) > 1 else (v[0] if v else None))
        # a unit id the lookup lacks (a row at record level in a patient-level cohort) is read as a record id
        by_record = pd.Series(values.to_numpy(), index=cohort.table["record_id"].astype(str).to_numpy())
        rid = out["record_id"].astype(str)
        out[col] = rid.map(lookup).where(rid.isin(lookup.index), rid.map(by_record))
    return out, mixed


def _two_classes(sub: pd.DataFrame) -> pd.DataFrame:
    """The rows of a subgroup whose model and task can be evaluated there: regression, or both outcome classes."""
    keep = sub.groupby(["model", "task"], sort=False)["y_true"].transform(lambda y: y.dropna().nunique() >= 2)
    return sub[(sub["kind"] != "binary") | keep.astype(bool)]


def auc_row(estimates: list[dict], model: str, task: str, subgroup: str, k_fold: bool) -> dict:
    """One subgroup's AUC row for a model and task: the headline AUC and the interval it carries, named (as the
    performance table's); in a K-fold run whose subgroup cannot carry the cross-validated interval (a fold without
    a patient of one class there), the pooled AUC alone and why, never a pooled interval that ignores training
    variability."""
    # SciPy's distributions (over 1 s): loaded when a run evaluates, so `cardio plugins` stays fast
    from cardio_stats import format_ci

    row = {"subgroup": subgroup, "model": model, "task": task}
    shown, interval = shown_auc(estimates, model, task, k_fold)
    if shown is None:
        return {**row, "n": "", "auc": "–", "AUC interval": interval}
    with_ci = not interval.startswith("none")
    return {**row, "n": shown["n"], "auc": format_ci(shown) if with_ci else f"{shown['estimate']:.3f}",
            "AUC interval": interval}


def shown_auc(estimates: list[dict], model: str, task: str, k_fold: bool) -> tuple[dict | None, str]:
    """The AUC estimate a subgroup's row shows and what its interval is ("none: why" where it shows none): the
    headline AUC with the interval it carries; in a K-fold run whose subgroup cannot carry the cross-validated interval,
    the pooled AUC alone, never a pooled interval that ignores training variability."""
    from cardio_stats import CV_METHOD, headline_auc, pick  # SciPy's distributions: as auc_row's

    head = headline_auc(estimates, model=model, task=task)
    pooled = next(iter(pick(estimates, metric="auc", method="delong", model=model, task=task, fold="pooled")), None)
    if head is not None and head.get("ci_low") is None:  # evaluate's row without an interval, and why
        why = next((w.split(": ", 1)[1] for w in head["warnings"] if w.startswith("no interval: ")),
                   "the folds cannot carry it" if k_fold else "none given")
        return head, f"none: {why}"
    if head is not None and (head["method"] == CV_METHOD or not k_fold):
        return head, auc_interval_name(head)
    if pooled is None:
        return None, "none: no AUC"
    return pooled, "none: the folds cannot carry it"


def auc_figure(estimates: list[dict], col: str, counts: dict[str, int], k_fold: bool, unit: str,
               names: dict | None = None) -> Any | None:
    """Each model and task's AUC within each level of `col`, side by side, with the interval its table row carries
    (a diamond alone where the row has none), models and tasks by their display `names`; None where no level has an
    AUC."""
    from cardio_report.figures import subplots  # matplotlib: loaded when a figure is drawn
    from cardio_stats.figures import colour

    levels = [lv for lv in counts if any(e["subgroup"] == f"{col}={lv}" for e in estimates)]
    pairs = list(dict.fromkeys((e["model"], e["task"]) for e in estimates if e["metric"] == "auc"
                               and e["subgroup"].startswith(f"{col}=")))
    if not levels or not pairs:
        return None
    fig, ax = subplots(figsize=(7.5, 1.2 + 0.42 * len(pairs) * max(1, len(levels) / 2)), layout="constrained")
    step = 0.7 / len(levels)
    for i, lv in enumerate(levels):
        # as the level's table rows read them: without the tag (pick reads an untagged row by default)
        mine = [{k: v for k, v in e.items() if k != "subgroup"} for e in estimates if e["subgroup"] == f"{col}={lv}"]
        for j, (model, task) in enumerate(pairs):
            shown, interval = shown_auc(mine, model, task, k_fold)
            if shown is None:
                continue
            y = j + (i - (len(levels) - 1) / 2) * step
            ci = not interval.startswith("none")
            err = [[shown["estimate"] - shown["ci_low"]], [shown["ci_high"] - shown["estimate"]]] if ci else None
            ax.errorbar(shown["estimate"], y, xerr=err, fmt="o" if ci else "D", ms=4, capsize=2, color=colour(i),
                        label=f"{col}={lv} ({counts[lv]} {unit}s)")
    ax.axvline(0.5, color="0.6", ls="--", lw=1)
    ax.set_yticks(range(len(pairs)), [f"{display_name(task, names or {})} · {display_name(model, names or {})}"
                                      for model, task in pairs], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.03), xlabel="AUC within the subgroup (bar: the interval its table row names; diamond: none)",
           title=f"AUC by {col}: every model and task")
    handles, labels = ax.get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    ax.legend(by_label.values(), by_label.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="subgroups", modality=None,
                      description="Reports every metric per subgroup column named in the config's `subgroups:`.")


@hookimpl(trylast=True)
def cardio_evaluate(predictions: Predictions, cohort: Cohort, config: dict, ctx: RunContext) -> Section | None:
    # `subgroups_if_present` (a plugin's default may ask for site): reported where the cohort table has the column
    core = CoreSettings.of(config)
    maybe = [str(c) for c in core.subgroups_if_present]
    absent = [c for c in maybe if c not in cohort.table.columns]
    columns = list(dict.fromkeys([*core.subgroups, *(c for c in maybe if c not in absent)]))
    if not columns:
        return None
    missing = [c for c in columns if c not in cohort.table.columns]
    if missing:
        raise CardioError(f"subgroups: column(s) {missing} are not in the cohort table; "
                          f"it has {list(cohort.table.columns)}")
    taken = [c for c in columns if c in predictions.table.columns and c != "repeat"]
    if taken:
        raise CardioError(f"subgroups: column(s) {taken} name a column of the predictions; rename them in the "
                          "cohort table")
    s = core.stats
    table = predictions.table
    table = table[table["repeat"] == table["repeat"].min()].drop(columns="repeat")  # one prediction per record
    k_fold = table["fold"].astype(str).nunique() > 1
    joined, mixed = with_subgroup_values(table, cohort, columns)
    for col, n in mixed.items():
        ctx.log.warning("subgroups: %d %s(s) hold several values of %s over their records; they form %s=%s",
                        n, _unit(cohort), col, col, SEVERAL)
    estimates, rows = [], []
    for col in columns:
        # a task with one class within a level (the sex task among women) is left out of that level, not the level
        for (level, model, task), g in joined[joined["kind"] == "binary"].groupby([col, "model", "task"]):
            if g["y_true"].dropna().nunique() < 2:
                rows.append({"subgroup": f"{col}={level}", "model": model, "task": task, "n": len(g),
                             "auc": "skipped: one outcome class in this subgroup"})
        per_level = ctx.stats.by_subgroup(
            joined, col, lambda sub: ctx.stats.evaluate_predictions(
                _two_classes(sub), level=s.level, n_resamples=s.n_resamples, seed=ctx.seed)[0])
        for level, result in per_level.items():
            if not isinstance(result, list):  # skipped by the stats service, e.g. one outcome class
                why = "; ".join(getattr(result, "warnings", [])) or str(result)
                rows.append({"subgroup": f"{col}={level}", "model": "", "task": "", "n": getattr(result, "n", ""),
                             "auc": f"skipped: {why}"})
                continue
            pooled = [e for e in result if e["fold"] == "pooled"]
            estimates += [{**e, "subgroup": f"{col}={level}"} for e in pooled]
            rows += [auc_row(pooled, model, task, f"{col}={level}", k_fold)
                     for model, task in dict.fromkeys((e["model"], e["task"]) for e in pooled if e["metric"] == "auc")]
    figures = _auc_figures(estimates, joined, columns, k_fold, _unit(cohort), dict(core.report.display_names), ctx)
    text = (f"Every metric of the performance section, recomputed within each level of {', '.join(columns)} (the "
            f"values as the cohort table writes them, per {_unit(cohort)}); small subgroups give wide intervals. "
            "Each AUC carries the interval the performance table's does (the `AUC interval` column names it): with "
            "K folds the cross-validated AUC of the subgroup's records, fold by fold, with the headline's interval "
            "(fold DeLong × 2, or nested CV for a model the plugin refits); where a fold holds no patient of one "
            "class in the subgroup, the pooled AUC without an interval, and why.")
    text += "".join(f" {n} {_unit(cohort)}(s) hold several values of {col} over their records: {col}={SEVERAL}."
                    for col, n in mixed.items())
    if absent:
        text += f" Not in this cohort's table, so not reported: {', '.join(absent)}."
    if figures:
        text += (" The figure sets each model and task's AUC in every level side by side. No test compares the "
                 "levels: none is printed, so no p-value across subgroups needs a multiplicity correction; overlapping "
                 "intervals are not evidence that the levels agree.")
    return Section("Subgroups", text, tables={"AUC by subgroup": pd.DataFrame(rows)}, estimates=estimates,
                   figures=figures)


def _auc_figures(estimates: list[dict], joined: pd.DataFrame, columns: list[str], k_fold: bool, unit: str,
                 names: dict, ctx: RunContext) -> list:
    """auc_figure of every subgroup column, saved through the run's figure helper."""
    out = []
    for col in columns:
        units = joined.drop_duplicates("record_id")[col]
        counts = {str(lv): int((units == lv).sum()) for lv in sorted(units.dropna().unique(), key=str)}
        fig = auc_figure(estimates, col, counts, k_fold, unit, names)
        if fig is not None:
            out.append(ctx.save_figure(fig, f"subgroups_auc_{re.sub(r'[^A-Za-z0-9_]+', '_', col)}", caption=(
                f"AUC within each level of {col}, every model and task: the dot is the AUC, the bar the interval its "
                "row of the table names (a diamond: the row has none, and why is in the table). Levels are described "
                "side by side, not tested against each other.")))
    return out
