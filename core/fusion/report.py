"""The fusion section of `cardio fuse`'s report: which modalities each patient had, what fusion adds over each
single modality (NRI, IDI), the fusion models' weights, and the decision curve against the guideline rule."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from cardio.data import Predictions, Section

if TYPE_CHECKING:
    from cardio.context import RunContext
    from cardio.fusion.fuse import Modality

FUSED, GUIDELINE, CLINICAL = "fused", "guideline", "clinical"


def _added_value(pred: pd.DataFrame, singles: list[str], cfg: dict, seed: int) -> list[dict]:
    """NRI and IDI of the fused risk over each single model's, on the patients both scored."""
    from cardio.stats import reclassification

    wide = pred.pivot_table(index="patient_id", columns="model", values="y_score")
    y = pred.drop_duplicates("patient_id").set_index("patient_id")["y_true"]
    out = []
    for m in singles:
        both = wide[[FUSED, m]].dropna()
        for est in reclassification(y.loc[both.index].to_numpy(), both[m].to_numpy(), both[FUSED].to_numpy(),
                                    level=cfg["stats"]["level"], n_resamples=cfg["stats"]["n_resamples"], seed=seed):
            out.append({**est.to_dict(), "model": FUSED, "task": str(cfg["label"]), "fold": "pooled",
                        "extra": {**est.extra, "over": m}})
    return out


def _value_table(estimates: list[dict], level: int) -> pd.DataFrame:
    rows: dict[str, dict] = {}
    for e in estimates:
        row = rows.setdefault(e["extra"]["over"], {"fused over": e["extra"]["over"], "n": e["n"]})
        row[f"{e['metric'].upper()} [{level}% CI]"] = (f"{e['estimate']:+.3f} [{e['ci_low']:+.3f}, "
                                                      f"{e['ci_high']:+.3f}]")
    return pd.DataFrame(list(rows.values()))


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
            + "NRI is category-free; NRI and IDI compare the fused risk with each single "
            f"model's on the patients both scored, with {level}% bootstrap intervals over patients. "
            "Read the paired ΔAUC and the IDI first: the category-free NRI can be positive when what is added "
            "carries nothing, even on held-out patients (Pepe et al., Stat Biosci 2015), as cardio's neutral "
            "synthetic setting shows (README, Several modalities).")
    tables = {"patients per modality combination": combos,
              "what fusion adds (NRI, IDI)": _value_table(estimates, level),
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
