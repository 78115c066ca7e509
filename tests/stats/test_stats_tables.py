"""Table 1 p-values against scipy.stats; correlation matrices against scipy and pandas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact, pearsonr, spearmanr, ttest_ind
from statsmodels.stats.oneway import anova_oneway

from cardio.stats import StatsError, correlation_matrix, table_one


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    df = pd.DataFrame({
        "responder": rng.random(n) < 0.45,
        "age": rng.normal(66, 9, n),
        "lvef": rng.normal(27, 6, n),
        "sex": rng.choice(["F", "M"], n, p=[0.3, 0.7]),
        "nyha": rng.choice(["II", "III", "IV"], n, p=[0.4, 0.5, 0.1]),
        "rare": rng.choice(["yes", "no"], n, p=[0.04, 0.96]),
        "site": rng.choice(["A", "B", "C"], n),
    })
    df.loc[df.responder, "lvef"] += 3
    df.loc[:4, "age"] = np.nan
    return df


def _row(t, var, level=None):
    sel = (t.variable == var) & (t.level.isna() if level is None else t.level == level)
    return t[sel].iloc[0]


def test_continuous_welch_and_student(cohort):
    t = table_one(cohort, "responder", ["age", "lvef"], [])
    g1, g0 = cohort[cohort.responder], cohort[~cohort.responder]
    for v in ("age", "lvef"):
        r = _row(t, v)
        ref = ttest_ind(g0[v].dropna(), g1[v].dropna(), equal_var=False).pvalue
        assert r.p_value == pytest.approx(ref, rel=1e-12) and r.test == "Welch t-test"
    assert _row(t, "age").missing == 5
    student = table_one(cohort, "responder", ["lvef"], [], equal_var=True)
    assert _row(student, "lvef").p_value == pytest.approx(ttest_ind(g0.lvef, g1.lvef).pvalue, rel=1e-12)
    col = [c for c in t.columns if c.startswith("responder=True")][0]
    assert _row(t, "lvef")[col] == f"{g1.lvef.mean():.1f} ± {g1.lvef.std():.1f}"
    assert col == f"responder=True (n={len(g1)})"


def test_categorical_chi_square_yates_fisher_and_rxc(cohort):
    t = table_one(cohort, "responder", [], ["sex", "nyha", "rare"])
    sex = pd.crosstab(cohort.sex, cohort.responder).to_numpy()
    assert _row(t, "sex").p_value == pytest.approx(chi2_contingency(sex, correction=True).pvalue, rel=1e-12)
    assert _row(t, "sex").test == "chi-square (Yates)"
    rare = pd.crosstab(cohort.rare, cohort.responder).to_numpy()
    assert (chi2_contingency(rare).expected_freq < 5).any()
    assert _row(t, "rare").p_value == pytest.approx(fisher_exact(rare).pvalue, rel=1e-12)
    assert _row(t, "rare").test == "Fisher exact"
    nyha = pd.crosstab(cohort.nyha, cohort.responder).to_numpy()
    assert _row(t, "nyha").p_value == pytest.approx(chi2_contingency(nyha).pvalue, rel=1e-12)
    assert _row(t, "nyha").test.startswith("chi-square")
    females = int(((cohort.sex == "F") & cohort.responder).sum())
    col = [c for c in t.columns if c.startswith("responder=True")][0]
    assert _row(t, "sex", "F")[col] == f"{females} ({100 * females / cohort.responder.sum():.1f}%)"


def test_more_than_two_groups_use_welch_anova_and_rxc_chi_square(cohort):
    t = table_one(cohort, "site", ["lvef"], ["sex"])
    samples = [cohort.lvef[cohort.site == s] for s in ("A", "B", "C")]
    assert _row(t, "lvef").p_value == pytest.approx(anova_oneway(samples, use_var="unequal").pvalue, rel=1e-10)
    assert _row(t, "lvef").test == "Welch ANOVA"
    sex = pd.crosstab(cohort.sex, cohort.site).to_numpy()
    assert _row(t, "sex").p_value == pytest.approx(chi2_contingency(sex).pvalue, rel=1e-12)


def test_table_one_errors(cohort):
    with pytest.raises(StatsError, match="not found"):
        table_one(cohort, "responder", ["weight"], [])
    with pytest.raises(StatsError, match="1 level"):
        table_one(cohort.assign(g=1), "g", ["age"], [])
    with pytest.raises(StatsError, match="not numeric"):
        table_one(cohort, "responder", ["sex"], [])


@pytest.mark.parametrize("method,fn", [("pearson", pearsonr), ("spearman", spearmanr)])
def test_correlation_matrix_matches_scipy_and_pandas(cohort, method, fn):
    df = cohort[["age", "lvef"]].assign(score=cohort.lvef * 0.5 + np.random.default_rng(1).normal(size=len(cohort)))
    r, p = correlation_matrix(df, method=method)
    pd.testing.assert_frame_equal(r, df.corr(method=method), atol=1e-12, check_exact=False)
    ok = df.age.notna()
    ref = fn(df.age[ok], df.lvef[ok])
    assert r.loc["age", "lvef"] == pytest.approx(ref.statistic, abs=1e-12)
    assert p.loc["lvef", "age"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert np.all(np.diag(r) == 1) and np.all(np.diag(p) == 0)


def test_correlation_errors(cohort):
    with pytest.raises(StatsError, match="constant"):
        correlation_matrix(cohort.assign(k=1.0), ["age", "k"])
    with pytest.raises(StatsError, match="method"):
        correlation_matrix(cohort, ["age", "lvef"], method="kendall")
    with pytest.raises(StatsError, match="not numeric"):
        correlation_matrix(cohort, ["age", "sex"])
