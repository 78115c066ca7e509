"""The fusion section of `cardio fuse`'s report: which modalities each patient had, what fusion adds over each
single modality (IDI; the category-free NRI in metrics.json only), the fusion models' weights, and the decision
curve against the guideline rule."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cardio.data import Predictions, Section

if TYPE_CHECKING:
    from cardio.context import RunContext
    from cardio_fusion.modality import Modality

FUSED, GUIDELINE, CLINICAL = "fused", "guideline", "clinical"


def _added_value(pred: pd.DataFrame, singles: list[str], cfg: dict, seed: int) -> list[dict]:
    """IDI and category-free NRI of the fused risk over each single model's, on the patients both scored: with K
    outer folds the cross-validated values (the mean of the per-fold values, no interval: cardio_stats.cv_metrics
    says why), with one that split's risks' t interval (cardio_stats.reclassification)."""
    from cardio_stats import cv_reclassification, reclassification

    wide = pred.pivot_table(index="patient_id", columns="model", values="y_score")
    first = pred.drop_duplicates("patient_id").set_index("patient_id")
    y, fold = first["y_true"], first["fold"].astype(str)
    level = cfg["stats"]["level"]
    out = []
    for m in singles:
        both = wide[[FUSED, m]].dropna()
        args = (y.loc[both.index].to_numpy(), both[m].to_numpy(), both[FUSED].to_numpy())
        folds = fold.loc[both.index].to_numpy()
        found = (cv_reclassification(*args, folds, groups=both.index.to_numpy(), level=level)
                 if len(set(folds)) > 1 else
                 reclassification(*args, level=level, n_resamples=cfg["stats"]["n_resamples"], seed=seed))
        for est in found:
            extra = {**est.extra, "over": m, **({"headline": False} if est.metric == "nri" else {})}
            out.append({**est.to_dict(), "model": FUSED, "task": str(cfg["label"]), "fold": "pooled", "extra": extra})
    return out


def _value_table(estimates: list[dict], level: int) -> pd.DataFrame:
    """The IDI of the fused risk over each single model's (the category-free NRI stays in metrics.json only)."""
    rows = []
    for e in (e for e in estimates if e["metric"] == "idi"):
        interval = e["ci_low"] is not None
        head = f"IDI [{level}% CI]" if interval else "IDI, cross-validated (no interval)"
        rows.append({"fused over": e["extra"]["over"], "n": e["n"], head: f"{e['estimate']:+.3f}"
                     + (f" [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]" if interval else "")})
    return pd.DataFrame(rows)


def fusion_section(mods: list[Modality], predictions: Predictions, coefs: list[list[dict]], cfg: dict,
                   ctx: RunContext) -> Section:
    """What the report says about the fusion itself (the performance section before it has every AUC and test)."""
    pred = predictions.table
    names = [m.name for m in mods]
    fused = pred[pred["model"] == FUSED]
    combos = fused["modalities"].value_counts().rename_axis("modalities").reset_index(name="patients")
    n_all = int((fused["modalities"] == "+".join(names)).sum())
    singles = [m for m in [*names, CLINICAL] if m in set(pred["model"])]
    estimates = _added_value(pred[pred["model"] != GUIDELINE], singles, cfg, ctx.seed)
    level = int(round(cfg["stats"]["level"] * 100))
    k = int(mods[0].config["cv"].get("inner_folds") or 0)
    runs = "; ".join(f"{m.name}: model {m.model} of {m.run.name} ({m.plugin})" for m in mods)
    text = (f"Fused {len(mods)} runs ({runs}). Each outer fold's fusion model is a logistic regression on the "
            "modalities' logit scores (each z-scored within the set one model scored, without labels, so that "
            "fold-to-fold shifts of a model's scores do not count as signal), each modality's weight constrained to "
            "be >= 0 (a modality that carries nothing gets weight 0, not a sign fitted to noise), fitted on the "
            f"{k} inner folds' out-of-fold scores of that fold's training "
            "patients only, then applied to the outer scores of its test patients: no test label reaches the "
            "fused score (nested stacking; a stacker on pooled out-of-fold scores would leak). Each single-"
            "modality row is that modality's score recalibrated by the same nested model. "
            + (f"All {len(fused)} patients had every modality. " if n_all == len(fused) else
               f"{n_all} of {len(fused)} patients had every modality; the others were fused from the modalities "
               "they had (table below). ")
            + "The IDI (integrated discrimination improvement: the gain in mean risk among responders minus the gain "
            "among non-responders) compares the fused risk with each single model's on the patients both scored, "
            "within each outer fold, averaged over the folds. It carries no interval: the folds' IDIs move together "
            "(every fold's models learn from the same patients), which one run cannot measure, and the fold-level "
            "interval missed 12.6-16.0% of simulated data sets with signal (docs/statistics.md); the paired ΔAUC in "
            "the model comparisons carries the comparison's interval. The category-free NRI is in metrics.json only: "
            "it is positive when what is added carries nothing, even on held-out patients (Pepe et al., Stat Biosci "
            "2015).")
    if any(e["metric"] == "idi" and e["ci_low"] is not None for e in estimates):
        text += (" This fusion has one outer split: its IDI is that split's, with a t interval (patients the units), "
                 "which counts the patients scored, not training variability.")
    tables = {"patients per modality combination": combos,
              "what fusion adds (IDI)": _value_table(estimates, level),
              "fusion model weights (standardized log-odds per SD), per fold": pd.DataFrame(
                  [c for fold in coefs for c in fold]).fillna("")}
    # the performance section draws the models' decision curve; this one adds the guideline rule beside them
    figures = [_decision_curve(pred, names, cfg, ctx)] if GUIDELINE in set(pred["model"]) else []
    return Section("Fusion", text, figures, tables, estimates)


def _decision_curve(pred: pd.DataFrame, names: list[str], cfg: dict, ctx: RunContext):
    """Net benefit of the fused risk, each modality's and the guideline rule's, against treat-all and none."""
    shown = [m for m in [FUSED, *names, CLINICAL, GUIDELINE] if m in set(pred["model"])]
    wide = pred[pred["model"].isin(shown)].pivot_table(index="patient_id", columns="model", values="y_score")
    wide = wide[shown].dropna()
    y = pred.drop_duplicates("patient_id").set_index("patient_id").loc[wide.index, "y_true"].to_numpy()
    label = {GUIDELINE: "guideline criteria (treat if met)"}
    fig = ctx.stats.plot_decision_curve(y, {label.get(m, m): wide[m].to_numpy() for m in shown},
                                        title=f"Decision curve, {cfg['label']} ({len(y)} patients with every score)")
    return ctx.save_figure(fig, "decision_curve_fusion")
