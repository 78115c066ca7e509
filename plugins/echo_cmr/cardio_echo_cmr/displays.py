"""The paper's displays beside its Table 2: Table 1 (the cohort's characteristics), Figure 1 (the per-view and the
fused ROC of WMA and of LGE, one panel each) and Supplementary Figure 1 (the fused ROC of abnormal T1, T2 and ECV, and
predicted against measured T1, T2, ECV)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

import cardio_stats as stats
from cardio_echo_cmr.targets import Target
from cardio_report.figures import subplots
from cardio_stats.figures import ROC_LIMITS, colour

SaveFigure = Callable[..., Path]
#: Figure 1's two panels: the per-view target and the study-level one fused from the views.
FIGURE1 = (("wma_view", "wma", "A: wall motion abnormality"), ("lge_view", "lge", "B: scar (LGE)"))


#: The paper's Table 1 rows of baseline characteristics, in its order (cohort.BASELINE's columns), as it names them.
BASELINE_NAMES = {"age": "Age (years)", "bmi": "BMI (kg/m²)", "female": "Gender, female",
                  "hypertension": "Hypertension", "hyperlipidemia": "Hyperlipidemia", "diabetes": "Diabetes",
                  "lvef_cmr": "CMR LVEF (%)"}
#: Placed after the CMR findings, as the paper's table places the echo LVEF beside the studies.
ECHO_NAMES = {"lvef_echo": "Echocardiogram LVEF (%)"}


def _cmr_variables(targets: tuple[Target, ...], thresholds: dict, columns) -> tuple[dict, dict]:
    """({column: name} of the CMR values, {column: name} of the abnormal findings, then the global ones) the table
    has."""
    values, flags, findings = {}, {}, {}
    units = {t.source: t.unit for t in targets if not t.binary}
    for t in (t for t in targets if t.level == "study"):
        col = t.name if t.name in columns else t.source if t.source in columns else None
        if col is None:
            continue
        unit = units.get(t.source, t.unit)
        if t.binary and t.source in thresholds:
            flags[t.name] = f"{t.title} (>= {thresholds[t.source]:g}{'' if unit in ('%', '') else ' '}{unit})"
        elif t.binary:
            findings[col] = t.title
        else:
            values[col] = f"{t.title} ({unit})" if unit else t.title
    return values, {**flags, **findings}


def table1(studies: pd.DataFrame, targets: tuple[Target, ...], thresholds: dict,
           views: tuple[str, ...]) -> pd.DataFrame:
    """Table 1 as the paper's, by the statistics service's table_one (one column: the unique patients, each
    patient's first study): the baseline characteristics the cohort table gives (cohort.BASELINE), the CMR values as
    mean (SD) (median [Q1, Q3] when skewed), the abnormal and global findings as n (%), each with the patients that
    have it (N); then how many studies and patients the echo studies and each view's clips come from."""
    patients = studies.drop_duplicates("patient_id")
    values, findings = _cmr_variables(targets, thresholds, patients.columns)
    present = {c: n for c, n in {**BASELINE_NAMES, **ECHO_NAMES}.items() if c in patients and patients[c].notna().any()}
    binary = [c for c in present if set(patients[c].dropna().unique()) <= {0, 1}]
    names = {**present, **values, **findings}
    continuous = [c for c in [*present, *values] if c not in binary and c not in ECHO_NAMES]
    categorical = [*binary, *findings]
    late = [c for c in present if c in ECHO_NAMES]  # the echo LVEF, after the CMR rows as in the paper
    table = stats.table_one(patients, None, [*continuous, *late], categorical, display_names=names)
    order = [names[c] for c in [*(c for c in BASELINE_NAMES if c in names), *values, *findings, *late]]
    table = table.iloc[np.argsort([order.index(v) for v in table["variable"]], kind="stable")]
    overall = next(c for c in table.columns if c.startswith("overall"))
    shown = table["level"].where(~table["level"].isin(["1", "yes"]))
    rows = pd.DataFrame({"characteristic": table["variable"] + shown.map(lambda v: "" if pd.isna(v) else f": {v}"),
                         f"unique patients {overall.removeprefix('overall ')}": table[overall],
                         "summary": table["summary"], "N": [f"N={len(patients) - int(m)}" if pd.notna(m) else ""
                                                            for m in table["missing"]]})
    counts = [("Echo studies paired with CMR", studies)] + [
        (f"{view} videos", studies[studies[f"video_{view}"].map(len) > 0] if f"video_{view}" in studies
         else studies.iloc[:0]) for view in views]
    extra = pd.DataFrame([{"characteristic": name, rows.columns[1]: f"{len(part)} studies from "
                           f"{part['patient_id'].nunique()} patients", "summary": "studies, patients", "N": ""}
                          for name, part in counts])
    out = pd.concat([rows, extra], ignore_index=True)
    out.attrs["notes"] = table.attrs.get("notes", [])
    return out


def _roc(ax, y: np.ndarray, s: np.ndarray, label: str, color: str, width: float) -> None:
    fpr, tpr, _ = roc_curve(y, s)
    ax.plot(fpr, tpr, color=color, lw=width, label=f"{label}: AUC {roc_auc_score(y, s):.3f} (n={len(y)})")


def figure1(predictions: pd.DataFrame, views: tuple[str, ...], save: SaveFigure) -> Path | None:
    """Figure 1: per panel (WMA, LGE) the ROC of each view's network on its own segments' label, and of the
    fusion on the global label (black), on the studies that have each label. None where neither is predicted."""
    t = predictions[(predictions["kind"] == "binary") & predictions["y_true"].notna()]
    panels = [(v, g, title) for v, g, title in FIGURE1 if (t["task"] == g).any()]
    if not panels:
        return None
    fig, axes = subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False, layout="constrained")
    for ax, (per_view, fused, title) in zip(axes[0], panels):
        ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
        for i, view in enumerate(views):
            g = t[(t["model"] == f"r2plus1d-{view}") & (t["task"] == f"{per_view.removesuffix('_view')}_{view}")]
            if g["y_true"].nunique() == 2:
                _roc(ax, g["y_true"].to_numpy(), g["y_score"].to_numpy(), f"{view} (its segments)", colour(i), 1.6)
        g = t[(t["model"] == "fused") & (t["task"] == fused)]
        if g["y_true"].nunique() == 2:
            _roc(ax, g["y_true"].to_numpy(), g["y_score"].to_numpy(), "fused views (global)", "black", 2.2)
        ax.set(xlim=ROC_LIMITS, ylim=ROC_LIMITS, aspect="equal", title=title,
               xlabel="1 − specificity (false-positive rate, proportion)",
               ylabel="Sensitivity (true-positive rate, proportion)")
        ax.legend(loc="lower right", fontsize=7.5)
    fig.suptitle("Figure 1 (paper's layout): per-view and fused ROC, out-of-fold")
    return save(fig, "echo_figure1_roc_views", caption=(
        "The paper's Figure 1: in each panel the ROC of each view's network for the finding in the segments that view "
        "shows (colours), and of the three views fused for the finding anywhere (black), out-of-fold. The AUCs are "
        "the pooled point estimates; their intervals are in the performance table and Table 2."))


#: Supplementary Figure 1 (A)'s colours, as the paper's: T1 green, T2 purple, ECV orange (Okabe–Ito's).
FLAG_COLOURS = (colour(2), colour(4), colour(3))


def _flag_roc(ax, fused: pd.DataFrame, flags: list[Target]) -> None:
    """Panel A: the fused ROC of each abnormal-value flag (T1, T2, ECV at their thresholds)."""
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    for i, t in enumerate(flags):
        g = fused[(fused["task"] == t.name) & fused["y_true"].notna()]
        if g["y_true"].nunique() == 2:
            _roc(ax, g["y_true"].to_numpy(), g["y_score"].to_numpy(), t.title, FLAG_COLOURS[i % 3], 1.8)
    ax.set(xlim=ROC_LIMITS, ylim=ROC_LIMITS, aspect="equal", title="A: abnormal values, fused views",
           xlabel="1 − specificity (proportion)", ylabel="Sensitivity (proportion)")
    ax.legend(loc="lower right", fontsize=7)


def scatter_figure(predictions: pd.DataFrame, targets: tuple[Target, ...], save: SaveFigure) -> Path | None:
    """Supplementary Figure 1: (A) the fused ROC of the abnormal T1, T2 and ECV flags, (B-D) the fused prediction
    against the measured value of each continuous CMR target, with the identity line, MAE and R²; None where no
    continuous target was fused."""
    fused = predictions[(predictions["model"] == "fused") & predictions["y_true"].notna()]
    values = fused[fused["kind"] == "regression"]
    shown = [t for t in targets if not t.binary and (values["task"] == t.name).any()]
    if not shown:
        return None
    sources = {t.source for t in shown}
    flags = [t for t in targets if t.binary and t.level == "study" and t.source in sources
             and fused.loc[fused["task"] == t.name, "y_true"].nunique() == 2]
    panels = len(shown) + bool(flags)
    ncols = min(panels, 2)  # A-D two by two, as the paper's
    nrows = -(-panels // ncols)
    fig, grid = subplots(nrows, ncols, figsize=(4.8 * ncols, 4.6 * nrows), squeeze=False, layout="constrained")
    axes = list(grid.ravel())
    for ax in axes[panels:]:
        ax.set_axis_off()
    if flags:
        _flag_roc(axes[0], fused[fused["kind"] == "binary"], flags)
    for k, (ax, t) in enumerate(zip(axes[bool(flags):], shown)):
        g = values[values["task"] == t.name]
        y, p = g["y_true"].to_numpy(float), g["y_score"].to_numpy(float)
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], ls="--", color="0.6", lw=1, label="identity")
        ax.scatter(y, p, s=14, color=colour(0), alpha=0.75, edgecolors="none")
        r2 = 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)
        unit = f" ({t.unit})" if t.unit else ""
        mae = f"{np.mean(np.abs(y - p)):.2f}{'' if t.unit in ('%', '') else ' '}{t.unit}"
        ax.set(title=f"{'ABCDEFGH'[k + bool(flags)]}: {t.title}, MAE {mae}, R² {r2:.2f}",
               xlabel=f"measured {t.title}{unit}", ylabel=f"predicted {t.title}{unit}")
        ax.legend(loc="upper left", fontsize=7.5)
    fig.suptitle("Supplementary Figure 1 (paper's layout): fused views, out-of-fold")
    return save(fig, "echo_supp_figure1_scatter", caption=(
        "The paper's Supplementary Figure 1: (A) the ROC of the three views fused for abnormal native T1, T2 and ECV "
        "at the configured cut-offs; (B-D) the fused prediction of each continuous CMR value against the measured "
        "one, out-of-fold, one point per study, with the identity line. AUC, MAE and R² are the pooled point "
        "estimates (the estimates a report states, with their intervals: Table 2 and the agreement table)."))
