"""Report figures (ROC, calibration, decision curve, Bland–Altman, forest plot, confusion matrix) as bare matplotlib
Figures, no pyplot. Colours are the project's Okabe–Ito palette (cardio_stats.palette) and perceptually uniform
colormaps; every axis states its unit; names are whatever the caller passes (display names, not column names)."""
from __future__ import annotations

import math
import textwrap
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # a bare Figure renders with Agg and never touches a GUI or pyplot state
from matplotlib.ticker import NullFormatter
from sklearn.metrics import roc_curve

from cardio_stats.agreement import LOA_Z
from cardio_stats.formatting import format_ci
from cardio_stats.palette import CVD_SEQUENTIAL, PALETTE
from cardio_stats.result import Estimate, StatsError
from cardio_stats.roc import delong_ci, roc_curve_band
from cardio_stats.thresholds import wilson_ci
from cardio_stats.validation import as_binary_labels, as_scores

FPR_LABEL = "1 − specificity (false-positive rate, proportion)"
TPR_LABEL = "Sensitivity (true-positive rate, proportion)"
GREY = "0.6"
# A unit for a quantity whose unit the caller did not give: says so rather than inventing one.
UNKNOWN_UNIT = "unit not stated"


# Lines and markers skip the palette's yellow, too pale on white; past seven curves the colours repeat with
# another dash pattern, so no two curves of one panel look alike.
LINE_COLOURS = tuple(c for c in PALETTE if c.upper() != "#F0E442")
DASHES = ("-", "--", ":", "-.")


def colour(i: int) -> str:
    """The i-th line colour of the palette (cycled; see line_style)."""
    return LINE_COLOURS[i % len(LINE_COLOURS)]


def line_style(i: int) -> str:
    """The dash pattern of the i-th curve: solid for the first seven, then dashed, dotted..."""
    return DASHES[(i // len(LINE_COLOURS)) % len(DASHES)]


def _roc_label(name: str, y: np.ndarray, score: np.ndarray, level: float,
               shown: Estimate | dict | None = None, groups: Any = None) -> tuple[str, np.ndarray, np.ndarray]:
    """Legend text of one curve: the AUC and interval the table shows for it (``shown``), else DeLong's, clustered
    by patient where ``groups`` gives several records to a patient; n counts patients there, as the band does."""
    yy = as_binary_labels(y)
    fpr, tpr, _ = roc_curve(yy, as_scores(score, n=len(y)))
    n_pos, n_neg = int(yy.sum()), int(yy.size - yy.sum())
    count = f"n = {n_pos} positive, {n_neg} negative"
    if groups is not None and np.unique(np.asarray(groups)).size < yy.size:
        patients = pd.Series(yy).groupby(np.asarray(groups)).max()  # a patient is positive if any record is
        count = (f"n = {int(patients.sum())} positive, {int((patients == 0).sum())} negative patients "
                 f"({n_pos}, {n_neg} records)")
    auc_text = format_ci(shown if shown is not None else delong_ci(y, score, level=level, groups=groups), sep="–")
    return f"{name}: AUC {auc_text}\n{count}", fpr, tpr


def _legend_method(aucs: dict | None, names: list[str]) -> str:
    """The interval the legend carries, named as the table names it."""
    methods = {(e.method if isinstance(e, Estimate) else e.get("method")) for n, e in (aucs or {}).items()
               if n in names}
    if aucs is None or len(methods) != 1 or len(aucs) < len(names):
        return "DeLong" if aucs is None else "as in the performance table"
    method = methods.pop()
    return "DeLong" if method == "delong" else str(method)


# ROC axes a hair past [0, 1]: a curve's segments along the edges (a model whose lowest-scored positives lie below
# every negative climbs the right edge at 1 - specificity = 1) would otherwise hide under the frame, and the curve
# would seem to end short of (1, 1)
ROC_LIMITS = (-0.01, 1.01)


def _roc_axes(ax, chance: bool = True) -> None:
    if chance:
        ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1)
    ax.set(xlim=ROC_LIMITS, ylim=ROC_LIMITS)
    ax.set_aspect("equal")


def plot_roc(curves: dict[str, tuple[Any, Any]], ci_band: bool = True, n_resamples: int = 500, seed: int | None = 0,
             title: str | None = None, level: float = 0.95, aucs: dict[str, Estimate | dict] | None = None,
             groups: dict[str, Any] | None = None) -> Figure:
    """ROC curves, legend "name: AUC x [lo–hi]" and "n = positives, negatives".

    The legend carries ``aucs[name]`` where given (the AUC and interval the report's table shows for that curve,
    e.g. the cross-validated one: one interval per AUC), else the DeLong CI of the curve's scores.

    With `ci_band`, each curve gets its pointwise stratified-bootstrap band, and each band its own panel:
    one curve is one panel; several curves are small multiples (one panel per curve, the others drawn thin
    and grey for comparison), so bands never overlap. Without bands, the curves share one panel.
    ``groups[name]`` (patient ids, one per record of that curve) makes its band resample patients with all
    their records, as the legend's interval counts patients (its DeLong interval, where no ``aucs`` are given, is
    then clustered by patient, and n counts patients).
    """
    if not curves:
        raise StatsError("plot_roc needs at least one (y, score) curve")
    drawn = {name: _roc_label(name, y, score, level, (aucs or {}).get(name), (groups or {}).get(name))
             for name, (y, score) in curves.items()}
    pct = f"{level * 100:.0f}%"
    clustered = any(g is not None for g in (groups or {}).values())
    which = _legend_method(aucs, list(curves)) + (", patients" if clustered and aucs is None else "")
    band_text = f"{pct} bootstrap band{', patients resampled' if clustered else ''} ({n_resamples} resamples)"

    def band_of(name: str) -> dict:
        y, score = curves[name]
        return roc_curve_band(y, score, n_resamples=n_resamples, seed=seed, level=level,
                              groups=(groups or {}).get(name))
    if len(curves) == 1 or not ci_band:
        fig = Figure(figsize=(5.6, 5.4))
        ax = fig.add_subplot()
        _roc_axes(ax)
        for i, (label, fpr, tpr) in enumerate(drawn.values()):
            ax.plot(fpr, tpr, color=colour(i), ls=line_style(i), lw=1.8, label=label)
        if ci_band:
            band = band_of(next(iter(curves)))
            ax.fill_between(band["fpr"], band["lo"], band["hi"], color=colour(0), alpha=0.18, lw=0,
                            label=band_text)
        ax.set(xlabel=FPR_LABEL, ylabel=TPR_LABEL, title=title or "ROC curve")
        ax.legend(loc="lower right", fontsize=7.5, title=f"AUC [{pct} CI: {which}]", title_fontsize=7.5)
        fig.tight_layout()
        return fig
    ncols = min(len(curves), 3)
    nrows = math.ceil(len(curves) / ncols)
    fig = Figure(figsize=(3.9 * ncols, 4.0 * nrows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    names = list(curves)
    for i, (ax, name) in enumerate(zip(axes, names)):
        _roc_axes(ax)
        for other in names:
            if other != name:
                _, fpr, tpr = drawn[other]
                ax.plot(fpr, tpr, color=GREY, lw=0.8, alpha=0.8)
        band = band_of(name)  # points of the curve at each grid FPR, joined by lines as the curve joins ties
        ax.fill_between(band["fpr"], band["lo"], band["hi"], color=colour(i), alpha=0.18, lw=0)
        label, fpr, tpr = drawn[name]
        ax.plot(fpr, tpr, color=colour(i), lw=1.8)
        ax.set_title(name, fontsize=9)
        ax.text(0.97, 0.03, label.split(": ", 1)[1], transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5,
                bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9, "pad": 2})
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.supxlabel(f"{FPR_LABEL}\nshaded: {band_text}; grey: the other models;\n"
                  f"AUC [{pct} CI: {which}]", fontsize=9)
    fig.supylabel(TPR_LABEL, fontsize=9)
    fig.suptitle(title or "ROC curves", fontsize=10)
    return fig


def _quantile_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each risk: equal-count bins (at least 10 records each where n allows), so no point rests
    on one record; ties never split across bins."""
    k = int(max(2, min(n_bins, p.size // 10)))
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, k + 1)))
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(edges.size - 2, 0))


def plot_calibration(y: Any, prob: Any, n_bins: int = 10, title: str | None = None) -> Figure:
    """Observed vs predicted risk in equal-count (quantile) bins with Wilson 95% CIs, the bins' record counts in the
    legend, and the distribution of predictions below.

    Only for risks: a yes/no rule (two score values) has no calibration and is refused.
    """
    yy = as_binary_labels(y, require_both=False)
    p = as_scores(prob, "prob", n=yy.size)
    if p.min() < 0 or p.max() > 1:
        raise StatsError(f"probabilities must lie in [0, 1], got range [{p.min():g}, {p.max():g}]")
    if np.unique(p).size <= 2:
        raise StatsError("calibration needs predicted risks; these scores take "
                         f"{np.unique(p).size} value(s), a yes/no rule (report its confusion matrix instead)")
    if int(n_bins) < 2:
        raise StatsError(f"n_bins must be >= 2, got {n_bins}")
    which = _quantile_bins(p, int(n_bins))
    # binned by hand (sklearn's calibration_curve drops the bin counts needed for the error bars)
    points = []
    for b in np.unique(which):
        sel = which == b
        k, events = int(sel.sum()), int(yy[sel].sum())
        lo, hi = wilson_ci(events, k)
        points.append((p[sel].mean(), events / k, max(events / k - lo, 0.0), max(hi - events / k, 0.0), k))
    mean_pred, observed, err_lo, err_hi, counts = map(np.array, zip(*points))
    fig = Figure(figsize=(5.6, 6.4), layout="constrained")
    ax, hx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="perfect calibration")
    # equal-count bins differ by ties at most: their counts go in the legend once, where a label beside each point
    # ran into its neighbours' error bars
    per_bin = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}–{counts.max()}"
    ax.errorbar(mean_pred, observed, yerr=[err_lo, err_hi], fmt="o-", color=colour(0), capsize=3,
                label=f"observed in {len(points)} equal-count bins of {per_bin} records, Wilson 95% CI "
                      f"({int(yy.sum())} events in {yy.size} records)")
    ax.set(ylim=(-0.02, 1.02), ylabel="Observed event rate (proportion)")
    ax.set_title(title or "Calibration", fontsize=10)
    # the legend sits above the axes, where it can never cover a point
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", fontsize=7.5, ncols=1, frameon=False)
    hx.hist(p, bins=np.linspace(0, 1, 21), color=colour(0), alpha=0.6)
    hx.set(xlim=(0, 1), xlabel="Predicted risk (probability)", ylabel="Records (count)")
    return fig


def plot_bland_altman(y_true: Any, y_pred: Any, title: str | None = None, quantity: str | None = None,
                      unit: str | None = None) -> Figure:
    """Difference (prediction − truth) against the mean of the two, with bias and 95% limits of agreement.

    `quantity` and `unit` name the axes ("LVEF", "%"); without a unit the axes say it was not stated.
    """
    t = as_scores(y_true, "y_true")
    p = as_scores(y_pred, "y_pred", n=t.size)
    if t.size < 3:
        raise StatsError(f"a Bland–Altman plot needs at least 3 records, got {t.size}")
    d = p - t
    bias, sd = d.mean(), d.std(ddof=1)
    z = LOA_Z
    what = f" {quantity}" if quantity else ""
    u = unit or UNKNOWN_UNIT
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.scatter((p + t) / 2.0, d, s=12, alpha=0.6, color=colour(0), label=f"records (n = {t.size})")
    lines = ((bias, "bias", "-"), (bias - z * sd, "lower LoA", "--"), (bias + z * sd, "upper LoA", "--"))
    for value, label, style in lines:
        ax.axhline(value, color=colour(1), ls=style, lw=1.2)
        ax.annotate(f"{label}: {value:.3g}", xy=(1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=8, color=colour(1))
    ax.axhline(0.0, color=GREY, lw=0.8)
    ax.set(xlabel=f"Mean of measured and predicted{what} ({u})", ylabel=f"Predicted − measured{what} ({u})",
           title=title or "Bland–Altman")
    ax.legend(loc="upper left", fontsize=8, title=f"LoA: bias ± {z:.2f} SD", title_fontsize=8)
    fig.tight_layout()
    return fig


FOREST_ROWS = 30  # rows of one forest plot; a longer table is split (forest_figures)


def forest_figures(table: pd.DataFrame, max_rows: int = FOREST_ROWS, title: str | None = None) -> list[Figure]:
    """Forest plots of a long or mixed table: one figure per scale of the `per` column (odds ratios per unit
    and per SD never share an axis), each split into figures of at most `max_rows` rows."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise StatsError("forest_figures needs a non-empty DataFrame")
    groups = table.groupby("per", sort=False) if "per" in table.columns else [(None, table)]
    figures = []
    for per, part in groups:
        chunks = [part.iloc[i:i + max_rows] for i in range(0, len(part), max_rows)]
        for j, chunk in enumerate(chunks):
            where = (f" ({j + 1} of {len(chunks)})" if len(chunks) > 1 else "")
            figures.append(plot_forest(chunk, title=f"{title or 'Odds ratios with confidence intervals'}"
                                                    f"{f', per {per}' if per is not None else ''}{where}"))
    return figures


def plot_forest(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Odds ratios with CIs on a log scale, one row per variable (univariate_screen or model table).

    An optional `per` column names the scale of every odds ratio (`unit`, `SD`, ...); one plot holds one
    scale, so ORs per unit and per SD are never read off one axis (forest_figures splits a mixed table).
    """
    needed = {"variable", "or", "ci_low", "ci_high"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise StatsError(f"plot_forest needs a DataFrame with columns {sorted(needed)}")
    if table.empty:
        raise StatsError("plot_forest got an empty table")
    per = table["per"].unique().tolist() if "per" in table.columns else ["unit of the variable"]
    if len(per) > 1:
        raise StatsError(f"plot_forest got odds ratios on {len(per)} scales {per}; one plot holds one scale "
                         "(forest_figures splits the table by its `per` column)")
    rows = table.reset_index(drop=True)
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.4))
    ax = fig.add_subplot()
    ypos = np.arange(len(rows))[::-1]
    ok = np.isfinite(rows[["or", "ci_low", "ci_high"]].to_numpy(dtype=float)).all(axis=1) & (rows["or"] > 0)
    ax.errorbar(rows.loc[ok, "or"], ypos[ok],
                xerr=[rows.loc[ok, "or"] - rows.loc[ok, "ci_low"], rows.loc[ok, "ci_high"] - rows.loc[ok, "or"]],
                fmt="s", color=colour(0), capsize=3)
    ax.axvline(1.0, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])  # 0.5, 1, 2 rather than 5 x 10^-1
    ax.xaxis.set_minor_formatter(NullFormatter())
    labels = []
    for i, r in rows.iterrows():
        if ok[i]:
            p = r.get("p_value", np.nan)
            labels.append(f"{r['variable']}  {r['or']:.2f} [{r['ci_low']:.2f}–{r['ci_high']:.2f}]"
                          + (f", p={p:.3g}" if pd.notna(p) else ""))
        else:
            labels.append(f"{r['variable']}  not estimable")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set(xlabel=f"Odds ratio per {per[0]} (ratio, log scale)",
           title=title or "Odds ratios with confidence intervals")
    fig.tight_layout()
    return fig


def plot_decision_curve(y: Any, probs: dict[str, Any], title: str | None = None) -> Figure:
    """Net benefit against the threshold probability for each model, treat-all and treat-none."""
    from cardio_stats.calibration import decision_curve

    if not probs:
        raise StatsError("plot_decision_curve needs at least one model's probabilities")
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    curves = {name: decision_curve(y, p) for name, p in probs.items()}
    first = next(iter(curves.values()))
    ax.plot(first["threshold"], first["treat_all"], color="0.45", lw=1.2, ls="--", label="treat all")
    ax.axhline(0.0, color="0.2", lw=1.0, label="treat none")
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(c["threshold"], c["model"], color=colour(i), ls=line_style(i), lw=1.8, label=name)
    yy = as_binary_labels(y)
    prevalence = float(np.mean(yy))
    ax.set(xlim=(0, 1), ylim=(-0.05, max(prevalence, 0.05) * 1.1), xlabel="Threshold risk (probability)",
           ylabel="Net benefit (true positives per patient)", title=title or "Decision curve")
    ax.legend(fontsize=8, loc="upper right", title=f"n = {int(yy.sum())} positive, {int(yy.size - yy.sum())} negative",
              title_fontsize=8)
    fig.tight_layout()
    return fig


def _confusion_panel(ax, cm: np.ndarray, labels: list[str], unit: str, first_column: bool) -> Any:
    """One model: each cell holds its count and its rate (fraction of the true class), coloured by the rate."""
    rows = cm.sum(axis=1, keepdims=True)
    rate = np.divide(cm, rows, out=np.full(cm.shape, np.nan), where=rows > 0)
    never = cm.sum(axis=0) == 0
    k = len(labels)
    cmap = matplotlib.colormaps[CVD_SEQUENTIAL].with_extremes(bad="0.93")  # a class with no record: light grey
    image = ax.imshow(np.ma.masked_invalid(rate), cmap=cmap, vmin=0, vmax=1)
    xt = [textwrap.fill(str(c), 14) + ("\nnever\npredicted" if n else "") for c, n in zip(labels, never)]
    ax.set_xticks(range(k), xt, fontsize=8)
    ax.set_yticks(range(k), [f"{textwrap.fill(str(c), 16)}\n(n = {int(r)})" for c, r in zip(labels, rows[:, 0])],
                  fontsize=8)
    ax.tick_params(axis="y", labelleft=True)
    ax.set_xlabel("Predicted class", fontsize=8)
    if first_column:
        ax.set_ylabel("True class", fontsize=8)
    for tick, flag in zip(ax.get_xticklabels(), never):
        if flag:
            tick.set_color(colour(1))
            tick.set_fontweight("bold")
    ax.set_xticks(np.arange(k + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(k + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.75", lw=0.8)
    ax.tick_params(which="minor", length=0)
    for i in range(k):
        for j in range(k):
            text = f"{int(cm[i, j])}" + ("" if not rows[i, 0] else f"\n{rate[i, j]:.0%}")
            dark = rows[i, 0] and rate[i, j] < 0.5  # cividis is dark at the low end
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    return image


def plot_confusion(matrices: dict[str, Any], labels: list[str], title: str | None = None,
                   unit: str = "records") -> Figure:
    """Confusion matrices, one panel per model in a grid of up to three columns: each cell holds the count
    and the row-normalized rate (the fraction of each true class, on a perceptually uniform colour scale);
    a class never predicted is flagged on its axis.

    `matrices`: name -> square count matrix, rows the true class and columns the predicted one, in `labels` order
    (sklearn.metrics.confusion_matrix(y_true, y_pred, labels=...)).
    """
    if not matrices:
        raise StatsError("plot_confusion needs at least one confusion matrix")
    k = len(labels)
    checked = {}
    for name, cm in matrices.items():
        cm = np.asarray(cm, dtype=float)
        if cm.shape != (k, k):
            raise StatsError(f"confusion matrix of {name} has shape {cm.shape}, expected ({k}, {k}) for {k} labels")
        if not np.isfinite(cm).all() or (cm < 0).any() or (cm != np.round(cm)).any():
            raise StatsError(f"confusion matrix of {name} must hold non-negative whole counts")
        checked[name] = cm
    ncols = min(3, len(checked))
    nrows = math.ceil(len(checked) / ncols)
    side = 1.6 + 0.75 * k
    fig = Figure(figsize=(side * ncols + 1.2, side * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    images = []
    for i, (name, cm) in enumerate(checked.items()):
        images.append(_confusion_panel(axes[i], cm, [str(c) for c in labels], unit, i % ncols == 0))
        axes[i].set_title(textwrap.fill(str(name), 28), fontsize=8.5)
    for ax in axes[len(checked):]:
        ax.set_visible(False)
    bar = fig.colorbar(images[0], ax=axes.tolist(), fraction=0.04, pad=0.02, shrink=0.8 if nrows > 1 else 1.0)
    bar.set_label(f"Rate (fraction of the true class); cells: count ({unit}) and rate", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
