"""Built-in plugin: every metric per subgroup column named in `subgroups:` (e.g. sex, site); its section comes last."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cardio.data import CardioError, Cohort, PluginInfo, Predictions, Section
from cardio.hookspecs import hookimpl

if TYPE_CHECKING:
    from cardio.context import RunContext


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="subgroups", modality=None,
                      description="Reports every metric per subgroup column named in the config's `subgroups:`.")


@hookimpl(trylast=True)
def cardio_evaluate(predictions: Predictions, cohort: Cohort, config: dict, ctx: RunContext) -> Section | None:
    columns = config.get("subgroups") or []
    if not columns:
        return None
    from cardio.stats import format_ci  # loaded only when a run asks for subgroups
    missing = [c for c in columns if c not in cohort.table.columns]
    if missing:
        raise CardioError(f"subgroups: column(s) {missing} are not in the cohort table; "
                          f"it has {list(cohort.table.columns)}")
    s = config["stats"]
    table = predictions.table
    table = table[table["repeat"] == table["repeat"].min()].drop(columns="repeat")  # one prediction per record
    joined = table.merge(cohort.table[["record_id", *columns]], on="record_id", how="left")
    estimates, rows = [], []
    for col in columns:
        per_level = ctx.stats.by_subgroup(
            joined, col, lambda sub: ctx.stats.evaluate_predictions(
                sub, level=s["level"], n_resamples=s["n_resamples"], seed=ctx.seed)[0])
        for level, result in per_level.items():
            if not isinstance(result, list):  # skipped by the stats service, e.g. one outcome class
                why = "; ".join(getattr(result, "warnings", [])) or str(result)
                rows.append({"subgroup": f"{col}={level}", "model": "", "task": "", "n": getattr(result, "n", ""),
                             "auc": f"skipped: {why}"})
                continue
            for e in result:
                if e["fold"] != "pooled":
                    continue
                e = {**e, "subgroup": f"{col}={level}"}
                estimates.append(e)
                if e["metric"] == "auc" and e["method"] == "delong":
                    rows.append({"subgroup": e["subgroup"], "model": e["model"], "task": e["task"], "n": e["n"],
                                 "auc": format_ci(e) if e["ci_low"] is not None else "–"})
    text = (f"Every metric of the performance section, recomputed within each level of {', '.join(columns)}; "
            "small subgroups give wide intervals.")
    return Section("Subgroups", text, tables={"AUC by subgroup": pd.DataFrame(rows)}, estimates=estimates)
