"""What the run reports: the cross-validated analysis beside the core's out-of-fold AUCs (evaluate), and
the phase bull's-eyes, histograms and the decoder's view of the chosen AE feature (explain)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import Cohort, CoreSettings, Features, Predictions, Section
from cardio_report.figures import Figure, subplots
from cardio_spect_polar import phase_figures
from cardio_spect_polar.analysis import (
    MODEL_NAMES,
    held_out_incremental_value,
    reference_model,
)
from cardio_spect_polar.phase import circular_mean_deg
from cardio_spect_polar.pipeline import PhaseAEModel, fold_selection_table
from cardio_spect_polar.settings import SpectSettings, Synthetic
from cardio_stats.figures import colour

# Issue 56: the phase analysis follows ECTb's published method but was never compared with ECTb's output
NOT_ECTB = ("\n\n**PSD and PBW are this implementation's, not the Emory tools'.** The phase analysis follows the "
            "published method of the Emory Cardiac Toolbox the paper used (Chen et al. 2005), but has never been run "
            "beside it on the same scans, and programs implementing that method differ (normal PSD 5.3-11.5° across "
            "four of them: Nakajima et al. 2017). These PSD and PBW may not equal ECTb's, and the 43° (PSD) and 135° "
            "(PBW) cut-offs set on ECTb's values may not carry over: the models here use PSD and PBW as continuous "
            "variables, never at those cut-offs (plugin README, \"Phase analysis and the Emory tools\").")


# The held-out LR test of K fold models' scores (analysis.held_out_incremental_value), measured by
# benchmarks/held_out_lr.py (docs/statistics.md)
HELD_OUT_FOLDS = (
    ". The scores come from K fold models, each fitted on another training set, which one model's test ignores: read "
    "as one model's, it rejected 7.4-12.6% of simulated data sets whose AE score added nothing (alpha 0.05; 103 and "
    "300 patients). With 5 folds or more the LR statistic is therefore halved (column fold_factor: the variance factor "
    "of the cross-validated AUC's fold-DeLong interval), which rejected 1.0-2.2% of them; with fewer folds no p-value "
    "is given. The ORs per SD are printed without an interval: Wald's with that factor missed a planted OR from below "
    "in 6.6% of data sets at 103 patients (docs/statistics.md)")


def evaluate_sections(predictions: Predictions, cohort: Cohort, features: Features, config: dict,
                      model_facts: dict[str, dict], save_figure: Callable[..., Path] | None = None) -> list[Section]:
    """The cross-validated counterpart of the paper's analysis beside the core's performance section: the held-out
    incremental value and the variables each fold chose. The paper's in-sample replication is the add-on
    spect_polar_in_sample (in_sample.py)."""
    s = SpectSettings.of(config)
    a = s.analysis
    level = CoreSettings.of(config).stats.level
    labelled = features.table[features.label].notna().to_numpy()
    scored = predictions.table[np.isfinite(predictions.table["y_true"].to_numpy(dtype=float))]
    reference = reference_model(config, features.label)
    held_out = held_out_incremental_value(scored, features.label, level=level, reference=reference)
    selection = fold_selection_table(model_facts)
    n_forced = int(selection["ae_forced"].sum()) if "ae_forced" in selection.columns else 0
    n_firth = int((selection["firth"] != "-").sum()) if "firth" in selection.columns else 0
    # a holdout (cv.method holdout, external, predefined) has one training part and one test part, not folds
    one = scored["fold"].nunique() == 1
    head, train, test, auc, where = (("on a held-out test part", "Inside the training part", "the test part",
                                      "test part's AUC", "the training part") if one else
                                     ("cross-validated", "Inside every training fold", "the held-out fold",
                                      "out-of-fold AUC", "each training fold"))
    text = (
        f"**The same pipeline, {head}.** {train} the autoencoder was trained on the "
        "training patients' phase maps only, the univariate screen chose clinical variables (p < "
        f"{a.p_enter}) and AE features (p < {a.p_significant}, at most {a.max_ae_features}) on those "
        f"patients only, and the logistic models were fitted on them; {test} was then scored. The "
        f"{auc} is the honest estimate of how the method predicts response in new patients; it, its "
        f"{level:.0%} interval and the paired DeLong tests of the models are the performance section's. "
        + ("The paper's in-sample replication and its optimism are the add-on section 'the paper's analysis "
           "(in-sample, explanatory)'. " if s.in_sample_analysis else
           "The paper's in-sample replication is not part of this run (spect_polar.in_sample_analysis: false; "
           "`--set profile=paper` adds it through the add-on spect_polar_in_sample, labelled in-sample). ")
        + f"The variables chosen {'in the training part' if one else 'in each fold'} are listed below"
        + (f" ({n_forced} fold(s) had no AE feature reach p < {a.p_significant}; there the single best AE "
           "feature entered anyway, column ae_forced)." if n_forced else ".")
        + (f" In {n_firth} of {len(selection)} fold(s) the training patients separated the outcome for some models "
           "(column firth): those were fitted by Firth's penalized logistic regression (finite estimates; "
           f"spect_polar.analysis.logistic: {a.logistic}), the others by maximum likelihood." if n_firth else
           f" Every model was fitted by maximum likelihood (spect_polar.analysis.logistic: {a.logistic}).")
        + " The held-out incremental-value table is this plugin's own analysis, the held-out counterpart of "
        "the in-sample LR test and ORs: response regressed on the held-out scores' log-odds (per SD)"
        + (f", with {level:.0%} Wald intervals. One model scored the test part: its LR test and intervals are one "
           "model's." if one else ", per CV repeat" + HELD_OUT_FOLDS + ".")
        + " Every number in this section is valid under selection.")
    text += _reference_text(reference)
    text += NOT_ECTB
    text += _cohort_text(features, labelled)
    text += _orientation_text(features.table)
    excluded = list(features.stage.esv_excluded)
    min_esv = s.min_esv_ml
    if min_esv is not None:
        text += (f"\n\n**Outlier exclusion** (spect_polar.min_esv_ml = {min_esv:g} ml, He et al.'s step): "
                 f"{len(excluded)} patient(s) with a baseline ESV below it were excluded before any analysis"
                 + (f" ({', '.join(excluded)})" if excluded else "")
                 + f"; {features.table['patient_id'].nunique()} analysed.")
    planted = cohort.planted_effects(lambda: _synthetic_text(s.synthetic))
    if planted:
        text += "\n\n" + planted
    figure = incremental_figure(held_out, reference or "clinical+ae", save_figure)
    shown = held_out if one or held_out.empty else held_out.drop(columns="or_reference_ci")  # HELD_OUT_FOLDS
    title = "SPECT phase autoencoder: " + ("held-out test part" if one else "cross-validated (out-of-fold)")
    return [Section(title=title, text=text,
                    figures=[figure] if figure is not None else [],
                    tables={f"Held-out incremental value of the {reference or 'clinical+ae'} score "
                            "(out-of-fold LR test, OR per SD, Holm)": shown,
                            f"Variables chosen inside {where}": selection})]


def incremental_figure(held_out: pd.DataFrame, reference: str,
                       save_figure: Callable[..., Path] | None) -> Path | None:
    """The paper's Figure 3 from the held-out scores: per comparison, the chi-square of the model on the other
    score alone and with the reference's score added, the increment's LR chi-square and its Holm p (repeat 0)."""
    if save_figure is None or held_out.empty:
        return None
    rows = held_out[held_out["status"].str.startswith("estimated")
                    & (held_out["repeat"] == held_out["repeat"].min())]
    if rows.empty:
        return None
    fig, ax = subplots(figsize=(2.6 + 2.2 * len(rows), 4.4), layout="constrained")
    x = np.arange(len(rows))
    for k, (col, name) in enumerate((("chi2_other", "the other model's score"),
                                     ("chi2_with_reference", f"+ the {reference} score"))):
        ax.bar(x + (k - 0.5) * 0.38, rows[col].astype(float), width=0.36, color=colour(k), label=name)
    for xi, (_, r) in zip(x, rows.iterrows()):
        top = float(r["chi2_with_reference"])
        p = "no p (fewer than 5 folds)" if r["p_value"] == "" else \
            f"p {float(r['p_value']):.3g} (Holm {float(r['p_holm']):.3g})"
        scaled = "" if r["fold_factor"] in ("", 1.0) else f" (÷ {float(r['fold_factor']):g}: the fold models)"
        ax.annotate(f"Δχ² {float(r['lr_chi2']):.2f}{scaled}\n{p}",
                    (xi + 0.19, top), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(x, [str(c).split(" added to ")[-1].removesuffix(" score") for c in rows["comparison"]])
    ax.set(ylabel="model χ² against intercept only (LR, df 1-2)", xlabel="model of the held-out score",
           title=f"Incremental value of the {reference} score (out-of-fold; the paper's Figure 3)")
    ax.set_ylim(0, float(rows["chi2_with_reference"].astype(float).max()) * 1.3 + 1)
    ax.set_xlim(-0.75, len(rows) - 0.25)  # room for the last annotation
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, "spect_incremental_value", caption=(
        f"The paper's Figure 3, out-of-fold: for each comparison model, the likelihood-ratio χ² of response on that "
        f"model's held-out score, then with the held-out {reference} score added; above each pair the increment's "
        "LR χ² (1 df) with its p and Holm's p (the held-out incremental-value table: p from the χ² divided by its "
        "fold_factor). Each score was made by models that never saw the patient's label, so the increment is valid "
        "under the selection inside each fold."))


def _synthetic_text(syn: Synthetic) -> str:
    """The planted truth of the synthetic cohort, stated in the report."""
    from cardio_spect_polar.cohort import response_coef

    c = response_coef(dict(syn.truth))
    return ("**Synthetic truth** (spect_polar.synthetic.truth): response ~ Bernoulli(logistic(" + " + ".join(
        f"{v:g}" + ("" if k == "intercept" else f" x {k}") for k, v in c.items()) + ")), where late_lateral = "
        "cos(angle of the latest zone to the posterolateral wall) x dyssynchrony / (dyssynchrony + 60) (a "
        "spatial effect PSD/PBW cannot see), dyssynchrony_per_sd = the global dyssynchrony magnitude in SDs "
        "of 45 degrees (what PSD/PBW measure), and the clinical terms are centred on the cohort means."
        + (f" {syn.esv_outliers} patient(s) were given an artefactual SPECT ESV of 12-18 ml "
           "(spect_polar.synthetic.esv_outliers)." if syn.esv_outliers else "")
        + " Synthetic results check the pipeline; they are not evidence for the paper's claim"
        + (" (this is the neutral setting: late_lateral 0, no planted AE advantage)." if c["late_lateral"] == 0
           else " (the AE's advantage is planted; `--set profile=neutral` removes it)."))


def _reference_text(reference: str | None) -> str:
    """Which comparisons were fixed in the config before the results, and which are exploratory."""
    if reference is None:
        return ("\n\n**No pre-specified reference** (stats.reference is null): every paired comparison, here and "
                "in the performance section, is exploratory; the paper's claim is clinical+ae against clinical+psd.")
    others = ", ".join(m for m in MODEL_NAMES if m != reference)
    return (f"\n\n**Pre-specified reference: {reference}** (stats.reference, fixed in the config before any result "
            f"was seen; He et al.'s claim is clinical+ae against clinical+psd). Its paired ΔAUC tests against "
            f"{others} in the performance section are the confirmatory family (Holm-adjusted within it); its "
            "held-out LR tests here are a secondary family, Holm-adjusted within their own; any other pair, and any "
            "comparison with whichever model scored best on these data, is exploratory.")


def _orientation_text(table) -> str:
    """How each scan's apex, base and walls were placed: from its header, or assumed (and which)."""
    if "orientation" not in table.columns:
        return ""
    counts = table["orientation"].value_counts()
    parts = [f"{n} of {len(table)} scans: {'from the DICOM header' if text == 'header' else text}"
             for text, n in counts.items()]
    return ("\n\n**Orientation** (apex-to-base slice order from the slice positions, anterior up and lateral "
            "right from the image orientation): " + "; ".join(parts) + ".")


def _cohort_text(features: Features, labelled: np.ndarray) -> str:
    """What was analysed when some scans lack a label or some patients have several scans ('' otherwise)."""
    table = features.table
    patients, scans = table["patient_id"].nunique(), len(table)
    unlabelled = table.loc[~labelled, "patient_id"].nunique()
    if not unlabelled and patients == scans:
        return ""
    return (f"\n\n**Scans and labels.** {scans} scans of {patients} patients were phase-analysed; "
            f"{unlabelled} patient(s) without a known response were analysed but neither trained on nor scored "
            "(they take part in the label-free in-sample autoencoder only). Out-of-fold scores are per patient, "
            "the mean of the patient's scans; the in-sample analysis counts every labelled scan.")


def mean_maps_figure(results: list, y: np.ndarray) -> Figure:
    """Bull's-eyes of the circular mean phase of responders and of non-responders, and of the mean perfusion."""
    maps = np.stack([r.phase_map for r in results])
    fig = Figure(figsize=(13.5, 4.2), layout="constrained")
    for k, (group, title) in enumerate(((1, "responders"), (0, "non-responders"))):
        ax = fig.add_subplot(1, 3, k + 1, projection="polar")
        phase_figures.plot_bullseye(circular_mean_deg(maps[y == group], axis=0), kind="phase", ax=ax,
                                    title=f"mean phase, {title} (n={int((y == group).sum())})")
    perf = [r.perfusion_map for r in results if r.perfusion_map is not None]
    if perf:
        ax = fig.add_subplot(1, 3, 3, projection="polar")
        phase_figures.plot_bullseye(np.mean(perf, axis=0), kind="perfusion", ax=ax, title="mean perfusion (all)")
    return fig


def decoder_view(model: PhaseAEModel, features: Features, feature: str, ctx) -> Figure:
    """How the decoded phase map changes when one AE feature moves from -2 to +2 SD (others at their mean)."""
    j = model.ae_cols.index(feature)
    train_rows = np.flatnonzero(features.table["patient_id"].astype(str).isin(set(model.ae.patients)).to_numpy())
    z = model.ae.encode(features.x[train_rows], ctx)  # raw layer-2 units, what the decoder takes
    lo, hi = z.mean(axis=0).copy(), z.mean(axis=0).copy()
    lo[j] -= 2 * z[:, j].std()
    hi[j] += 2 * z[:, j].std()
    dec = model.ae.decode(np.stack([lo, hi]), ctx)
    diff = (dec[1] - dec[0]).reshape(features.stage.grid)
    vmax = float(np.abs(diff).max()) or 1.0
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    phase_figures.plot_bullseye(diff, kind="phase", ax=ax, vmin=-vmax, vmax=vmax, cmap="RdBu_r",
                                title=f"decoder: {feature} +2 SD minus -2 SD (degrees)")
    return fig


def explain_section(model: PhaseAEModel, features: Features, index: np.ndarray, ctx) -> Section:
    """Bull's-eyes of the mean phase (responders vs non-responders) and mean perfusion, the phase
    histograms of one responder and one non-responder of the fold, and the decoder's view of the
    fold's most predictive AE feature."""
    results = features.stage.phase_results
    y = features.y.astype(float)  # NaN: no label (in neither group)
    figs = [ctx.save_figure(mean_maps_figure(results, y), "spect_bullseye_mean_phase_perfusion", caption=(
        "Bull's-eyes of the mean phase of responders and non-responders, and of the mean perfusion (circular means "
        "over all patients, descriptive)."))]
    index = np.asarray(index)
    for group, name in ((1, "responder"), (0, "non_responder")):
        rows = index[y[index] == group]
        if len(rows):
            title = f"a {name.replace('_', '-')} of the last test fold"
            figs.append(ctx.save_figure(phase_figures.plot_phase_summary(results[rows[0]], title=title),
                                        f"spect_phase_summary_{name}", caption=(
                                            f"Phase map and phase histogram of {title}, with its phase standard "
                                            "deviation (PSD) and histogram bandwidth (PBW).")))
    feature = model.response.ae_selected[0] if model.response.ae_selected else None
    text = "Mean phase maps are circular means over patients (descriptive, all patients). "
    if feature is not None:
        figs.append(ctx.save_figure(decoder_view(model, features, feature, ctx), "spect_ae_feature_decoder_view",
                                    caption=f"What autoencoder feature {feature} encodes: the decoded phase map with "
                                            "only that feature at -2 and +2 SD (the others at their training mean), "
                                            "and the difference (red: later contraction)."))
        coef = model.response.models["clinical+ae"].table.set_index("variable")
        or_txt = (f" (OR {coef.loc[feature, 'or']:.3g} per unit in the last fold's clinical+ae model)"
                  if feature in coef.index else "")
        text += (f"The last fold's most significant AE feature is {feature}{or_txt}; its decoder view shows how "
                 "the reconstructed phase map changes when only that feature moves from -2 to +2 SD (other "
                 "features at their training mean): red = later contraction.")
    return Section(title="SPECT phase maps and what the autoencoder feature encodes", text=text, figures=figs)
