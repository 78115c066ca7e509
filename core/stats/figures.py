"""Report figures (ROC with CI band, calibration, Bland–Altman, forest plot) as matplotlib Figures, no pyplot."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # a bare Figure renders with Agg and never touches a GUI or pyplot state
from scipy.stats import norm
from sklearn.metrics import roc_curve

from cardio.stats.agreement import LOA_COVERAGE
from cardio.stats.result import StatsError
from cardio.stats.roc import delong_ci, roc_curve_band
from cardio.stats.thresholds import wilson_ci
from cardio.stats.validation import as_binary_labels, as_scores


def plot_roc(curves: dict[str, tuple[Any, Any]], ci_band: bool = True, n_resamples: int = 500, seed: int | None = 0,
             title: str | None = None) -> Figure:
    """Overlaid ROC curves, legend "name: AUC x [lo–hi]" (DeLong 95% CI), optional bootstrap band per curve."""
    if not curves:
        raise StatsError("plot_roc needs at least one (y, score) curve")
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    for i, (name, (y, score)) in enumerate(curves.items()):
        color = f"C{i}"
        est = delong_ci(y, score)
        fpr, tpr, _ = roc_curve(as_binary_labels(y), as_scores(score, n=len(y)))
        ax.plot(fpr, tpr, color=color, lw=1.8,
                label=f"{name}: AUC {est.estimate:.3f} [{est.ci_low:.3f}–{est.ci_high:.3f}]")
        if ci_band:
            band = roc_curve_band(y, score, n_resamples=n_resamples, seed=seed)
            ax.fill_between(band["fpr"], band["lo"], band["hi"], color=color, alpha=0.15, lw=0, step="post")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity (false-positive rate)",
           ylabel="Sensitivity (true-positive rate)", title=title or "ROC curves")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, title="AUC [DeLong 95% CI]", title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_calibration(y: Any, prob: Any, n_bins: int = 10) -> Figure:
    """Observed vs predicted risk in equal-width bins with Wilson 95% CIs, and the distribution of predictions."""
    yy = as_binary_labels(y, require_both=False)
    p = as_scores(prob, "prob", n=yy.size)
    if p.min() < 0 or p.max() > 1:
        raise StatsError(f"probabilities must lie in [0, 1], got range [{p.min():g}, {p.max():g}]")
    if int(n_bins) < 2:
        raise StatsError(f"n_bins must be >= 2, got {n_bins}")
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    # binned by hand (sklearn's calibration_curve drops the bin counts needed for the error bars)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    mean_pred, observed, err_lo, err_hi, counts = [], [], [], [], []
    for b in range(n_bins):
        sel = which == b
        k = int(sel.sum())
        if k == 0:
            continue
        events = int(yy[sel].sum())
        lo, hi = wilson_ci(events, k)
        mean_pred.append(p[sel].mean())
        observed.append(events / k)
        err_lo.append(max(events / k - lo, 0.0))  # Wilson bounds can cross the point by rounding
        err_hi.append(max(hi - events / k, 0.0))
        counts.append(k)
    fig = Figure(figsize=(5.5, 6))
    ax, hx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="perfect calibration")
    ax.errorbar(mean_pred, observed, yerr=[err_lo, err_hi], fmt="o-", color="C0", capsize=3,
                label="observed (Wilson 95% CI)")
    ax.set(ylim=(-0.02, 1.02), ylabel="Observed proportion", title="Calibration")
    ax.legend(loc="upper left", fontsize=8)
    hx.hist(p, bins=edges, color="C0", alpha=0.6)
    hx.set(xlim=(0, 1), xlabel="Predicted probability", ylabel="Records")
    fig.tight_layout()
    return fig


def plot_bland_altman(y_true: Any, y_pred: Any, title: str | None = None) -> Figure:
    """Difference (prediction − truth) against the mean of the two, with bias and 95% limits of agreement."""
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    if t.size < 3:
        raise StatsError(f"a Bland–Altman plot needs at least 3 records, got {t.size}")
    d = p - t
    bias, sd = d.mean(), d.std(ddof=1)
    z = norm.ppf(0.5 + LOA_COVERAGE / 2.0)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.scatter((p + t) / 2.0, d, s=12, alpha=0.6, color="C0")
    lines = ((bias, "bias", "-"), (bias - z * sd, "lower LoA", "--"), (bias + z * sd, "upper LoA", "--"))
    for value, label, style in lines:
        ax.axhline(value, color="C3", ls=style, lw=1.2)
        ax.annotate(f"{label}: {value:.3g}", xy=(1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=8, color="C3")
    ax.set(xlabel="Mean of truth and prediction", ylabel="Prediction − truth", title=title or "Bland–Altman")
    fig.tight_layout()
    return fig


def plot_forest(table: pd.DataFrame) -> Figure:
    """Odds ratios with CIs on a log scale, one row per variable (univariate_screen or model table)."""
    needed = {"variable", "or", "ci_low", "ci_high"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise StatsError(f"plot_forest needs a DataFrame with columns {sorted(needed)}")
    if table.empty:
        raise StatsError("plot_forest got an empty table")
    rows = table.reset_index(drop=True)
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.4))
    ax = fig.add_subplot()
    ypos = np.arange(len(rows))[::-1]
    ok = np.isfinite(rows[["or", "ci_low", "ci_high"]].to_numpy(dtype=float)).all(axis=1) & (rows["or"] > 0)
    ax.errorbar(rows.loc[ok, "or"], ypos[ok],
                xerr=[rows.loc[ok, "or"] - rows.loc[ok, "ci_low"], rows.loc[ok, "ci_high"] - rows.loc[ok, "or"]],
                fmt="s", color="C0", capsize=3)
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.set_xscale("log")
    labels = []
    for i, r in rows.iterrows():
        if ok[i]:
            p = r.get("p_value", np.nan)
            labels.append(f"{r['variable']}  {r['or']:.2f} [{r['ci_low']:.2f}–{r['ci_high']:.2f}]"
                          + (f", p={p:.3g}" if pd.notna(p) else ""))
        else:
            labels.append(f"{r['variable']}  not estimable")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set(xlabel="Odds ratio (log scale)", title="Odds ratios with confidence intervals")
    fig.tight_layout()
    return fig


def plot_decision_curve(y: Any, probs: dict[str, Any], title: str | None = None) -> Figure:
    """Net benefit against the threshold probability for each model, treat-all and treat-none."""
    from cardio.stats.calibration import decision_curve

    if not probs:
        raise StatsError("plot_decision_curve needs at least one model's probabilities")
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    curves = {name: decision_curve(y, p) for name, p in probs.items()}
    first = next(iter(curves.values()))
    ax.plot(first["threshold"], first["treat_all"], color="0.45", lw=1.2, ls="--", label="treat all")
    ax.axhline(0.0, color="0.2", lw=1.0, label="treat none")
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(c["threshold"], c["model"], color=f"C{i}", lw=1.8, label=name)
    prevalence = float(np.mean(as_binary_labels(y)))
    ax.set(xlim=(0, 1), ylim=(-0.05, max(prevalence, 0.05) * 1.1), xlabel="Threshold probability of response",
           ylabel="Net benefit (true positives per patient)", title=title or "Decision curve")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
