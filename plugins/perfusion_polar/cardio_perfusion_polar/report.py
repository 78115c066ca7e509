"""What the run reports: mean polar maps and the ResNet's segment errors (explain), ResNet vs baseline (evaluate)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio import Features, Predictions, Section, aha17, stats
from cardio.figures import subplots
from cardio_perfusion_polar.model import scaled
from cardio_perfusion_polar.synthetic import CHANNELS, RISK_TASKS, SEGMENT_TASKS
from cardio_perfusion_polar.training import LOGISTIC, RESNET, PerfusionModel

# Display range and colour map of each channel.
RANGES = {"rest": (40, 100, "hot"), "stress": (40, 100, "hot"), "mfr": (1.0, 3.5, "viridis")}


def mean_maps_figure(maps: np.ndarray, y: np.ndarray):
    """Mean rest, stress and MFR bull's-eyes of patients with and without impaired MFR (descriptive)."""
    fig, axes = subplots(2, 3, figsize=(10, 6.5), layout="constrained")
    for r, (grp, name) in enumerate(((0, "MFR >= 2.0"), (1, "impaired MFR < 2.0"))):
        for c, ch in enumerate(CHANNELS):
            lo, hi, cmap = RANGES[ch]
            im = aha17.image_bullseye(axes[r, c], maps[y == grp, c].mean(axis=0), cmap=cmap, vmin=lo, vmax=hi,
                                      title=f"mean {ch}, {name} (n={int((y == grp).sum())})")
            fig.colorbar(im, ax=axes[r, c], shrink=0.7)
    return fig


def segment_error_figure(mae: np.ndarray, size: int):
    """The step-1 ResNet's mean absolute MFR error of each segment, painted on a bull's-eye image."""
    labels = aha17.image_labels(size)
    err = np.where(labels > 0, mae[np.clip(labels, 1, None) - 1], 0.0)
    fig, ax = subplots(figsize=(4.6, 4), layout="constrained")
    im = aha17.image_bullseye(ax, err, cmap="magma", vmin=0, vmax=float(mae.max()) or 1.0,
                              title="ResNet step 1: MFR absolute error per segment (last fold)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def explain_section(model: PerfusionModel, features: Features, index: np.ndarray, ctx) -> Section:
    """Mean polar maps by impaired MFR, and the ResNet's per-segment MFR error on the last test fold."""
    maps = features.x["maps"]
    y = features.table["impaired_mfr"].to_numpy()
    figs = [ctx.save_figure(mean_maps_figure(maps, y), "perfusion_bullseye_mean_maps")]
    index = np.asarray(index)
    pred = ctx.engine.predict(model.step1, ctx.engine.ArrayDataset(scaled(maps[index])), ctx)
    mae = np.abs(pred - features.table[SEGMENT_TASKS].to_numpy()[index]).mean(axis=0)
    figs.append(ctx.save_figure(segment_error_figure(mae, maps.shape[-1]), "perfusion_bullseye_mfr_error"))
    h1, h2 = model.history.get("step1") or [], model.history.get("step2") or []
    text = ("Two-step training (last fold): step 1 regressed the 17 segment MFRs for "
            f"{len(h1)} epoch(s); step 2 started from step 1's backbone and learned the six risk outputs for "
            f"{len(h2)} epoch(s). Mean maps are descriptive over all patients. Segments follow the AHA "
            "17-segment model (cardio.aha17).")
    return Section(title="Perfusion polar maps", text=text, figures=figs)


def comparison_table(predictions: Predictions) -> pd.DataFrame:
    """Out-of-fold AUC of the ResNet and of the 17-segment logistic regression per risk factor, paired DeLong test."""
    t = predictions.table
    rows = []
    for task in RISK_TASKS:
        sub = t[t["task"] == task]
        a = sub[sub["model"] == RESNET].sort_values("record_id")
        b = sub[sub["model"] == LOGISTIC].sort_values("record_id")
        if a.empty or b.empty:
            continue
        ea, eb = stats.delong_ci(a["y_true"], a["y_score"]), stats.delong_ci(b["y_true"], b["y_score"])
        test = stats.delong_test(a["y_true"].to_numpy(), a["y_score"].to_numpy(), b["y_score"].to_numpy())
        rows.append({"task": task,
                     "resnet_auc": ea.estimate, "resnet_ci": stats.format_interval(ea.ci_low, ea.ci_high),
                     "logistic_auc": eb.estimate, "logistic_ci": stats.format_interval(eb.ci_low, eb.ci_high),
                     "delong_p": stats.format_p(test.p_value)})
    return pd.DataFrame(rows)


def evaluate_section(predictions: Predictions) -> Section:
    """ResNet vs 17-segment logistic regression per risk factor, and the segment-MFR error of both regressions."""
    t = predictions.table
    reg = t[t["kind"] == "regression"]
    mae = reg.assign(err=(reg["y_score"] - reg["y_true"]).abs()).groupby("model")["err"].mean()
    text = ("Out-of-fold comparison, as in Yeung et al.: the ResNet on the three polar maps vs a logistic "
            "regression on the 51 segment values (17 segments x rest, stress, MFR). Mean absolute error of the "
            "17 segment MFRs: " + ", ".join(f"{m} {v:.3f}" for m, v in mae.items()) + ".")
    return Section(title="Perfusion risk factors: ResNet vs 17-segment logistic regression", text=text,
                   tables={"AUC per risk factor (out-of-fold, DeLong)": comparison_table(predictions)})
