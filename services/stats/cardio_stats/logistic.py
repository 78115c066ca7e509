"""Logistic regression (statsmodels Logit): univariate screen, multivariable model, odds ratios, LR test."""
from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2
from statsmodels.discrete.discrete_model import Logit

from cardio_stats.result import Estimate, StatsError, TestResult
from cardio_stats.roc import delong_ci
from cardio_stats.validation import as_binary_labels, check_level

INTERCEPT = "(intercept)"
#: How a model is fitted: maximum likelihood; Firth's penalized likelihood; or maximum likelihood, Firth's where the
#: data are separated (the maximum-likelihood estimate is then infinite).
METHODS = ("ml", "firth", "auto")
ML, FIRTH = "maximum likelihood", "Firth's penalized likelihood"
TABLE_COLUMNS = ["variable", "n", "or", "ci_low", "ci_high", "p_value", "warning", "coef", "se"]
# a fitted probability this close to the observed label, in a fit that did not converge, means separation
_SEPARATION_EPS = 1e-6


class EstimationError(StatsError):
    """The data are valid but the model is not estimable (separation, singular design, too few records)."""


@dataclass
class LogisticModel:
    """A fitted logistic model: statsmodels result, odds-ratio table and in-sample DeLong AUC."""

    outcome: str
    variables: list[str]
    result: Any  # statsmodels BinaryResultsWrapper
    table: pd.DataFrame
    llf: float
    df_model: float
    aic: float
    n: int
    auc: Estimate
    index: pd.Index  # rows of the input frame used (complete cases), to check nesting in the LR test
    warnings: list[str] = field(default_factory=list)
    screen: pd.DataFrame | None = None  # univariate screen behind select_and_fit
    method: str = ML  # how it was fitted: ML, or FIRTH (its CIs then by profile penalized likelihood)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Predicted probability of outcome = 1 for each row of ``df``."""
        missing = [v for v in self.variables if v not in df.columns]
        if missing:
            raise StatsError(f"cannot predict: column(s) {missing} missing from the data")
        x = _numeric_block(df, self.variables)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise StatsError(f"cannot predict: {int(bad.sum())} of {len(df)} rows have missing or infinite "
                             "predictor values")
        design = pd.DataFrame(np.column_stack([np.ones(len(x)), x]), columns=[INTERCEPT, *self.variables])
        return np.asarray(self.result.predict(design))


def _numeric_block(df: pd.DataFrame, variables: list[str]) -> np.ndarray:
    cols = []
    for v in variables:
        col = df[v]
        if col.dtype == bool:
            col = col.astype(np.int8)
        if not pd.api.types.is_numeric_dtype(col):
            raise StatsError(f"variable {v!r} is not numeric (dtype {col.dtype}); encode it as 0/1 or dummy columns")
        cols.append(col.to_numpy(dtype=np.float64))
    return np.column_stack(cols) if cols else np.empty((len(df), 0))


def _design(df: pd.DataFrame, outcome: str, variables: list[str],
            named: bool = True) -> tuple[np.ndarray, Any, pd.Index, list[str]]:
    """Complete-case outcome vector and design matrix (intercept first, then `variables`) after checking every input:
    a DataFrame with those names, or the bare array (`named=False`: the screen's hundreds of small fits, where
    statsmodels' wrapping of every result in pandas took longer than the fit)."""
    if not isinstance(df, pd.DataFrame):
        raise StatsError(f"expected a pandas DataFrame, got {type(df).__name__}")
    variables = list(variables)
    if not variables:
        raise StatsError("no predictor variables given")
    if len(set(variables)) != len(variables):
        raise StatsError(f"predictor variables are repeated: {variables}")
    if INTERCEPT in variables:
        raise StatsError(f"{INTERCEPT!r} is added automatically; do not list it as a variable")
    if outcome in variables:
        raise StatsError(f"the outcome {outcome!r} is also listed as a predictor")
    missing = [c for c in [outcome, *variables] if c not in df.columns]
    if missing:
        raise StatsError(f"column(s) {missing} not found; available: {list(df.columns)[:20]}")
    x_all = _numeric_block(df, variables)
    if np.isinf(x_all).any():
        raise StatsError(f"{int(np.isinf(x_all).any(axis=1).sum())} record(s) have infinite predictor values")
    y_raw = df[outcome]
    keep = ~np.isnan(x_all).any(axis=1) & y_raw.notna().to_numpy()
    notes: list[str] = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} of {len(df)} records dropped for missing values (complete cases)")
    y = as_binary_labels(y_raw[keep].to_numpy(), name=f"outcome {outcome!r}")
    x = x_all[keep]
    design = np.column_stack([np.ones(x.shape[0]), x])
    if design.shape[0] <= design.shape[1]:
        raise EstimationError(f"{design.shape[0]} complete records for {design.shape[1]} parameters: too few to fit")
    _check_rank(design, variables)
    events = min(int(y.sum()), int(y.size - y.sum()))
    if events / len(variables) < 10:
        notes.append(f"{events} events in the smaller outcome class for {len(variables)} variable(s): "
                     "fewer than 10 per variable, estimates may be unstable")
    named_design = pd.DataFrame(design, columns=[INTERCEPT, *variables]) if named else design
    return y, named_design, df.index[keep], notes


def _check_rank(design: np.ndarray, variables: list[str]) -> None:
    """Singular design matrix -> StatsError naming the constant or collinear variables."""
    p = design.shape[1]
    if np.linalg.matrix_rank(design) == p:
        return
    constant = [v for j, v in enumerate(variables) if np.ptp(design[:, j + 1]) == 0]
    if constant:
        raise EstimationError(f"singular design matrix: variable(s) {constant} are constant over the "
                         f"{design.shape[0]} complete records")
    # walk the columns: the first one that adds no rank is a combination of those before it
    for j in range(2, p + 1):
        if np.linalg.matrix_rank(design[:, :j]) < j:
            raise EstimationError(f"singular design matrix: variable {variables[j - 2]!r} is a linear combination of "
                             f"{['intercept', *variables[: j - 2]]} (collinear predictors)")


class FirthFit:
    """firthmodels' Firth logistic fit seen as cardio reads a statsmodels result: named coefficients, Wald SEs,
    p-values from penalized likelihood-ratio tests and CIs by profile penalized likelihood (as R's logistf)."""

    def __init__(self, result: Any, names: list[str]):
        self._result, self.names = result, names
        self.params = pd.Series(np.asarray(result.params, dtype=float), index=names)
        self.bse = pd.Series(np.asarray(result.bse, dtype=float), index=names)
        self.pvalues = pd.Series(np.asarray(result.pvalues, dtype=float), index=names)
        self.llf = float(result.llf)  # the penalized log-likelihood
        self.df_model = float(len(names) - 1)
        self.aic = 2.0 * len(names) - 2.0 * self.llf
        self.mle_retvals = dict(result.mle_retvals)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        return pd.DataFrame(self._result.conf_int(alpha=alpha, method="pl"), index=self.names)

    def predict(self, design: Any = None) -> np.ndarray:
        return np.asarray(self._result.predict(None if design is None else np.asarray(design, dtype=float)))


def _firth(y: np.ndarray, design: Any, variables: list[str]) -> tuple[FirthFit, list[str]]:
    """Firth's penalized logistic regression (Firth 1993; Heinze & Schemper 2002): finite estimates under separation.
    firthmodels fits it (Newton-Raphson on the Jeffreys-penalized likelihood, profile-likelihood CIs, penalized LR
    tests), the maintained Python counterpart of R's logistf; statsmodels has no Firth penalty."""
    try:
        from firthmodels.adapters.statsmodels import FirthLogit
    except ImportError:
        raise StatsError("Firth's logistic regression needs the firthmodels package (a cardio dependency): install "
                         "cardio again in its environment") from None
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            res = FirthLogit(y.astype(float), design).fit(pl=True, maxiter=100, gtol=1e-8, xtol=1e-8)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise EstimationError(f"Firth logistic fit failed for {variables}: {exc}") from None
    fit = FirthFit(res, [INTERCEPT, *variables])
    notes = [] if fit.mle_retvals.get("converged", True) else ["the penalized-likelihood fit did not converge"]
    notes += [" ".join(str(w.message).split())[:160] for w in caught if "converge" in str(w.message).lower()]
    if not np.all(np.isfinite(fit.bse)):
        raise EstimationError(f"Firth logistic fit for {variables} gave non-finite standard errors")
    return fit, notes


def _fit_by(y: np.ndarray, design: Any, variables: list[str], method: str) -> tuple[Any, list[str], str]:
    """(result, notes, method used): `ml` as _fit; `firth` always; `auto` ML, and Firth's where the data separate."""
    if method not in METHODS:
        raise StatsError(f"logistic method {method!r}: use one of {', '.join(METHODS)}")
    if method == "firth":
        return (*_firth(y, design, variables), FIRTH)
    try:
        return (*_fit(y, design, variables), ML)
    except EstimationError as exc:
        if method != "auto" or "separation" not in str(exc):
            raise
        res, notes = _firth(y, design, variables)
        why = str(exc).split(":")[0]
        return res, [f"{why}: fitted by Firth's penalized likelihood instead (finite estimates; profile "
                     "penalized-likelihood CIs, penalized likelihood-ratio p-values)", *notes], FIRTH


def _fit(y: np.ndarray, design: Any, variables: list[str]) -> tuple[Any, list[str]]:
    """Fit Logit by Newton; perfect or quasi-complete separation -> StatsError, never silent huge ORs."""
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            res = Logit(y, design).fit(disp=0, maxiter=100)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(f"logistic fit failed for {variables}: singular information matrix ({exc})") from None
    converged = bool(res.mle_retvals.get("converged", True))
    prob = np.asarray(res.predict())
    extreme = ((y == 1) & (prob > 1 - _SEPARATION_EPS)) | ((y == 0) & (prob < _SEPARATION_EPS))
    separation = any("separation" in str(w.message).lower() for w in caught) or (not converged and extreme.any())
    if separation:
        kind = "complete" if extreme.all() else "quasi-complete"
        raise EstimationError(
            f"{kind} separation: {variables} predict the outcome exactly for {int(extreme.sum())} of {y.size} "
            "records, so the odds ratio is infinite and not estimable; drop or combine the variable, or fit Firth's "
            "penalized model (method='firth' or 'auto')"
        )
    notes = []
    if not converged:
        notes.append("the maximum-likelihood fit did not converge; estimates are unreliable")
    if not np.all(np.isfinite(res.bse)):
        raise EstimationError(f"logistic fit for {variables} gave non-finite standard errors "
                              "(information matrix singular)")
    return res, notes


def _or_rows(res: Any, variables: list[str], n: int, level: float, warning: str = "") -> list[dict[str, Any]]:
    """Each variable's row of the odds-ratio table; the result's coefficients are read by position (intercept first,
    as _design builds the design), so a named and a bare design give the same rows."""
    ci = np.asarray(res.conf_int(alpha=1.0 - level), dtype=float)  # Wald (Firth's: profile penalized likelihood)
    coef, se, p = (np.asarray(a, dtype=float) for a in (res.params, res.bse, res.pvalues))
    return [{"variable": v, "n": n, "or": float(np.exp(coef[j])), "ci_low": float(np.exp(ci[j, 0])),
             "ci_high": float(np.exp(ci[j, 1])), "p_value": float(p[j]), "warning": warning, "coef": float(coef[j]),
             "se": float(se[j])} for j, v in enumerate(variables, start=1)]


def univariate_screen(df: pd.DataFrame, outcome: str, variables: list[str], level: float = 0.95,
                      method: str = "ml") -> pd.DataFrame:
    """One logistic model per variable: OR, Wald CI and p (by `method`: METHODS). A variable that cannot be fitted
    (separation under ML, constant) keeps its row with NaN values and the reason in ``warning``."""
    level = check_level(level)
    if not list(variables):
        raise StatsError("no variables to screen")
    rows: list[dict[str, Any]] = []
    for v in variables:
        try:
            y, design, _, notes = _design(df, outcome, [v], named=False)
            res, fit_notes, _ = _fit_by(y, design, [v], method)
            rows += _or_rows(res, [v], y.size, level, "; ".join(notes + fit_notes))
        except EstimationError as exc:  # bad input (missing column, labels) still raises
            n = int(df[[outcome, v]].notna().all(axis=1).sum())
            rows.append({"variable": v, "n": n, "or": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                         "warning": str(exc), "coef": np.nan, "se": np.nan})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def fit_logistic(df: pd.DataFrame, outcome: str, variables: list[str], level: float = 0.95,
                 method: str = "ml") -> LogisticModel:
    """Multivariable logistic model on complete cases, with odds ratios, CIs, p-values and in-sample AUC.

    `method` (METHODS): ml, maximum likelihood with Wald CIs, which refuses separated data; firth, Firth's penalized
    likelihood with profile penalized-likelihood CIs and penalized LR p-values; auto, ML and Firth's where the data
    separate. The model's `method` and `warnings` say which was used."""
    level = check_level(level)
    variables = list(variables)
    y, design, index, notes = _design(df, outcome, variables)
    res, fit_notes, used = _fit_by(y, design, variables, method)
    notes = notes + fit_notes
    model_auc = delong_ci(y, np.asarray(res.predict()), level=level)
    model_auc.warnings.append("in-sample (apparent) AUC: optimistic, not validated")
    return LogisticModel(outcome=outcome, variables=variables, result=res,
                         table=pd.DataFrame(_or_rows(res, variables, y.size, level, "; ".join(notes)),
                                           columns=TABLE_COLUMNS),
                         llf=float(res.llf), df_model=float(res.df_model), aic=float(res.aic), n=int(y.size),
                         auc=model_auc, index=index, warnings=notes, method=used)


def select_and_fit(df: pd.DataFrame, outcome: str, candidates: list[str], p_enter: float = 0.1,
                   level: float = 0.95, method: str = "ml") -> LogisticModel:
    """Enter every candidate with univariate p < ``p_enter`` into one multivariable model."""
    if not 0.0 < p_enter <= 1.0:
        raise StatsError(f"p_enter must be in (0, 1], got {p_enter}")
    screen = univariate_screen(df, outcome, candidates, level=level, method=method)
    selected = screen.loc[screen["p_value"] < p_enter, "variable"].tolist()
    if not selected:
        raise StatsError(f"no candidate reached univariate p < {p_enter} (smallest p = "
                         f"{screen['p_value'].min():.3g}); nothing to enter into the multivariable model")
    model = fit_logistic(df, outcome, selected, level=level, method=method)
    model.screen = screen
    return model


def likelihood_ratio_test(reduced: LogisticModel, full: LogisticModel) -> TestResult:
    """LR chi-square test of nested logistic models fitted on the same records (incremental value)."""
    if reduced.outcome != full.outcome:
        raise StatsError(f"models have different outcomes: {reduced.outcome!r} vs {full.outcome!r}")
    extra_vars = [v for v in full.variables if v not in reduced.variables]
    not_nested = [v for v in reduced.variables if v not in full.variables]
    if not_nested or not extra_vars:
        raise StatsError(f"models are not nested: the full model must contain every reduced variable plus at "
                         f"least one more (reduced {reduced.variables}, full {full.variables})")
    if reduced.method != full.method:
        raise StatsError(f"models were fitted by different methods ({reduced.method}, {full.method}): their "
                         "likelihoods are not comparable; fit both the same way")
    if reduced.n != full.n or not reduced.index.equals(full.index):
        raise StatsError(f"models were fitted on different records (reduced n = {reduced.n}, full n = {full.n}); "
                         "refit both on the complete cases of the full model")
    stat = 2.0 * (full.llf - reduced.llf)
    warnings: list[str] = []
    if stat < 0:
        if stat < -1e-6:
            warnings.append(f"negative LR statistic {stat:.3g}: a fit did not reach its maximum")
        stat = 0.0
    df = full.df_model - reduced.df_model
    return TestResult(name="likelihood_ratio", statistic=float(stat), p_value=float(chi2.sf(stat, df)),
                      method="lr-chi2", df=float(df), n=full.n, warnings=warnings,
                      extra={"added": extra_vars, "llf_reduced": reduced.llf, "llf_full": full.llf,
                             "deviance_reduced": -2.0 * reduced.llf, "deviance_full": -2.0 * full.llf})
