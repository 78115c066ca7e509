"""He et al.'s statistical analysis of AE-based dyssynchrony parameters, and its cross-validated twin.

`fit_response_models` is the one recipe: univariate logistic screen of the clinical variables
and the AE features, then multivariate logistic models (clinical variables with p < p_enter plus
PSD, plus PBW, plus the AE features that pass the screen). `paper_analysis` runs it on the whole
cohort, as the paper did (in-sample, explanatory); the plugin's train/predict hooks run the very
same recipe inside each training fold (out-of-fold, honest). All numbers come from cardio.stats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cardio import stats  # noqa: E402
from cardio.data import CardioError, Predictions, Section  # noqa: E402
from cardio.data import Cohort, Features  # noqa: E402
from cardio_spect_polar import bullseye  # noqa: E402
from cardio_spect_polar import cohort as spect_cohort  # noqa: E402
from cardio_spect_polar.autoencoder import FittedAutoencoder, feature_names, fit_autoencoder  # noqa: E402
from cardio_spect_polar.phase import circular_mean_deg  # noqa: E402

CONVENTIONAL = ("psd", "pbw")
MODEL_NAMES = ("clinical+ae", "clinical+psd", "clinical+pbw")
# Nested pairs for the likelihood-ratio tests of the paper: does adding AE features to
# clinical + PSD (or + PBW) improve the fit?
NESTED = {"clinical+psd": "clinical+psd+ae", "clinical+pbw": "clinical+pbw+ae"}

LABELS = {"age": "Age", "sex": "Male sex", "qrs_ms": "QRS duration", "lvef": "LVEF", "edv": "EDV", "esv": "ESV",
          "scar_burden": "Scar burden", "nyha": "NYHA class", "cad": "CAD", "ckd": "CKD", "acei_arb": "ACEI/ARB",
          "ischemia": "Ischemia", "smoking": "Smoking", "psd": "PSD", "pbw": "PBW", "entropy": "Phase entropy"}


@dataclass
class FittedResponseModels:
    """What one application of the recipe fitted, and on which patients (for leak checks)."""

    screen: pd.DataFrame
    clinical_selected: list[str]
    ae_selected: list[str]
    ae_forced: bool
    variables: dict[str, list[str]]
    models: dict
    thresholds: dict[str, float]
    patients: list[str] = field(default_factory=list)

    def predict(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        return {name: np.asarray(m.predict_proba(df), dtype=float) for name, m in self.models.items()}


def _require(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CardioError(f"{what}: the table lacks column(s) {missing}")
    bad = [c for c in cols if not np.isfinite(pd.to_numeric(df[c], errors="coerce")).all()]
    if bad:
        raise CardioError(f"{what}: column(s) {bad} hold missing or non-numeric values")


def _p_column(screen: pd.DataFrame) -> pd.Series:
    return screen.set_index("variable")["p_value"].astype(float)


def fit_response_models(df: pd.DataFrame, outcome: str, clinical: list[str], ae_cols: list[str], *,
                        p_enter: float = 0.1, p_ae: float = 0.05, max_ae: int = 1,
                        patient_col: str = "patient_id") -> FittedResponseModels:
    """Univariate screen, then the multivariate models of the paper, on the rows of df only.

    AE features enter when univariate p < p_ae (the paper's "significant"), the most significant
    `max_ae` of them (the paper fits AE #30 alone because AE features are collinear). When none
    passes, the single best AE feature enters anyway (``ae_forced``) so that every fold has a
    clinical + AE model; the report says how often that happened.
    """
    variables_all = list(clinical) + list(CONVENTIONAL) + list(ae_cols)
    _require(df, variables_all + [outcome], "response models")
    screen = stats.univariate_screen(df, outcome, variables_all)
    p = _p_column(screen)
    clin = [v for v in clinical if p.get(v, 1.0) < p_enter]
    ae_p = p.reindex(ae_cols).sort_values(kind="stable")
    ae = [v for v in ae_p.index if ae_p[v] < p_ae][:max_ae]
    forced = not ae
    if forced:
        ae = list(ae_p.index[:1])
    variables = {
        "clinical+ae": clin + ae,
        "clinical+psd": clin + ["psd"],
        "clinical+pbw": clin + ["pbw"],
        "clinical+psd+ae": clin + ["psd"] + ae,
        "clinical+pbw+ae": clin + ["pbw"] + ae,
    }
    models, thresholds = {}, {}
    y = df[outcome].to_numpy()
    for name, cols in variables.items():
        m = _fit_dropping_clinical(df, outcome, cols, clin, p)
        variables[name] = list(m.variables)
        models[name] = m
        thresholds[name] = float(stats.youden_threshold(y, m.predict_proba(df)))
    patients = df[patient_col].astype(str).tolist() if patient_col in df.columns else []
    return FittedResponseModels(screen, clin, ae, forced, variables, models, thresholds, patients)


def _fit_dropping_clinical(df: pd.DataFrame, outcome: str, cols: list[str], clinical: list[str], p: pd.Series):
    """fit_logistic; when the model is not estimable (separation, collinearity), drop the least
    significant clinical variable and refit, so that one bad fold does not stop a study."""
    cols = list(cols)
    while True:
        try:
            return stats.fit_logistic(df, outcome, cols)
        except stats.EstimationError as exc:
            droppable = [c for c in cols if c in clinical]
            if not droppable:
                raise CardioError(f"logistic model {cols} is not estimable on {len(df)} patients: {exc}") from None
            cols.remove(max(droppable, key=lambda c: p.get(c, 1.0)))


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def correlation_heatmap(r: pd.DataFrame, p: pd.DataFrame, path: Path, title: str) -> Path:
    """Pearson r of the significant AE features with PSD and PBW, p-values in the cells."""
    rows = [c for c in r.index if c not in CONVENTIONAL]
    cols = [c for c in CONVENTIONAL if c in r.columns]
    sub_r, sub_p = r.loc[rows, cols], p.loc[rows, cols]
    fig, ax = plt.subplots(figsize=(1.8 + 1.3 * len(cols), 1.2 + 0.45 * len(rows)))
    im = ax.imshow(sub_r.to_numpy(dtype=float), cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{sub_r.iat[i, j]:.2f}\np={sub_p.iat[i, j]:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), [LABELS.get(c, c) for c in cols])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="Pearson r")
    return _save(fig, path)


def _label_table(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    if "variable" in out.columns:
        out.insert(1, "label", [LABELS.get(v, v) for v in out["variable"]])
    return out


def _model_table(fitted: FittedResponseModels, name: str) -> pd.DataFrame:
    t = fitted.models[name].table.drop(columns=["coef", "se"], errors="ignore")
    t = t.reset_index() if "variable" not in t.columns else t
    t.insert(0, "model", name)
    return t


@dataclass
class InSampleResult:
    section: Section
    fitted: FittedResponseModels
    aucs: dict[str, dict]
    lr_tests: dict[str, dict]
    scores: dict[str, np.ndarray]


def paper_analysis(df: pd.DataFrame, outcome: str, clinical: list[str], categorical: list[str],
                   ae_cols: list[str], cfg: dict, figure_path: Callable[[str], Path],
                   level: float = 0.95) -> InSampleResult:
    """The paper's analysis on every patient: Table 1, univariate and multivariate logistic
    regression, correlation with PSD/PBW, ROC of the three models and likelihood-ratio tests.

    The AE was trained on these same patients and the variables were chosen on them: every
    number here is in-sample and describes associations, not predictive performance.
    """
    fitted = fit_response_models(df, outcome, clinical, ae_cols, p_enter=float(cfg["p_enter"]),
                                 p_ae=float(cfg["p_significant"]), max_ae=int(cfg["max_ae_features"]))
    y = df[outcome].to_numpy()
    continuous = [c for c in clinical + list(CONVENTIONAL) if c not in categorical]
    table1 = stats.table_one(df, outcome, continuous, [c for c in categorical if c in clinical])

    screen = _label_table(fitted.screen).drop(columns=["coef", "se"], errors="ignore")
    p = _p_column(fitted.screen)
    sig_ae = [c for c in ae_cols if p[c] < float(cfg["p_significant"])]
    forest_rows = screen[screen["variable"].isin(clinical + list(CONVENTIONAL))
                         | (screen["variable"].isin(ae_cols) & (screen["p_value"] < float(cfg["p_enter"])))]
    forest = stats.plot_forest(forest_rows.assign(variable=forest_rows["label"]))
    forest.axes[0].set_title("Univariate logistic regression, in-sample (OR per unit; AE per SD)", fontsize=9)
    figures = [_save(forest, figure_path("spect_univariate_forest"))]

    corr_ae = sig_ae or fitted.ae_selected
    r, rp = stats.correlation_matrix(df, corr_ae + list(CONVENTIONAL), "pearson")
    figures.append(correlation_heatmap(r, rp, figure_path("spect_ae_correlation"),
                                       "Pearson correlation: AE features vs PSD/PBW (in-sample)"))
    scores = {name: fitted.models[name].predict_proba(df) for name in fitted.models}
    roc = stats.plot_roc({n: (y, scores[n]) for n in MODEL_NAMES},
                         title="ROC, in-sample (apparent) fit of the paper's models")
    figures.append(_save(roc, figure_path("spect_roc_in_sample")))

    aucs = {}
    for name in fitted.models:
        est = stats.delong_ci(y, scores[name], level=level)
        d = est.to_dict()
        d.update(metric=f"in-sample AUC {name}", model=name)
        aucs[name] = d
    lr_tests = {}
    for reduced, full in NESTED.items():
        try:
            t = stats.likelihood_ratio_test(fitted.models[reduced], fitted.models[full]).to_dict()
        except stats.StatsError as exc:  # a clinical variable had to be dropped from one model only
            t = {"statistic": None, "p_value": None, "df": None, "warnings": [str(exc)]}
        t.update(name=f"LR test: {full} vs {reduced} (in-sample)")
        lr_tests[full] = t

    multivariate = pd.concat([_model_table(fitted, n) for n in fitted.variables], ignore_index=True)
    ae_rows = [c for c in r.index if c not in CONVENTIONAL]
    corr_table = r.loc[ae_rows, list(CONVENTIONAL)].add_prefix("r_").join(
        rp.loc[ae_rows, list(CONVENTIONAL)].add_prefix("p_")).rename_axis("ae_feature").reset_index()
    auc_rows = pd.DataFrame([{"model": n, "variables": ", ".join(fitted.variables[n]), "auc": aucs[n]["estimate"],
                              "ci_low": aucs[n]["ci_low"], "ci_high": aucs[n]["ci_high"]} for n in fitted.variables])
    lr_rows = pd.DataFrame([{"reduced": red, "full": full, "lr_chi2": lr_tests[full]["statistic"],
                             "df": lr_tests[full]["df"], "p_value": lr_tests[full]["p_value"]}
                            for red, full in NESTED.items()])
    n_pos = int(np.sum(y == 1))
    text = (
        "**In-sample, explanatory analysis (as in He et al.).** The autoencoder was trained on all "
        f"{len(df)} phase polar maps and the variables were selected on the same {len(df)} patients "
        f"({n_pos} responders); the AUCs below are therefore optimistic and describe association, not "
        "prediction. The honest, cross-validated estimate of the same pipeline is in the next section.\n\n"
        f"Clinical variables with univariate p < {cfg['p_enter']}: "
        f"{', '.join(LABELS.get(v, v) for v in fitted.clinical_selected) or 'none'}. "
        f"AE features with univariate p < {cfg['p_significant']}: {', '.join(sig_ae) or 'none'}"
        + (f"; none passed, so the best AE feature ({fitted.ae_selected[0]}) entered the AE model."
           if fitted.ae_forced else f"; entering the multivariate model: {', '.join(fitted.ae_selected)}.")
        + "\n\nLikelihood-ratio tests of the AE features' incremental value: "
        + "; ".join(f"{full} vs {red}: " + _lr_text(lr_tests[full]) for red, full in NESTED.items()) + "."
    )
    section = Section(
        title="SPECT phase autoencoder: the paper's analysis (in-sample, explanatory)",
        text=text, figures=figures,
        tables={"Table 1 by responder status (in-sample)": table1,
                "Univariate logistic regression (in-sample)": screen,
                "Multivariate logistic models (in-sample)": multivariate,
                "Pearson correlation of significant AE features with PSD/PBW (in-sample)": corr_table,
                "In-sample AUC of the multivariate models": auc_rows,
                "Likelihood-ratio tests (in-sample)": lr_rows},
        estimates=list(aucs.values()), tests=list(lr_tests.values()))
    return InSampleResult(section, fitted, aucs, lr_tests, scores)


def _lr_text(t: dict) -> str:
    if t["statistic"] is None:
        return "not nested, not tested"
    return f"chi2 = {t['statistic']:.2f}, p = {t['p_value']:.3g}"


def in_sample_vs_out_of_fold(pred_table: pd.DataFrame, insample_aucs: dict[str, dict], task: str,
                             level: float = 0.95) -> tuple[pd.DataFrame, list[dict]]:
    """Side by side: the in-sample AUC of each model and the pooled out-of-fold AUC of the same
    recipe refitted inside every training fold (DeLong CIs for both)."""
    rows, estimates = [], []
    for name in MODEL_NAMES:
        sub = pred_table[(pred_table["model"] == name) & (pred_table["task"] == task)]
        if sub.empty:
            continue
        oof = stats.delong_ci(sub["y_true"].to_numpy(), sub["y_score"].to_numpy(), level=level)
        d = oof.to_dict()
        d.update(metric=f"out-of-fold AUC {name}", model=name)
        estimates.append(d)
        ins = insample_aucs.get(name, {})
        rows.append({"model": name,
                     "in_sample_auc": ins.get("estimate"), "in_sample_ci": _ci(ins.get("ci_low"), ins.get("ci_high")),
                     "out_of_fold_auc": d["estimate"], "out_of_fold_ci": _ci(d["ci_low"], d["ci_high"]),
                     "optimism": (ins["estimate"] - d["estimate"]) if ins.get("estimate") is not None
                     and d["estimate"] is not None else None,
                     "n_out_of_fold": int(len(sub)),
                     "folds": int(sub["fold"].nunique()) if "fold" in sub.columns else None})
    return pd.DataFrame(rows), estimates


def _ci(lo, hi) -> str:
    return "" if lo is None or hi is None else f"{lo:.3f}-{hi:.3f}"


# --------------------------------------------------------------------------- the cross-validated pipeline

@dataclass
class PhaseAEModel:
    """One training fold's fit: the AE (unsupervised) and the response models on its features."""

    ae: FittedAutoencoder
    response: FittedResponseModels
    ae_cols: list[str]
    outcome: str


def with_ae_features(table: pd.DataFrame, z: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
    cols = feature_names(z.shape[1])
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(z, columns=cols)], axis=1), cols


def fit_phase_pipeline(features, rows: np.ndarray, config: dict, ctx, name: str = "ae") -> PhaseAEModel:
    """AE on the phase maps of `rows`, then the univariate screen and the logistic models on the
    same rows. Called by cardio_train with the training fold, and once on every patient for the
    in-sample analysis."""
    rows = np.asarray(rows)
    table = features.table.iloc[rows]
    cfg = config["analysis"]
    ae = fit_autoencoder(features.x[rows], table["patient_id"], config["autoencoder"], ctx, name=name)
    df, cols = with_ae_features(table, ae.transform(features.x[rows], ctx))
    response = fit_response_models(df, features.label, list(cfg["clinical"]), cols, p_enter=float(cfg["p_enter"]),
                                   p_ae=float(cfg["p_significant"]), max_ae=int(cfg["max_ae_features"]))
    return PhaseAEModel(ae, response, cols, features.label)


def predict_phase_pipeline(model: PhaseAEModel, features, rows: np.ndarray, ctx) -> Predictions:
    """Scores of the three models on `rows` (the test fold), with the fold's Youden thresholds."""
    rows = np.asarray(rows)
    table = features.table.iloc[rows]
    df, _ = with_ae_features(table, model.ae.transform(features.x[rows], ctx))
    scores = model.response.predict(df)
    return Predictions.concat([
        Predictions.from_arrays(table["record_id"], table["patient_id"], table[model.outcome], scores[name],
                                model=name, task=model.outcome, kind="binary",
                                threshold=model.response.thresholds[name],
                                variables="+".join(model.response.variables[name]),
                                ae_forced=int(model.response.ae_forced and "ae" in name.split("+")))
        for name in MODEL_NAMES])


def fold_selection_table(pred_table: pd.DataFrame) -> pd.DataFrame:
    """Which variables each fold's models used (chosen on that fold's training rows)."""
    if "variables" not in pred_table.columns or "fold" not in pred_table.columns:
        return pd.DataFrame()
    sel = pred_table.drop_duplicates(["fold", "model"])[["fold", "model", "variables"]]
    out = sel.pivot(index="fold", columns="model", values="variables").reset_index()
    if "ae_forced" in pred_table.columns:
        forced = pred_table[pred_table["model"] == "clinical+ae"].groupby("fold")["ae_forced"].max()
        out["ae_forced"] = out["fold"].map(forced).fillna(0).astype(int)
    return out


# --------------------------------------------------------------------------- stages of task phase_ae

PHASE_COLUMNS = ("psd", "pbw", "entropy", "peak")


def add_phase_analysis(cohort: Cohort, cfg: dict, ctx) -> Cohort:
    """Phase analysis of every volume (or summary of every ready phase map): PSD, PBW, entropy,
    peak and the 17 segment phases join the cohort table; the maps go to cohort.meta."""
    harmonics = int(cfg["harmonics"])
    results = spect_cohort.analyze_records(cohort.table, harmonics, progress=ctx.progress, rings=int(cfg["rings"]),
                                           sectors=int(cfg["sectors"]), band_px=float(cfg["band_px"]))
    table = cohort.table.copy()
    for col in PHASE_COLUMNS:
        table[col] = [float(getattr(r, col)) for r in results]
    segs = np.stack([r.segments17 for r in results])
    for j in range(segs.shape[1]):
        table[f"phase_seg{j + 1:02d}"] = segs[:, j]
    shapes = {r.phase_map.shape for r in results}
    if len(shapes) > 1:
        raise CardioError(f"phase polar maps of different shapes in one cohort: {sorted(shapes)}; "
                          "resample them to one grid")
    meta = {**cohort.meta, "phase_results": results, "harmonics": harmonics}
    return Cohort(table, cohort.loader, cohort.label, cohort.root, meta)


def phase_features(cohort: Cohort, clinical: list[str]) -> Features:
    """Table: ids, responder, clinical and conventional (PSD/PBW) columns; x: flattened phase maps."""
    table = cohort.table
    missing = [c for c in clinical if c not in table.columns]
    if missing:
        raise CardioError(f"clinical variable(s) {missing} named in analysis.clinical are not in the cohort table")
    bad = [c for c in clinical if not pd.api.types.is_numeric_dtype(table[c]) or table[c].isna().any()]
    if bad:
        raise CardioError(f"clinical column(s) {bad} must be numeric without missing values "
                          "(encode sex as 1 = male, NYHA as 2/3/4, yes/no as 1/0)")
    results = cohort.meta["phase_results"]
    x = np.stack([r.phase_map.ravel() for r in results]).astype(np.float32)
    return Features(table.copy(), x=x, label=cohort.label,
                    meta={"grid": results[0].phase_map.shape, "phase_results": results})


def evaluate_sections(predictions: Predictions, config: dict, ctx) -> list[Section]:
    """The paper's in-sample analysis (AE refitted on every patient) and, next to it, the
    out-of-fold AUCs of the same pipeline refitted inside each training fold."""
    features = ctx.features
    cfg = config["analysis"]
    level = float(config["stats"]["level"])
    sections, insample = [], {}
    if cfg["in_sample"]:
        ae = fit_autoencoder(features.x, features.table["patient_id"], config["autoencoder"], ctx, name="ae-all")
        df, cols = with_ae_features(features.table, ae.transform(features.x, ctx))
        res = paper_analysis(df, features.label, list(cfg["clinical"]), list(cfg["categorical"]), cols, cfg,
                             ctx.figure_path, level=level)
        sections.append(res.section)
        insample = res.aucs
    table, estimates = in_sample_vs_out_of_fold(predictions.table, insample, features.label, level=level)
    selection = fold_selection_table(predictions.table)
    n_forced = int(selection["ae_forced"].sum()) if "ae_forced" in selection.columns else 0
    text = (
        "**The same pipeline, cross-validated.** Inside every training fold the autoencoder was trained on the "
        "training patients' phase maps only, the univariate screen chose clinical variables (p < "
        f"{cfg['p_enter']}) and AE features (p < {cfg['p_significant']}, at most {cfg['max_ae_features']}) on those "
        "patients only, and the logistic models were fitted on them; the held-out fold was then scored. The "
        "out-of-fold AUC is the honest estimate of how the method predicts response in new patients; the "
        "in-sample AUC is what the paper's design reports. 'optimism' = in-sample minus out-of-fold. "
        "The variables chosen in each fold are listed below"
        + (f" ({n_forced} fold(s) had no AE feature reach p < {cfg['p_significant']}; there the single best AE "
           "feature entered anyway, column ae_forced)." if n_forced else "."))
    sections.append(Section(title="SPECT phase autoencoder: in-sample vs cross-validated (out-of-fold)", text=text,
                            tables={"In-sample vs out-of-fold AUC (DeLong 95% CI)": table,
                                    "Variables chosen inside each training fold": selection},
                            estimates=estimates))
    return sections


def phase_explain_section(model: PhaseAEModel, features: Features, index: np.ndarray, ctx) -> Section:
    """Bull's-eyes of the mean phase (responders vs non-responders) and mean perfusion, the phase
    histograms of one responder and one non-responder of the fold, and the decoder's view of the
    fold's most predictive AE feature."""
    results = features.meta["phase_results"]
    y = features.y.astype(int)
    maps = np.stack([r.phase_map for r in results])
    figs = []
    fig = plt.figure(figsize=(13.5, 4.2), layout="constrained")
    for k, (group, title) in enumerate(((1, "responders"), (0, "non-responders"))):
        ax = fig.add_subplot(1, 3, k + 1, projection="polar")
        mean_map = circular_mean_deg(maps[y == group], axis=0)
        bullseye.plot_bullseye(mean_map, kind="phase", ax=ax,
                               title=f"mean phase, {title} (n={int((y == group).sum())})")
    perf = [r.perfusion_map for r in results if r.perfusion_map is not None]
    if perf:
        ax = fig.add_subplot(1, 3, 3, projection="polar")
        bullseye.plot_bullseye(np.mean(perf, axis=0), kind="perfusion", ax=ax, title="mean perfusion (all)")
    figs.append(_save(fig, ctx.figure_path("spect_bullseye_mean_phase_perfusion")))

    index = np.asarray(index)
    for group, name in ((1, "responder"), (0, "non_responder")):
        rows = index[y[index] == group]
        if len(rows):
            figs.append(_save(bullseye.plot_phase_summary(results[rows[0]], title=f"a {name.replace('_', '-')} "
                                                          "of the last test fold"),
                              ctx.figure_path(f"spect_phase_summary_{name}")))

    feature = model.response.ae_selected[0] if model.response.ae_selected else None
    text = "Mean phase maps are circular means over patients (descriptive, all patients). "
    if feature is not None:
        j = model.ae_cols.index(feature)
        train_rows = np.flatnonzero(features.table["patient_id"].astype(str).isin(set(model.ae.patients)).to_numpy())
        z = model.ae.encode(features.x[train_rows], ctx)  # raw layer-2 units, what the decoder takes
        lo, hi = z.mean(axis=0).copy(), z.mean(axis=0).copy()
        lo[j] -= 2 * z[:, j].std()
        hi[j] += 2 * z[:, j].std()
        dec = model.ae.decode(np.stack([lo, hi]), ctx)
        diff = (dec[1] - dec[0]).reshape(features.meta["grid"])
        vmax = float(np.abs(diff).max()) or 1.0
        fig = plt.figure(figsize=(5.2, 4.2), layout="constrained")
        ax = fig.add_subplot(projection="polar")
        bullseye.plot_bullseye(diff, kind="phase", ax=ax, vmin=-vmax, vmax=vmax, cmap="RdBu_r",
                               title=f"decoder: {feature} +2 SD minus -2 SD (degrees)")
        figs.append(_save(fig, ctx.figure_path("spect_ae_feature_decoder_view")))
        coef = model.response.models["clinical+ae"].table.set_index("variable")
        or_txt = (f" (OR {coef.loc[feature, 'or']:.3g} per unit in the last fold's clinical+ae model)"
                  if feature in coef.index else "")
        text += (f"The last fold's most significant AE feature is {feature}{or_txt}; its decoder view shows how "
                 "the reconstructed phase map changes when only that feature moves from -2 to +2 SD (other "
                 "features at their training mean): red = later contraction.")
    return Section(title="SPECT phase maps and what the autoencoder feature encodes", text=text, figures=figs)
