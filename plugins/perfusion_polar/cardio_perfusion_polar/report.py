"""What the run reports: mean polar maps and the ResNet's segment errors (explain), ResNet vs baseline (evaluate)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio import Features, Predictions, Section, aha17, stats
from cardio.figures import subplots
from cardio_perfusion_polar.model import scaled, weights_source
from cardio_perfusion_polar.synthetic import CHANNELS, RISK_TASKS, SEGMENT_TASKS, truth_text
from cardio_perfusion_polar.training import LOGISTIC, RESNET, PerfusionModel

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
    figs = [ctx.save_figure(mean_maps_figure(maps, y), "perfusion_bullseye_mean_maps")]
    index = np.asarray(index)
    pred = ctx.engine.predict(model.step1, ctx.engine.ArrayDataset(scaled(maps[index])), ctx)
    err = np.abs(pred - features.table[SEGMENT_TASKS].to_numpy(dtype=float)[index])
    present = ~np.isnan(err)
    mae = np.where(present, err, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    figs.append(ctx.save_figure(segment_error_figure(mae, maps.shape[-1]), "perfusion_bullseye_mfr_error"))
    h1, h2 = model.history.get("step1") or [], model.history.get("step2") or []
    text = ("Two-step training (last fold): step 1 regressed the 17 segment MFRs for "
            f"{len(h1)} epoch(s); step 2 started from step 1's backbone and learned the six risk outputs for "
            f"{len(h2)} epoch(s); backbone weights: {model.weights or 'not recorded'}. Mean maps are descriptive "
            "over all patients. Segments follow the AHA "
            "17-segment model (cardio.aha17).")
    return Section(title="Perfusion polar maps", text=text, figures=figs)


# Per-input AUCs Yeung et al. published (the editorial quotes them): (task, input) -> (ResNet, logistic).
PUBLISHED = {("sex_male", "rest"): (0.81, 0.85), ("diabetes", "mfr"): (0.65, 0.61), ("smoking", "rest"): (0.71, None)}
INPUT_OF = {RESNET: "joint", LOGISTIC: "joint"}


def _input(model: str) -> str:
    return INPUT_OF.get(model, model.split("-", 1)[-1])


def _auc(y: np.ndarray, score: np.ndarray):
    """DeLong AUC and CI, or None when the rows hold one class (the table says 'skipped', never NaN)."""
    if not 0 < int(np.sum(y)) < len(y):
        return None
    return stats.delong_ci(y, score)


def comparison_table(predictions: Predictions) -> pd.DataFrame:
    """Out-of-fold AUC of each ResNet and its logistic regression per input and risk factor, paired DeLong test,
    on the records that have the task (a missing label is left out, never counted as a class).

    Each repeat of a repeated k-fold predicts every patient once: the table is computed per repeat (a
    `repeat` column), never on the pooled duplicates. The DeLong tests of one repeat are one family,
    reported with raw and Holm-adjusted p-values side by side.
    """
    t = predictions.table
    if "repeat" not in t.columns:
        t = t.assign(repeat=0)
    t = t[(t["kind"] == "binary") & t["y_true"].notna()]
    pairs = [(RESNET, LOGISTIC)] + [(m, "logistic-" + m.removeprefix("resnet-")) for m in sorted(set(t["model"]))
                                    if m.startswith("resnet-") and m != RESNET]
    rows = []
    for repeat, part in t.groupby("repeat", sort=True):
        family = []
        for resnet, logistic in pairs:
            for task in RISK_TASKS:
                sub = part[part["task"] == task]
                a = sub[sub["model"] == resnet].sort_values("record_id")
                b = sub[sub["model"] == logistic].sort_values("record_id")
                if a.empty or b.empty:
                    continue
                y = a["y_true"].to_numpy()
                ea, eb = _auc(y, a["y_score"].to_numpy()), _auc(y, b["y_score"].to_numpy())
                paper = PUBLISHED.get((task, _input(resnet)), (None, None))
                row = {"repeat": int(repeat), "input": _input(resnet), "task": task,
                       "n (pos/neg)": f"{int(y.sum())}/{int(len(y) - y.sum())}"}
                if ea is None:
                    row.update({"resnet_auc": "skipped: one class", "logistic_auc": "skipped: one class",
                                "delong_p": "skipped", "delong_p_holm": "skipped"})
                else:
                    test = stats.delong_test(y, a["y_score"].to_numpy(), b["y_score"].to_numpy())
                    row.update({"resnet_auc": stats.format_ci(ea),
                                "logistic_auc": stats.format_ci(eb),
                                "_p": test.p_value})
                    family.append(row)
                row["paper (DL / LR)"] = " / ".join("-" if v is None else f"{v:.2f}" for v in paper) \
                    if any(v is not None for v in paper) else ""
                rows.append(row)
        if family:
            adjusted = stats.adjust_pvalues([r["_p"] for r in family], "holm")
            for r, p_adj in zip(family, adjusted):
                r["delong_p"], r["delong_p_holm"] = stats.format_p(r.pop("_p")), stats.format_p(float(p_adj))
    columns = ["repeat", "input", "task", "n (pos/neg)", "resnet_auc", "logistic_auc", "delong_p", "delong_p_holm",
               "paper (DL / LR)"]
    return pd.DataFrame(rows, columns=columns)


def repeats_summary(predictions: Predictions) -> pd.DataFrame | None:
    """With repeated k-fold: each model's AUC per task summarised over repeats (mean, SD, range of the per-repeat
    AUCs, cardio.stats.summarize_folds), the duplicates never pooled. None with one repeat."""
    t = predictions.table
    if "repeat" not in t.columns or t["repeat"].nunique() < 2:
        return None
    rows = []
    for (model, task), g in t[(t["kind"] == "binary") & t["y_true"].notna()].groupby(["model", "task"], sort=True):
        per = [stats.delong_ci(r["y_true"].to_numpy(), r["y_score"].to_numpy()) for _, r in g.groupby("repeat")
               if 0 < r["y_true"].sum() < len(r)]
        if not per:
            rows.append({"model": model, "task": task, "repeats used": 0, "AUC mean (SD)": "skipped: one class",
                         "AUC range": ""})
            continue
        s = stats.summarize_folds(per)
        sd = f" ({s['sd']:.3f})" if s["sd"] is not None else ""
        rows.append({"model": model, "task": task, "repeats used": s["n_used"],
                     "AUC mean (SD)": f"{s['mean']:.3f}{sd}", "AUC range": f"{s['min']:.3f}-{s['max']:.3f}"})
    return pd.DataFrame(rows)


CIRCULARITY = ("Circularity: impaired MFR (global MFR < 2.0) is read almost directly off the MFR input map, which "
               "carries the segment flow reserves the label is computed from; its AUC (and step 1's segment-MFR "
               "regression) measures reading a number back, not finding a hidden risk factor, as the editorial "
               "itself notes ('training against MFR seems circular'). The rest-only and stress-only models, and the "
               "other five risk factors, are the informative comparisons.")


def evaluate_section(predictions: Predictions, config: dict | None = None) -> Section:
    """ResNet vs 17-segment logistic regression per input and risk factor, and the segment-MFR error of both
    regressions; the synthetic cohort's planted effects and the backbone's weights are stated."""
    cfg = (config or {}).get("perfusion_polar", {})
    t = predictions.table
    reg = t[(t["kind"] == "regression") & t["y_true"].notna()]
    mae = reg.assign(err=(reg["y_score"] - reg["y_true"]).abs()).groupby("model")["err"].mean()
    n_repeats = int(t["repeat"].nunique()) if "repeat" in t.columns else 1
    text = ("Comparison on predictions for patients outside each model's training rows (out-of-fold, or the "
            "holdout test set), as in Yeung et al.: the ResNet on the three polar maps vs a logistic "
            "regression on the 51 segment values (17 segments x rest, stress, MFR)"
            + (", and per input map (rest, stress, MFR alone: that map into a ResNet, its 17 segment values into "
               "a logistic regression)" if cfg.get("separate_inputs") else "") + ". "
            "AUCs with DeLong 95% CIs; the paired DeLong tests of one repeat are one family, p-values raw and "
            "Holm-adjusted side by side; calibration (Brier score, slope, intercept, decision curves) is in the "
            "performance section. Mean absolute error of the 17 segment MFRs: "
            + ", ".join(f"{m} {v:.3f}" for m, v in mae.items()) + ". " + CIRCULARITY)
    if n_repeats > 1:
        text += (f" Repeated k-fold ({n_repeats} repeats): every patient is predicted once per repeat, so every "
                 "AUC, CI and DeLong test is computed within one repeat, and the repeats are summarised by the mean, "
                 "SD and range of their AUCs; no test or bootstrap runs on the pooled duplicates.")
    if cfg:
        text += f" Backbone weights: {weights_source(cfg)}."
        if not (config or {}).get("cohort", {}).get("dir"):
            text += " Cohort: synthetic; " + truth_text(cfg.get("truth")) + "."
    tables = {"AUC per input and risk factor (out-of-fold, DeLong, Holm)": comparison_table(predictions)}
    summary = repeats_summary(predictions)
    if summary is not None:
        tables["AUC over repeats (per-repeat AUCs summarised)"] = summary
    return Section(title="Perfusion risk factors: ResNet vs 17-segment logistic regression", text=text, tables=tables)
