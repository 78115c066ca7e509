"""What the run reports: mean polar maps and the ResNet's segment errors (explain), ResNet vs baseline (evaluate)."""
from __future__ import annotations

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio import Cohort, CoreSettings, Features, Predictions, Section
from cardio_imaging import aha17
from cardio_perfusion_polar.model import scaled, weights_source
from cardio_perfusion_polar.settings import PerfusionSettings
from cardio_perfusion_polar.synthetic import CHANNELS, RISK_TASKS, SEGMENT_TASKS, truth_text
from cardio_perfusion_polar.training import LOGISTIC, RESNET, PerfusionModel
from cardio_report.figures import subplots

# Display range and colour map of each channel, and its colour bar's label.
RANGES = {"rest": (40, 100, "hot"), "stress": (40, 100, "hot"), "mfr": (1.0, 3.5, "viridis")}
UNITS = {"rest": "uptake (% of maximum)", "stress": "uptake (% of maximum)", "mfr": "MFR (stress / rest flow)"}
# The bull's-eye images carry no wall names: the orientation is said once, above the panels.
ORIENTATION = "apex at the centre, base at the rim, anterior up, septum left; AHA 17-segment borders"


def mean_maps_figure(maps: np.ndarray, y: np.ndarray):
    """Mean rest, stress and MFR bull's-eyes of studies with and without impaired MFR (descriptive; studies
    without the label are in neither row)."""
    fig, axes = subplots(2, 3, figsize=(10, 6.5), layout="constrained")
    for r, (grp, name) in enumerate(((0, "MFR >= 2.0"), (1, "impaired MFR < 2.0"))):
        for c, ch in enumerate(CHANNELS):
            lo, hi, cmap = RANGES[ch]
            im = aha17.image_bullseye(axes[r, c], maps[y == grp, c].mean(axis=0), cmap=cmap, vmin=lo, vmax=hi,
                                      title=f"{ch}, {name} (n={int((y == grp).sum())})")
            fig.colorbar(im, ax=axes[r, c], shrink=0.7, label=UNITS[ch])
    fig.suptitle(f"Mean polar maps ({ORIENTATION})", fontsize=10)
    return fig


def segment_error_figure(mae: np.ndarray, size: int):
    """The step-1 ResNet's mean absolute MFR error of each segment, painted on a bull's-eye image."""
    labels = aha17.image_labels(size)
    err = np.where(labels > 0, mae[np.clip(labels, 1, None) - 1], 0.0)
    fig, ax = subplots(figsize=(4.6, 4), layout="constrained")
    im = aha17.image_bullseye(ax, err, cmap="magma", vmin=0, vmax=float(mae.max()) or 1.0,
                              title="ResNet step 1, last fold: MFR error per segment\n"
                                    "(apex centre, anterior up, septum left)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean absolute MFR error")
    return fig


def explain_section(model: PerfusionModel, features: Features, index: np.ndarray, ctx) -> Section:
    """Mean polar maps by impaired MFR, and the ResNet's per-segment MFR error on the last test fold (over the
    studies that have that segment's MFR)."""
    maps = features.x["maps"]
    y = features.table["impaired_mfr"].to_numpy()
    figs = [ctx.save_figure(mean_maps_figure(maps, y), "perfusion_bullseye_mean_maps", caption=(
        "Mean polar maps of each channel, for the patients with and without impaired MFR (all patients, "
        f"descriptive); {ORIENTATION}."))]
    index = np.asarray(index)
    pred = ctx.engine.predict(model.step1, ctx.engine.ArrayDataset(scaled(maps[index])), ctx)
    err = np.abs(pred - features.table[SEGMENT_TASKS].to_numpy(dtype=float)[index])
    present = ~np.isnan(err)
    mae = np.where(present, err, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    figs.append(ctx.save_figure(segment_error_figure(mae, maps.shape[-1]), "perfusion_bullseye_mfr_error", caption=(
        f"The step-1 ResNet's mean absolute error of each segment's MFR on the {len(index)} test studies of the last "
        "fold, painted on the AHA 17-segment bull's-eye.")))
    h1, h2 = model.history.get("step1") or [], model.history.get("step2") or []
    text = ("Two-step training (last fold): step 1 regressed the 17 segment MFRs for "
            f"{len(h1)} epoch(s); step 2 started from step 1's backbone and learned the six risk outputs for "
            f"{len(h2)} epoch(s); backbone weights: {model.weights or 'not recorded'}. Mean maps are descriptive "
            "over all patients. Segments follow the AHA "
            "17-segment model (cardio_imaging.aha17).")
    return Section(title="Perfusion polar maps", text=text, figures=figs)


# Per-input AUCs Yeung et al. published (the editorial quotes them): (task, input) -> (ResNet, logistic).
PUBLISHED = {("sex_male", "rest"): (0.81, 0.85), ("diabetes", "mfr"): (0.65, 0.61), ("smoking", "rest"): (0.71, None)}
INPUT_OF = {RESNET: "joint", LOGISTIC: "joint"}


def _input(model: str) -> str:
    return INPUT_OF.get(model, model.split("-", 1)[-1])


def _auc(estimates: list[dict], **keys) -> dict | None:
    """The performance table's AUC of these keys (its headline: the cross-validated AUC with its cross-validated
    interval in a K-fold run, DeLong's score interval of a holdout), or None where it computed none."""
    return stats.headline_auc(estimates, **keys)


def _comparison_row(part: pd.DataFrame, estimates: list[dict], tests: list[dict], resnet: str, logistic: str,
                    task: str, repeat: int) -> dict | None:
    """One row of the comparison table: both models' AUCs and their paired test, from the core's results."""
    sub = part[part["task"] == task]
    a, b = sub[sub["model"] == resnet], sub[sub["model"] == logistic]
    if a.empty or b.empty:
        return None
    y = a["y_true"].to_numpy()
    paper = PUBLISHED.get((task, _input(resnet)), (None, None))
    row = {"repeat": repeat, "input": _input(resnet), "task": task,
           "n (pos/neg)": f"{int(y.sum())}/{int(len(y) - y.sum())}"}
    ea = _auc(estimates, model=resnet, task=task, repeat=repeat)
    eb = _auc(estimates, model=logistic, task=task, repeat=repeat)
    test = stats.paired_test(stats.pick(tests, task=task, repeat=repeat), resnet, logistic, interval="cv")
    skip = "skipped: one class" if not 0 < int(np.sum(y)) < len(y) else "–"
    row.update({"resnet_auc": stats.format_ci(ea) if ea else skip, "logistic_auc": stats.format_ci(eb) if eb else skip,
                "ΔAUC (ResNet − logistic)": stats.format_paired(test, (ea and ea["estimate"], eb and eb["estimate"])),
                "p": stats.format_p(test["p"]) if test else "skipped",
                "p (Holm)": stats.format_p(test["p_holm"]) if test else "skipped",
                "Holm family": (test.get("extra") or {}).get("family", "") if test else ""})
    row["paper (DL / LR)"] = " / ".join("-" if v is None else f"{v:.2f}" for v in paper) \
        if any(v is not None for v in paper) else ""
    return row


def comparison_table(predictions: Predictions, estimates: list[dict], tests: list[dict]) -> pd.DataFrame:
    """Out-of-fold AUC of each ResNet and its logistic regression per input and risk factor, and their paired
    test: the performance section's `estimates` and `tests` as its tables print them (with K folds the
    cross-validated AUC and difference, cross-validated intervals; with one fold DeLong's), laid out as Yeung et al.'s
    comparison, on the records that have the task (a missing label is left out, never counted as a class).

    Each repeat of a repeated k-fold predicts every patient once: the core evaluates each repeat on its own, and
    the table has a `repeat` column, never the pooled duplicates. The Holm-adjusted p-value is the core's: over
    the reference's comparisons on every risk factor (`stats.reference_across_tasks`), or per task over the
    exploratory pairs.
    """
    t = predictions.table
    if "repeat" not in t.columns:
        t = t.assign(repeat=0)
    t = t[(t["kind"] == "binary") & t["y_true"].notna()]
    pairs = [(RESNET, LOGISTIC)] + [(m, "logistic-" + m.removeprefix("resnet-")) for m in sorted(set(t["model"]))
                                    if m.startswith("resnet-") and m != RESNET]
    rows = [row for repeat, part in t.groupby("repeat", sort=True) for resnet, logistic in pairs
            for task in RISK_TASKS
            if (row := _comparison_row(part, estimates, tests, resnet, logistic, task, int(repeat))) is not None]
    columns = ["repeat", "input", "task", "n (pos/neg)", "resnet_auc", "logistic_auc", "ΔAUC (ResNet − logistic)",
               "p", "p (Holm)", "Holm family", "paper (DL / LR)"]
    return pd.DataFrame(rows, columns=columns)


CIRCULARITY = ("Circularity: impaired MFR (global MFR < 2.0) is read almost directly off the MFR input map, which "
               "carries the segment flow reserves the label is computed from; its AUC (and step 1's segment-MFR "
               "regression) measures reading a number back, not finding a hidden risk factor, as the editorial "
               "itself notes ('training against MFR seems circular'). The rest-only and stress-only models, and the "
               "other five risk factors, are the informative comparisons.")


def evaluate_sections(predictions: Predictions, estimates: list[dict], tests: list[dict],
                      config: dict | None = None, cohort: Cohort | None = None) -> list[Section]:
    """ResNet vs 17-segment logistic regression per input and risk factor (the performance section's estimates
    and tests), and the segment-MFR error of both regressions; the synthetic cohort's planted effects and the
    backbone's weights are stated."""
    s = PerfusionSettings.of(config) if config else None
    t = predictions.table
    reg = t[(t["kind"] == "regression") & t["y_true"].notna()]
    mae = reg.assign(err=(reg["y_score"] - reg["y_true"]).abs()).groupby("model")["err"].mean()
    n_repeats = int(t["repeat"].nunique()) if "repeat" in t.columns else 1
    text = ("Comparison on predictions for patients outside each model's training rows (out-of-fold, or the "
            "holdout test set), as in Yeung et al.: the ResNet on the three polar maps vs a logistic "
            "regression on the 51 segment values (17 segments x rest, stress, MFR)"
            + (", and per input map (rest, stress, MFR alone: that map into a ResNet, its 17 segment values into "
               "a logistic regression)" if s and s.separate_inputs else "") + ". "
            "The AUCs, their intervals and the paired tests are the performance section's (at "
            f"`stats.level` {_level(config)}; {_intervals(estimates, tests)}), laid out here by input and risk "
            "factor; p-values raw and "
            "Holm-adjusted as that section adjusts them, over the family the table names (`reference`: the "
            "pre-specified model's comparisons, `stats.reference`, one family over every risk factor when "
            "`stats.reference_across_tasks` is true; `exploratory`: the other pairs, per task). "
            "Calibration (Brier score, slope, intercept, decision curves) is in the performance section too. "
            "Mean absolute error of the 17 segment MFRs (point values from the out-of-fold predictions; the "
            "performance section gives each segment's MAE with its interval): "
            + ", ".join(f"{m} {v:.3f}" for m, v in mae.items()) + ". " + CIRCULARITY)
    if n_repeats > 1:
        text += (f" Repeated k-fold ({n_repeats} repeats): every patient is predicted once per repeat, so every "
                 "AUC, CI and paired test is computed within one repeat (the table's `repeat` column), and the "
                 "performance section's table across repeats summarises them; no test runs on the pooled "
                 "duplicates.")
    if s:
        text += f" Backbone weights: {weights_source(s)}."
        truth = s.truth.as_dict()
        planted = "" if cohort is None else cohort.planted_effects(
            lambda: "Cohort: synthetic; " + truth_text(truth) + ".")
        if planted:
            text += " " + planted
    table = comparison_table(predictions, estimates, tests)
    text += stats.paired_note(table["ΔAUC (ResNet − logistic)"])
    if n_repeats == 1:
        table = table.drop(columns="repeat")
    tables = {"AUC per input and risk factor (out-of-fold, the performance section's intervals, Holm)": table}
    return [Section(title="Perfusion risk factors: ResNet vs 17-segment logistic regression", text=text,
                    tables=tables)]


def _intervals(estimates: list[dict], tests: list[dict]) -> str:
    """Which intervals the table's AUCs and differences carry, and what they count (docs/statistics.md)."""
    aucs = sorted({e["method"] for m in (RESNET, LOGISTIC) for task in RISK_TASKS
                   if (e := stats.headline_auc(estimates, model=m, task=task))})
    diffs = sorted({t["method"] for t in (stats.paired_test([x], str(x.get("model_a")), str(x.get("model_b")),
                                                            interval="cv") for x in tests) if t and t.get("method")})
    return ("AUC " + "; ".join(map(stats.interval_note, aucs)) if aucs else "no AUC") + (
        "; ΔAUC " + "; ".join(map(stats.interval_note, diffs)) if diffs else "")


def _level(config: dict | None) -> str:
    return "–" if not config else f"{CoreSettings.of(config).stats.level:g}"
