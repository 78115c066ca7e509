"""He et al.'s statistical analysis of AE-based dyssynchrony parameters, and its cross-validated twin.

`fit_response_models` is the one recipe: univariate logistic screen of the clinical variables
and the AE features, then multivariate logistic models (clinical variables with p < p_enter plus
PSD, plus PBW, plus the AE features that pass the screen). `paper_analysis` runs it on the whole
cohort, as the paper did (in-sample, explanatory); the plugin's train/predict hooks run the very
same recipe inside each training fold (pipeline.py: out-of-fold, honest). All numbers come from cardio_stats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

import cardio_stats as stats
from cardio import CardioError, CoreSettings, Section
from cardio_report.figures import Figure, subplots
from cardio_spect_polar.settings import Analysis

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
    firth: list[str] = field(default_factory=list)  # the models Firth's penalized likelihood fitted (separation)

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
                        patient_col: str = "patient_id", method: str = "ml") -> FittedResponseModels:
    """Univariate screen, then the multivariate models of the paper, on the rows of df only.

    AE features enter when univariate p < p_ae (the paper's "significant"), the most significant
    `max_ae` of them (the paper fits AE #30 alone because AE features are collinear). When none
    passes, the single best AE feature enters anyway (``ae_forced``) so that every fold has a
    clinical + AE model; the report says how often that happened. `method` is cardio_stats' (ml, firth, auto).
    """
    variables_all = list(clinical) + list(CONVENTIONAL) + list(ae_cols)
    _require(df, variables_all + [outcome], "response models")
    screen = stats.univariate_screen(df, outcome, variables_all, method=method)
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
    models, thresholds = _fit_models(df, outcome, variables, clin, p, method)
    patients = df[patient_col].astype(str).tolist() if patient_col in df.columns else []
    firth = [name for name, m in models.items() if m.method.startswith("Firth")]
    return FittedResponseModels(screen, clin, ae, forced, variables, models, thresholds, patients, firth)


def fit_conventional_models(df: pd.DataFrame, outcome: str, clinical: list[str], *, p_enter: float = 0.1,
                            method: str = "ml") -> tuple[dict, dict[str, float]]:
    """The clinical + PSD and clinical + PBW models alone, fitted as fit_response_models fits them (the screen is one
    model per variable, so the AE features change neither), with their Youden thresholds: what cardio_refit refits
    for nested CV without training an autoencoder."""
    variables_all = list(clinical) + list(CONVENTIONAL)
    _require(df, variables_all + [outcome], "response models")
    p = _p_column(stats.univariate_screen(df, outcome, variables_all, method=method))
    clin = [v for v in clinical if p.get(v, 1.0) < p_enter]
    return _fit_models(df, outcome, {f"clinical+{c}": clin + [c] for c in CONVENTIONAL}, clin, p, method)


def _fit_models(df: pd.DataFrame, outcome: str, variables: dict[str, list[str]], clin: list[str], p: pd.Series,
                method: str) -> tuple[dict, dict[str, float]]:
    """Each model of `variables` (name -> columns; updated to the columns kept) and its Youden threshold on df."""
    models, thresholds = {}, {}
    y = df[outcome].to_numpy()
    for name, cols in variables.items():
        m = _fit_dropping_clinical(df, outcome, cols, clin, p, method)
        variables[name] = list(m.variables)
        models[name] = m
        thresholds[name] = stats.choose_threshold(y, m.predict_proba(df), "youden")
    return models, thresholds


def _fit_dropping_clinical(df: pd.DataFrame, outcome: str, cols: list[str], clinical: list[str], p: pd.Series,
                           method: str = "ml"):
    """fit_logistic; when the model is not estimable (separation under maximum likelihood, collinearity), drop the
    least significant clinical variable and refit, so that one bad fold does not stop a study."""
    cols = list(cols)
    while True:
        try:
            return stats.fit_logistic(df, outcome, cols, method=method)
        except stats.EstimationError as exc:
            droppable = [c for c in cols if c in clinical]
            if not droppable:
                raise CardioError(f"logistic model {cols} is not estimable on {len(df)} patients: {exc}") from None
            cols.remove(max(droppable, key=lambda c: p.get(c, 1.0)))


def correlation_heatmap(r: pd.DataFrame, p: pd.DataFrame, title: str) -> Figure:
    """Pearson r of the significant AE features with PSD and PBW, p-values in the cells."""
    rows = [c for c in r.index if c not in CONVENTIONAL]
    cols = [c for c in CONVENTIONAL if c in r.columns]
    sub_r, sub_p = r.loc[rows, cols], p.loc[rows, cols]
    fig, ax = subplots(figsize=(1.8 + 1.3 * len(cols), 1.2 + 0.45 * len(rows)))
    im = ax.imshow(sub_r.to_numpy(dtype=float), cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{sub_r.iat[i, j]:.2f}\np={sub_p.iat[i, j]:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), [LABELS.get(c, c) for c in cols])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="Pearson r")
    return fig


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


def table_one(df: pd.DataFrame, outcome: str, clinical: list[str], categorical: list[str],
              a: Analysis) -> pd.DataFrame:
    """Table 1 by responder status (clinical variables, PSD and PBW), each p named by its test: the paper's (Student t,
    Yates' chi-square) with `table1_tests: paper`, else the statistics service's adaptive ones."""
    continuous = [c for c in clinical + list(CONVENTIONAL) if c not in categorical]
    tests: stats.Table1Tests = "student-chi2" if a.table1_tests == "paper" else "adaptive"
    return stats.table_one(df, outcome, continuous, [c for c in categorical if c in clinical], equal_var=a.student_t,
                           tests=tests)


def paper_analysis(df: pd.DataFrame, outcome: str, clinical: list[str], categorical: list[str],
                   ae_cols: list[str], a: Analysis, save_figure: Callable[[Figure, str], Path],
                   level: float = 0.95) -> InSampleResult:
    """The paper's analysis on every patient: Table 1, univariate and multivariate logistic
    regression, correlation with PSD/PBW, ROC of the three models and likelihood-ratio tests.

    The AE was trained on these same patients and the variables were chosen on them: every
    number here is in-sample and describes associations, not predictive performance.
    `save_figure(fig, name)` saves a figure for the report (ctx.save_figure) and returns its path.
    """
    fitted = fit_response_models(df, outcome, clinical, ae_cols, p_enter=a.p_enter, p_ae=a.p_significant,
                                 max_ae=a.max_ae_features, method=a.logistic)
    y = df[outcome].to_numpy()
    table1 = table_one(df, outcome, clinical, categorical, a)
    screen = _univariate_table(fitted, df, a.multitest)
    p = _p_column(fitted.screen)
    sig_ae = [c for c in ae_cols if p[c] < a.p_significant]
    figures = _forest_figures(screen, df, clinical, ae_cols, a.p_enter, save_figure)

    r, rp = stats.correlation_matrix(df, (sig_ae or fitted.ae_selected) + list(CONVENTIONAL), "pearson")
    figures.append(save_figure(correlation_heatmap(r, rp, "Pearson correlation: AE features vs PSD/PBW (in-sample)"),
                               "spect_ae_correlation"))
    _add_ae_model_sizes(fitted, df, outcome, ae_cols, a)
    scores = {name: fitted.models[name].predict_proba(df) for name in fitted.models}
    shown_models = MODEL_NAMES + tuple(n for n in scores if n.startswith("clinical+ae("))
    roc = stats.plot_roc({n: (y, scores[n]) for n in shown_models},
                         title="ROC, in-sample (apparent) fit of the paper's models")
    figures.append(save_figure(roc, "spect_roc_in_sample"))

    aucs = {}
    for name in fitted.models:
        d = stats.delong_ci(y, scores[name], level=level).to_dict()
        d.update(metric=f"in-sample AUC {name}", model=name)
        aucs[name] = d
    lr_tests = _nested_lr_tests(fitted)
    perm = _permutation_tests(df, outcome, clinical, ae_cols, fitted, a)
    ae_rows = [c for c in r.index if c not in CONVENTIONAL]
    corr_table = r.loc[ae_rows, list(CONVENTIONAL)].add_prefix("r_").join(
        rp.loc[ae_rows, list(CONVENTIONAL)].add_prefix("p_")).rename_axis("ae_feature").reset_index()
    section = Section(
        title="SPECT phase autoencoder: the paper's analysis (in-sample, explanatory)",
        text=_in_sample_text(fitted, len(df), int(np.sum(y == 1)), sig_ae, lr_tests, perm, a)
        + f" Table 1: {stats.note_on_tests(table1)}", figures=figures,
        tables={"Table 1 by responder status (in-sample)": table1,
                "Univariate logistic regression (in-sample)": screen,
                "Multivariate logistic models (in-sample)": pd.concat([_model_table(fitted, n)
                                                                       for n in fitted.variables], ignore_index=True),
                "Pearson correlation of significant AE features with PSD/PBW (in-sample)": corr_table,
                "In-sample AUC of the multivariate models": _auc_rows(fitted, aucs),
                "Likelihood-ratio tests (in-sample chi-square p; permutation p valid under selection)":
                    _lr_rows(lr_tests, perm)},
        estimates=list(aucs.values()), tests=list(lr_tests.values()))
    return InSampleResult(section, fitted, aucs, lr_tests, scores)


def _univariate_table(fitted: FittedResponseModels, df: pd.DataFrame, method: str) -> pd.DataFrame:
    """The screen for the report: ORs per raw unit (as the paper reports the clinical ones) beside per SD of the
    variable in this cohort, and the screen's p-values adjusted as a family (`method`: holm | bh)."""
    screen = _label_table(fitted.screen)
    sd = df[screen["variable"].tolist()].std(ddof=1).to_numpy(float)
    screen.insert(screen.columns.get_loc("or") + 1, "or_per_sd", np.exp(screen["coef"].to_numpy(float) * sd))
    screen = screen.rename(columns={"or": "or_per_unit"}).drop(columns=["coef", "se"], errors="ignore")
    screen.insert(screen.columns.get_loc("p_value") + 1, f"p_{method}",
                  stats.adjust_pvalues(screen["p_value"].to_numpy(float), method))
    return screen


def _forest_figures(screen: pd.DataFrame, df: pd.DataFrame, clinical: list[str], ae_cols: list[str], p_enter: float,
                    save_figure: Callable[[Figure, str], Path]) -> list[Path]:
    """Forest plots of the clinical variables, PSD/PBW and the AE features with p < p_enter, saved."""
    shown = (screen["variable"].isin(clinical + list(CONVENTIONAL))
             | (screen["variable"].isin(ae_cols) & (screen["p_value"] < p_enter)))
    # One scale on one axis: every OR per SD of its variable in this cohort (an OR per ms of QRS looks null
    # beside ORs per SD), the CI bounds raised to the same power; long tables are split across figures.
    rows = screen[shown]
    power = df[rows["variable"].tolist()].std(ddof=1).to_numpy(float)
    forest_rows = pd.DataFrame({"variable": rows["label"], "or": rows["or_per_sd"],
                                "ci_low": rows["ci_low"].to_numpy(float) ** power,
                                "ci_high": rows["ci_high"].to_numpy(float) ** power,
                                "p_value": rows["p_value"], "per": "SD of the variable"})
    forests = stats.forest_figures(forest_rows, title="Univariate logistic regression, in-sample")
    return [save_figure(f, "spect_univariate_forest" + (f"_{i + 1}" if i else "")) for i, f in enumerate(forests)]


def _nested_lr_tests(fitted: FittedResponseModels) -> dict[str, dict]:
    """The in-sample likelihood-ratio test of each NESTED pair, keyed by the full model."""
    lr_tests = {}
    for reduced, full in NESTED.items():
        try:
            t = stats.likelihood_ratio_test(fitted.models[reduced], fitted.models[full]).to_dict()
        except stats.StatsError as exc:  # a clinical variable had to be dropped from one model only
            t = {"statistic": None, "p_value": None, "df": None, "warnings": [str(exc)]}
        t.update(name=f"LR test: {full} vs {reduced} (in-sample)")
        lr_tests[full] = t
    return lr_tests


def _auc_rows(fitted: FittedResponseModels, aucs: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"model": n, "variables": ", ".join(fitted.variables[n]), "auc": aucs[n]["estimate"],
                          "ci_low": aucs[n]["ci_low"], "ci_high": aucs[n]["ci_high"]} for n in fitted.variables])


def _lr_rows(lr_tests: dict[str, dict], perm: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"reduced": red, "full": full, "lr_chi2": lr_tests[full]["statistic"],
                          "df": lr_tests[full]["df"], "p_value_in_sample": lr_tests[full]["p_value"],
                          "p_value_permutation": perm[full]["p_value"], "permutations": perm[full]["permutations"]}
                         for red, full in NESTED.items()])


def _in_sample_text(fitted: FittedResponseModels, n: int, n_pos: int, sig_ae: list[str], lr_tests: dict[str, dict],
                    perm: dict[str, dict], a: Analysis) -> str:
    """What the in-sample section says: what was selected, the LR tests, and which numbers survive selection."""
    return (
        "**In-sample, explanatory analysis (as in He et al.).** The autoencoder was trained on all "
        f"{n} phase polar maps and the variables were selected on the same {n} patients "
        f"({n_pos} responders); the AUCs below are therefore optimistic and describe association, not "
        "prediction. The honest, cross-validated estimate of the same pipeline is the performance section's "
        "out-of-fold AUC; the next section sets the two side by side.\n\n"
        f"Clinical variables with univariate p < {a.p_enter}: "
        f"{', '.join(LABELS.get(v, v) for v in fitted.clinical_selected) or 'none'}. "
        f"AE features with univariate p < {a.p_significant}: {', '.join(sig_ae) or 'none'}"
        + (f"; none passed, so the best AE feature ({fitted.ae_selected[0]}) entered the AE model."
           if fitted.ae_forced else f"; entering the multivariate model: {', '.join(fitted.ae_selected)}.")
        + "\n\nLikelihood-ratio tests of the AE features' incremental value: "
        + "; ".join(f"{full} vs {red}: " + _lr_text(lr_tests[full]) for red, full in NESTED.items()) + "."
        + "\n\n**Valid under selection:** the permutation p-values of the likelihood-ratio tests (labels "
        f"permuted {a.permutations} times, the whole screen -> select -> fit -> LR-test "
        "recipe re-run on each: "
        + "; ".join(f"{full}: p = {stats.format_p(perm[full]['p_value'])}" for full in perm)
        + "), the Holm/BH-adjusted screen p-values as a family, and every out-of-fold number of the next "
        "section. **Not valid under selection:** the in-sample chi-square p-values, ORs, CIs and AUCs here, "
        "which were computed on the patients that chose the variables (in a pure-noise simulation the in-sample "
        "LR test rejects in about 9 of 10 data sets; benchmarks/selection_null.py)."
    )


def _add_ae_model_sizes(fitted: FittedResponseModels, df: pd.DataFrame, outcome: str, ae_cols: list[str],
                        a: Analysis) -> None:
    """The paper's AE models side by side: clinical + the best k AE features for each k of
    analysis.ae_model_sizes (the paper: #30 alone, k = 1, and #28 + #35 together, k = 2)."""
    p = _p_column(fitted.screen)
    order = p.reindex(ae_cols).sort_values(kind="stable").index.tolist()
    for k in a.ae_model_sizes:
        if k == len(fitted.ae_selected) or k < 1:
            continue
        name = f"clinical+ae({k})"
        m = _fit_dropping_clinical(df, outcome, fitted.clinical_selected + order[:k], fitted.clinical_selected, p)
        fitted.models[name], fitted.variables[name] = m, list(m.variables)


def _permutation_tests(df: pd.DataFrame, outcome: str, clinical: list[str], ae_cols: list[str],
                       fitted: FittedResponseModels, a: Analysis) -> dict[str, dict]:
    """Permutation p-value of each incremental-value LR test, the whole recipe re-run per permutation."""
    from cardio_spect_polar.selection import permutation_test

    out = {}
    for reduced, full in NESTED.items():
        conv = reduced.split("+")[1]
        out[full] = permutation_test(df[clinical].to_numpy(float), df[conv].to_numpy(float),
                                     df[ae_cols].to_numpy(float), df[outcome].to_numpy(float),
                                     permutations=a.permutations, seed=a.seed, p_enter=a.p_enter,
                                     p_ae=a.p_significant, max_ae=a.max_ae_features)
    return out


def _lr_text(t: dict) -> str:
    if t["statistic"] is None:
        return "not nested, not tested"
    return f"chi2 = {t['statistic']:.2f}, p = {stats.format_p(t['p_value'])}"


def _repeats(pred_table: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    if "repeat" not in pred_table.columns:
        return [(0, pred_table)]
    return [(int(r), part) for r, part in pred_table.groupby("repeat", sort=True)]


def optimism_table(insample_aucs: dict[str, dict], estimates: list[dict], task: str) -> pd.DataFrame:
    """In-sample AUC minus out-of-fold AUC of each model: the in-sample one from paper_analysis, the out-of-fold
    one the AUC the core's performance table leads with (repeat 0: with K folds the cross-validated AUC, the mean
    of the per-fold AUCs), never an AUC computed here again.

    Point estimates only: their intervals are printed once, in the in-sample section and in the performance table.
    """
    rows = []
    for name in MODEL_NAMES:
        ins = insample_aucs.get(name, {}).get("estimate")
        core = stats.headline_auc(estimates, model=name, task=task)
        oof = core["estimate"] if core else None
        if ins is None or oof is None:  # no in-sample fit, or no AUC (one class only): no row, never a NaN
            continue
        rows.append({"model": name, "in_sample_auc": float(ins), "out_of_fold_auc": float(oof),
                     "optimism": float(ins) - float(oof)})
    return pd.DataFrame(rows)


def reference_model(config: dict, task: str) -> str | None:
    """The pre-specified reference of `task` (core key stats.reference: one model name, or task -> model)."""
    ref = CoreSettings.of(config).stats.reference_for(task)
    if ref is not None and ref not in MODEL_NAMES:
        raise CardioError(f"stats.reference = {ref!r} names no spect_polar model; its models are {list(MODEL_NAMES)}")
    return ref


def held_out_incremental_value(pred_table: pd.DataFrame, task: str, level: float = 0.95,
                               reference: str | None = "clinical+ae",
                               fold_factor: float | None | Literal["by folds"] = "by folds") -> pd.DataFrame:
    """Out-of-fold counterparts of the incremental-value LR test and of the ORs, per CV repeat.

    On the held-out predictions (each made by models that never saw that patient's label), response is
    regressed on the log-odds of each other model's score, then on it plus the reference model's log-odds:
    the LR test asks whether the reference's held-out score adds to the other one, and the OR per SD of each
    held-out score is the out-of-fold counterpart of the in-sample ORs. The scores of K fold models vary with the
    training sets as one model's do not: the test divides the LR statistic, and the OR's interval multiplies its
    Wald variance, by `fold_factor` (by default cardio_stats.variance_factor of the repeat's folds: 2 at 5 folds or
    more, 1 for a holdout's one model, no p or interval with 2 to 4 folds; benchmarks/held_out_lr.py measures both).
    The reference's tests form one family per repeat (Holm), secondary to the core's paired ΔAUC tests; with no
    pre-specified reference (None) clinical+ae is tested and the family is labelled exploratory.
    """
    ref = reference or "clinical+ae"
    family = "secondary (stats.reference)" if reference else "exploratory (no stats.reference)"
    rows = []
    for r, part in _repeats(pred_table[pred_table["task"] == task]):
        key = "record_id" if "record_id" in part.columns else part.index
        wide = part.pivot_table(index=key, columns="model", values="y_score", aggfunc="first")
        if ref not in wide.columns:
            continue
        factor = stats.variance_factor(int(part["fold"].nunique())) if isinstance(fold_factor, str) else fold_factor
        eps = 1e-6
        df = np.log(wide.clip(eps, 1 - eps) / (1 - wide.clip(eps, 1 - eps)))
        df = (df - df.mean()) / df.std(ddof=0).replace(0, 1)
        df.columns = [c.replace("+", "_") for c in df.columns]
        df["y"] = part.groupby(key)["y_true"].first().reindex(df.index).astype(int)
        found = [_held_out_lr(df, r, ref, other, level, factor) for other in MODEL_NAMES if other != ref
                 and other.replace("+", "_") in df.columns]
        p = np.array([np.nan if row["p_value"] == "" else row["p_value"] for row in found], dtype=float)
        adjusted = stats.adjust_pvalues(p, "holm")
        for row, p_holm in zip(found, adjusted):
            row.update(p_holm="" if np.isnan(p_holm) else float(p_holm), family=family)
        rows += found
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = [c for c in out.columns if c not in ("p_holm", "family")]
    order.insert(order.index("p_value") + 1, "p_holm")
    return out[["family", *order]]


def _held_out_lr(df: pd.DataFrame, repeat: int, ref: str, other: str, level: float, factor: float | None) -> dict:
    """One held-out LR test: the reference's score added to `other`'s (columns with '_' for '+'); its p from the
    LR statistic / `factor` on 1 df, the OR's interval Wald's with its variance x `factor` (neither where None)."""
    red_col, ref_col = other.replace("+", "_"), ref.replace("+", "_")
    row = {"repeat": repeat, "comparison": f"held-out {ref} score added to {other} score", "n": int(len(df))}
    try:
        reduced = stats.fit_logistic(df, "y", [red_col], level=level)
        full = stats.fit_logistic(df, "y", [red_col, ref_col], level=level)
        lr = stats.likelihood_ratio_test(reduced, full)
        t = full.table.set_index("variable")
        rate = float(df["y"].mean())  # the intercept-only model's log-likelihood: each model's own chi-square
        null_llf = float(len(df) * (rate * np.log(rate) + (1 - rate) * np.log(1 - rate)))
        row.update(chi2_other=2 * (reduced.llf - null_llf), chi2_with_reference=2 * (full.llf - null_llf),
                   lr_chi2=float(lr.statistic), fold_factor="" if factor is None else factor,
                   p_value="" if factor is None else float(chi2.sf(lr.statistic / factor, lr.df)),
                   or_reference_per_sd=float(t.loc[ref_col, "or"]),
                   or_reference_ci="" if factor is None else _or_interval(t.loc[ref_col], level, factor),
                   or_other_per_sd=float(t.loc[red_col, "or"]),
                   status="estimated" if factor is not None else
                   f"estimated; no p or interval with fewer than {stats.MIN_FOLDS} folds")
    except (stats.StatsError, CardioError) as exc:  # a labelled skip, never NaN cells
        row.update(chi2_other="", chi2_with_reference="", lr_chi2="", fold_factor="", p_value="",
                   or_reference_per_sd="", or_reference_ci="", or_other_per_sd="",
                   status=f"skipped: {str(exc).splitlines()[0]}")
    return row


def _or_interval(coef: pd.Series, level: float, factor: float) -> str:
    """Wald's interval of an OR, its variance x factor."""
    half = norm.ppf(0.5 + level / 2) * float(coef["se"]) * np.sqrt(factor)
    return stats.format_interval(np.exp(coef["coef"] - half), np.exp(coef["coef"] + half))
