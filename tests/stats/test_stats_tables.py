"""Table 1 (through tableone): p-values, SMDs and cells against scipy.stats and NumPy; correlation matrices
against scipy and pandas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, f_oneway, fisher_exact, kruskal, pearsonr, skew, spearmanr, ttest_ind
from statsmodels.stats.oneway import anova_oneway

from cardio_stats import StatsError, correlation_matrix, table_one


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    df = pd.DataFrame({
        "responder": rng.random(n) < 0.45,
        "age": rng.normal(66, 9, n),
        "lvef": rng.normal(27, 6, n),
        "nt_probnp": rng.lognormal(7, 0.9, n),  # right-skewed, as in real cohorts
        "sex": rng.choice(["F", "M"], n, p=[0.3, 0.7]),
        "lbbb": (rng.random(n) < 0.6).astype(int),
        "diabetes": rng.random(n) < 0.3,
        "nyha": rng.choice(["II", "III", "IV"], n, p=[0.4, 0.5, 0.1]),
        "rare": rng.choice(["yes", "no"], n, p=[0.04, 0.96]),
        "site": rng.choice(["A", "B", "C"], n),
    })
    df.loc[df.responder, "lvef"] += 3
    df.loc[:4, "age"] = np.nan
    return df


def _row(t, var, level=None):
    sel = (t.variable == var) & (t.level.isna() if level is None else t.level == level)
    assert sel.sum() == 1, t[t.variable == var]
    return t[sel].iloc[0]


def _col(t, prefix):
    return [c for c in t.columns if c.startswith(prefix)][0]


def test_continuous_mean_sd_welch_and_student(cohort):
    t = table_one(cohort, "responder", ["age", "lvef"], [])
    g1, g0 = cohort[cohort.responder], cohort[~cohort.responder]
    for v in ("age", "lvef"):
        r = _row(t, v)
        ref = ttest_ind(g0[v].dropna(), g1[v].dropna(), equal_var=False).pvalue
        assert r.p_value == pytest.approx(ref, rel=1e-12) and r.test == "Welch t-test" and r.summary == "mean (SD)"
    assert _row(t, "age").missing == 5
    student = table_one(cohort, "responder", ["lvef"], [], equal_var=True)
    assert _row(student, "lvef").p_value == pytest.approx(ttest_ind(g0.lvef, g1.lvef).pvalue, rel=1e-12)
    assert _row(student, "lvef").test == "Student t-test"
    col = _col(t, "responder=True")
    assert col == f"responder=True (n={len(g1)})"
    assert _row(t, "lvef")[col] == f"{g1.lvef.mean():.1f} ({g1.lvef.std():.1f})"
    assert _row(t, "lvef")["overall (n=120)"] == f"{cohort.lvef.mean():.1f} ({cohort.lvef.std():.1f})"
    # SMD: |difference of means| / sqrt of the mean of the two variances
    smd = abs(g1.lvef.mean() - g0.lvef.mean()) / np.sqrt((g1.lvef.var() + g0.lvef.var()) / 2)
    assert _row(t, "lvef").SMD == pytest.approx(smd, abs=5e-4)  # shown to 3 decimals


def test_skewed_variable_is_median_iqr_with_kruskal_wallis(cohort):
    assert abs(skew(cohort.nt_probnp)) > 1 and abs(skew(cohort.lvef)) < 1
    t = table_one(cohort, "responder", ["lvef", "nt_probnp"], [])
    r = _row(t, "nt_probnp")
    g1, g0 = cohort[cohort.responder].nt_probnp, cohort[~cohort.responder].nt_probnp
    assert r.summary == "median [Q1, Q3]" and r.test == "Kruskal–Wallis"
    assert r.p_value == pytest.approx(kruskal(g0, g1).pvalue, rel=1e-12)
    q1, med, q3 = np.percentile(g1, [25, 50, 75])
    assert r[_col(t, "responder=True")] == f"{med:.1f} [{q1:.1f},{q3:.1f}]"
    assert _row(t, "lvef").summary == "mean (SD)"
    forced = table_one(cohort, "responder", ["nt_probnp"], [], nonnormal=[])
    assert _row(forced, "nt_probnp").summary == "mean (SD)" and _row(forced, "nt_probnp").test == "Welch t-test"


def test_categorical_tests_are_named_and_binary_variables_are_one_labelled_row(cohort):
    t = table_one(cohort, "responder", [], ["sex", "lbbb", "diabetes", "nyha", "rare"])
    sex = pd.crosstab(cohort.sex, cohort.responder).to_numpy()
    assert _row(t, "sex", "M").p_value == pytest.approx(chi2_contingency(sex, correction=True).pvalue, rel=1e-12)
    assert _row(t, "sex", "M").test == "chi-square (Yates)"
    rare = pd.crosstab(cohort.rare, cohort.responder).to_numpy()
    assert (chi2_contingency(rare).expected_freq < 5).any()
    assert _row(t, "rare", "yes").p_value == pytest.approx(fisher_exact(rare).pvalue, rel=1e-12)
    assert _row(t, "rare", "yes").test == "Fisher exact"
    nyha = pd.crosstab(cohort.nyha, cohort.responder).to_numpy()
    assert _row(t, "nyha").p_value == pytest.approx(chi2_contingency(nyha).pvalue, rel=1e-12)
    assert _row(t, "nyha").test.startswith("chi-square")
    # two-level variables: one row naming the level counted (True reads "yes"); three levels: header + 3 rows
    assert (t.variable == "sex").sum() == 1 and (t.variable == "lbbb").sum() == 1
    assert (t.variable == "diabetes").sum() == 1 and (t.variable == "nyha").sum() == 4
    col = _col(t, "responder=True")
    males = int(((cohort.sex == "M") & cohort.responder).sum())
    assert _row(t, "sex", "M")[col] == f"{males} ({100 * males / cohort.responder.sum():.1f})"
    flagged = int((cohort.lbbb.astype(bool) & cohort.responder).sum())
    assert _row(t, "lbbb", "1")[col] == f"{flagged} ({100 * flagged / cohort.responder.sum():.1f})"
    assert _row(t, "diabetes", "yes").summary == "n (%)"
    # SMD of a binary variable: |p1 - p0| / sqrt of the mean of p(1 - p)
    p1, p0 = cohort.lbbb[cohort.responder].mean(), cohort.lbbb[~cohort.responder].mean()
    assert _row(t, "lbbb", "1").SMD == pytest.approx(abs(p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2),
                                                     abs=5e-4)


def test_more_than_two_groups_use_welch_anova_and_pairwise_smds(cohort):
    t = table_one(cohort, "site", ["lvef"], ["sex"])
    samples = [cohort.lvef[cohort.site == s] for s in ("A", "B", "C")]
    assert _row(t, "lvef").p_value == pytest.approx(anova_oneway(samples, use_var="unequal").pvalue, rel=1e-10)
    assert _row(t, "lvef").test == "Welch ANOVA"
    assert {"SMD (A vs B)", "SMD (A vs C)", "SMD (B vs C)"} <= set(t.columns)
    sex = pd.crosstab(cohort.sex, cohort.site).to_numpy()
    assert _row(t, "sex", "M").p_value == pytest.approx(chi2_contingency(sex).pvalue, rel=1e-12)
    assert _row(t, "sex", "M").test == "chi-square"
    classic = table_one(cohort, "site", ["lvef"], [], equal_var=True)
    assert _row(classic, "lvef").p_value == pytest.approx(f_oneway(*samples).pvalue, rel=1e-10)


def test_display_names_notes_and_untestable_variables(cohort):
    t = table_one(cohort.assign(const=1.0, ckd=0), "responder", ["lvef", "const"], ["sex", "ckd"],
                  display_names={"lvef": "LVEF (%)"})
    assert pd.isna(_row(t, "ckd", "0").p_value) and _row(t, "ckd", "0").test == "not tested: one level"
    assert "LVEF (%)" in set(t.variable) and "lvef" not in set(t.variable)
    assert pd.isna(_row(t, "const").p_value) and _row(t, "const").test == "not tested: no variation"
    assert any("tableone" in n for n in t.attrs["notes"]) and any("SMD" in n for n in t.attrs["notes"])


def test_table_one_without_a_group_describes_the_cohort(cohort):
    """group=None: a paper's one-column Table 1 (echo_cmr's): the grouped table's overall cells, no test, no SMD."""
    grouped = table_one(cohort, "responder", ["age", "nt_probnp"], ["sex", "nyha"])
    t = table_one(cohort, None, ["age", "nt_probnp"], ["sex", "nyha"], display_names={"age": "Age (years)"})
    assert list(t.columns) == ["variable", "level", "summary", "overall (n=120)", "missing"]
    assert _row(t, "Age (years)")["overall (n=120)"] == f"{cohort.age.mean():.1f} ({cohort.age.std():.1f})"
    assert _row(t, "Age (years)").missing == 5 and _row(t, "nt_probnp").summary == "median [Q1, Q3]"
    assert list(t["overall (n=120)"]) == list(grouped["overall (n=120)"])  # the same cells, by the same code
    n_male = int((cohort.sex == "M").sum())
    assert _row(t, "sex", "M")["overall (n=120)"] == f"{n_male} ({100 * n_male / 120:.1f})"
    assert list(t.loc[t.variable == "nyha", "level"].dropna()) == ["II", "III", "IV"]
    assert not any("SMD" in n for n in t.attrs["notes"])


@pytest.mark.parametrize("group", ["responder", None])
def test_a_categorical_with_missing_values_counts_the_others(cohort, group):
    """A 0/1 column with empty cells (a label not known for every patient): n (%) of the non-missing values, the
    empty ones counted as missing (it raised a TypeError: pandas' string dtype made the missing value a float)."""
    flag = pd.Series([0.0, 1.0, np.nan, 1.0] * 30)
    t = table_one(cohort.assign(wma=flag), group, ["age"], ["wma"])
    row = _row(t, "wma", "1")
    assert row["overall (n=120)"] == "60 (66.7)" and row.missing == 30


def test_table_one_errors(cohort):
    with pytest.raises(StatsError, match="not found"):
        table_one(cohort, "responder", ["weight"], [])
    with pytest.raises(StatsError, match="1 level"):
        table_one(cohort.assign(g=1), "g", ["age"], [])
    with pytest.raises(StatsError, match="not numeric"):
        table_one(cohort, "responder", ["sex"], [])
    with pytest.raises(StatsError, match="infinite"):
        table_one(cohort.assign(x=np.inf), "responder", ["x"], [])
    with pytest.raises(StatsError, match="also listed"):
        table_one(cohort, "responder", ["lvef"], ["responder"])


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
