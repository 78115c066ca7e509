"""The two sections a report opens with: the summary (design, cohort, headline result) and the cohort (who had each
outcome, and who each fold's model was fitted on and scored). Both are built from the predictions the evaluation
used and the performance section's estimates, so that every number in them is one the report's tables show."""
from __future__ import annotations

import pandas as pd

from cardio.data import Section
from cardio_report.markup import split_words
from cardio_report.outputs import display_name
from cardio_stats import format_p, format_paired, paired_note, paired_test

MAX_SUMMARY_MODELS = 10  # models named in the summary's headline line; the table has them all


def _main_task(table: pd.DataFrame) -> str:
    """The task the plugin predicts first: its headline (plugins list their primary outcome first)."""
    return str(table["task"].iloc[0])


def _records(table: pd.DataFrame) -> pd.DataFrame:
    """One row per task and record (the predictions hold one per model)."""
    return table.drop_duplicates(["task", "record_id"])


def _outcome(rows: pd.DataFrame) -> str:
    """"12 of 60 (20%)" for a binary outcome, "mean 54.1 (SD 9.8)" for a continuous one."""
    y = rows["y_true"].astype(float)
    if (rows["kind"] == "binary").all():
        return f"{int(y.sum())} of {len(y)} ({100 * y.mean():.0f}%)"
    return f"mean {y.mean():.4g} (SD {y.std(ddof=1):.3g})" if len(y) > 1 else f"{y.mean():.4g}"


def _design(table: pd.DataFrame, config: dict, external: bool) -> str:
    if external:
        # whether this is an external validation rests on the bundle's fingerprints, which cardio predict's first
        # section reads (records the model was trained on, or an overlap unknown): never claimed here
        return ("An exported model applied unchanged to this cohort (nothing refitted or recalibrated); whether any "
                "of its records was in the model's training cohort, the report's first section says.")
    cv = config["cv"]
    folds = table["fold"].nunique()
    return (f"Development and internal validation: every model fitted and scored by {split_words(folds)} "
            f"(`cv.method={cv['method']}`), split by patient, so that no patient is scored by a model fitted on their "
            "own records.")


def summary_section(rows: list[dict], tests: list[dict], table: pd.DataFrame, config: dict,
                    external: bool) -> Section:
    """Design, cohort and the headline: each model's AUC (or MAE) for the main task with its interval, and the
    pre-specified comparison where the config named a reference model."""

    names = config["report"]["display_names"]
    main = _main_task(table)
    records = _records(table)
    first = records[records["task"] == main]
    lines = [f"- **Design.** {_design(table, config, external)}",
             f"- **Cohort.** {table['patient_id'].nunique()} patients, {table['record_id'].nunique()} records with a "
             f"known outcome; {display_name(main, names)}: {_outcome(first)}."]
    metric, label = ("auc", "AUC") if (first["kind"] == "binary").all() else ("mae", "MAE")
    reference = config["stats"].get("reference")
    reference = reference.get(main) if isinstance(reference, dict) else reference
    found = sorted((r for r in rows if r["task"] == main and metric in r), key=lambda r: r["model"] != reference)
    if found:  # the reference model first (fixed in the config before the results), then the table's order
        shown = "; ".join(f"{display_name(r['model'], names)} {r[metric]}" for r in found[:MAX_SUMMARY_MODELS])
        more = f" (and {len(found) - MAX_SUMMARY_MODELS} more models)" if len(found) > MAX_SUMMARY_MODELS else ""
        level = f"{round(100 * float(config['stats']['level']))}% intervals"
        why = _intervals(found[:MAX_SUMMARY_MODELS], names, level) if metric == "auc" else level
        lines.append(f"- **{label} for {display_name(main, names)}** ({why}): {shown}{more}.")
    against = [t for t in tests if t["extra"].get("family") == "reference" and t["extra"].get("task") == main]
    if against:
        printed = {r["model"]: pd.to_numeric(str(r.get("auc", "")).split(" ")[0], errors="coerce") for r in found}
        said = [_comparison(t, names, printed) for t in against]
        lines.append("- **Against the reference** (ΔAUC, Holm-adjusted p): " + "; ".join(said) + "."
                     + paired_note(said))
    others = records["task"].nunique() - 1
    if others:
        lines.append(f"- {others} more task{'s' if others > 1 else ''}: every model and task is in the performance "
                     "tables.")
    return Section("Summary", "\n".join(lines), part="summary")


def _intervals(found: list[dict], names: dict, level: str) -> str:
    """"95% intervals: fold DeLong × 2; nested CV (Bates et al. 2023) for guideline, logistic": the interval most
    rows carry, then each other one with the models that carry it (a run mixes refitted and deep models); where no
    row carries one, why ("no interval: 3 fold(s): ..."), not "95% intervals: no interval"."""
    kinds: dict[str, list[str]] = {}
    for r in found:
        if r.get("auc_interval"):
            kinds.setdefault(r["auc_interval"], []).append(display_name(r["model"], names))
    if not kinds:
        return level
    if len(kinds) == 1 and next(iter(kinds)).startswith("no interval"):
        return next(iter(kinds))
    order = sorted(kinds, key=lambda k: -len(kinds[k]))
    return f"{level}: " + "; ".join([order[0], *(f"{k} for {', '.join(kinds[k])}" for k in order[1:])])


def _comparison(t: dict, names: dict, printed: dict) -> str:
    """"fused − A4C +0.050 [−0.020, +0.120], p 0.210", and the two AUCs the difference was formed from where they
    are not those `printed` (model -> the AUC the line above prints: format_paired)."""

    e = t["extra"]
    ma, mb = str(e.get("model_a")), str(e.get("model_b"))
    a, b = display_name(ma, names), display_name(mb, names)
    test = paired_test([{**t, "model_a": ma, "model_b": mb}], ma, mb, interval="cv")
    if test is None or test.get("diff") is None:
        return f"{a} − {b} not estimable"
    return f"{a} − {b} {format_paired(test, (printed.get(ma), printed.get(mb)))}, p {format_p(t.get('p_adjusted'))}"


def cohort_section(table: pd.DataFrame, config: dict, external: bool = False, truth: str | None = None) -> Section:
    """Who had each outcome (records, patients, events) and, per fold, who its model was scored on and fitted on;
    `truth`: what a cohort `cardio synthetic-crt` wrote planted (Cohort.truth), stated at the end."""

    names = config["report"]["display_names"]
    records = _records(table)
    by_task = pd.DataFrame([{"task": display_name(task, names), "kind": g["kind"].iloc[0], "records": len(g),
                             "patients": g["patient_id"].nunique(), "outcome": _outcome(g)}
                            for task, g in records.groupby("task", sort=False)])
    main = _main_task(table)
    first = records[records["task"] == main]
    binary = (first["kind"] == "binary").all()
    folds = []
    for fold, g in first.groupby("fold", sort=False):
        row = {"fold": fold, "patients scored": g["patient_id"].nunique(), "records scored": len(g)}
        if binary:
            row[f"{display_name(main, names)} positive (scored)"] = int(g["y_true"].sum())
        if not external and first["fold"].nunique() > 1:
            rest = first[first["fold"] != fold]
            row["patients of the other folds"] = rest["patient_id"].nunique()
            if binary:
                row[f"{display_name(main, names)} positive (other folds)"] = int(rest["y_true"].sum())
        folds.append(row)
    text = (f"{table['patient_id'].nunique()} patients with {table['record_id'].nunique()} records had a known "
            "outcome for at least one task. Each task is estimated on the records that have its outcome: records "
            "without it are left out of that task's estimates, never imputed.")
    if external:
        text += f" The second table counts the patients and events of {display_name(main, names)} on this cohort."
    elif first["fold"].nunique() > 1:
        text += (f" The second table counts, per fold, the patients whose {display_name(main, names)} the fold's "
                 "model scored, and the patients of the other folds, on whom that model was fitted (its validation "
                 "rows included, where the plugin keeps some).")
    if truth:
        text += " " + truth
    return Section("Cohort", text, tables={"outcomes by task": by_task, "patients per fold": pd.DataFrame(folds)},
                   part="cohort")
