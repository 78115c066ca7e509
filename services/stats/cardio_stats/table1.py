""""Table 1": baseline characteristics by group, computed by the `tableone` package (Pollard et al., JAMIA Open
2018): mean (SD) or median [Q1, Q3] for skewed variables, n (%), an overall column, standardized mean differences,
and the test behind every p-value named."""
from __future__ import annotations

import warnings
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy.stats import skew
from statsmodels.stats.oneway import anova_oneway

from cardio_stats.result import StatsError

# |sample skewness| above this: median [Q1, Q3] and Kruskal–Wallis instead of mean (SD) and a t-test or ANOVA
SKEW_LIMIT = 1.0
# the level a two-level variable's one row counts, when it has one of these (else the last level in sorted order)
POSITIVE = ("1", "1.0", "True", "true", "yes", "Yes", "y", "Y", "positive", "present")
# tableone's test names, as the table shows them
TESTS = {"Welch’s T-test": "Welch t-test", "Pooled T-test": "Student t-test", "One-way ANOVA": "one-way ANOVA",
         "Kruskal-Wallis": "Kruskal–Wallis", "Fisher's exact": "Fisher exact",
         "Chi-squared (warning: expected count < 5)": "chi-square (some expected counts < 5)"}
SUMMARY = {"normal": "mean (SD)", "skewed": "median [Q1, Q3]", "categorical": "n (%)"}


def _welch_anova(*samples: np.ndarray) -> float:
    """Welch's ANOVA (unequal variances) for > 2 groups; tableone's own is the equal-variance one."""
    return float(anova_oneway([s[~np.isnan(s)] for s in samples], use_var="unequal").pvalue)


_welch_anova.__name__ = "Welch ANOVA"  # tableone names a custom test by its function's name


def _check(df: pd.DataFrame, group: str | None, continuous: list[str], categorical: list[str]) -> list:
    """The group's levels (sorted; [] without a group), after the checks every caller relies on."""
    if group is not None and group not in df.columns:
        raise StatsError(f"group column {group!r} not found")
    wanted = [*continuous, *categorical]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise StatsError(f"column(s) {missing} not found")
    if group in wanted:
        raise StatsError(f"the group column {group!r} is also listed as a variable")
    if not wanted:
        raise StatsError("no variables given for Table 1")
    if len(set(wanted)) < len(wanted):
        raise StatsError(f"a variable is listed twice: {sorted({c for c in wanted if wanted.count(c) > 1})}")
    levels = [] if group is None else sorted(df[group].dropna().unique().tolist(), key=str)
    if group is not None and len(levels) < 2:
        raise StatsError(f"group column {group!r} has {len(levels)} level(s) ({levels}); Table 1 compares >= 2 groups")
    for var in continuous:
        col = df[var]
        if col.dtype == bool or not pd.api.types.is_numeric_dtype(col):
            raise StatsError(f"continuous variable {var!r} is not numeric (dtype {col.dtype}); list it as categorical")
        n_inf = int(np.isinf(col.to_numpy(dtype=np.float64)).sum())
        if n_inf:
            raise StatsError(f"continuous variable {var!r} has {n_inf} infinite value(s)")
    return levels


#: Table 1's tests: "adaptive" (the default: Welch, or Kruskal–Wallis when skewed; chi-square, or Fisher for a small
#: 2x2) or "student-chi2" (what most clinical papers state: Student t and Pearson chi-square for every variable)
Table1Tests = Literal["adaptive", "student-chi2"]
TEST_SETS: tuple[Table1Tests, ...] = get_args(Table1Tests)


def _chi_square(yates: bool):
    """tableone custom test: Pearson chi-square of the contingency rows tableone hands it, Yates-corrected when 2x2
    and `yates` (SciPy's default, which reproduces the SPECT paper's CKD p 0.786; the ECG paper's 0.235 is the
    uncorrected one)."""
    from scipy.stats import chi2_contingency

    def test(*rows) -> float:
        counts = np.asarray(rows, dtype=float)
        counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
        if min(counts.shape) < 2:
            return float("nan")
        return float(chi2_contingency(counts, correction=yates)[1])

    test.__name__ = "chi-square (Yates)" if yates else "chi-square (Pearson, uncorrected)"
    return test


def note_on_tests(table: pd.DataFrame) -> str:
    """One sentence naming the test behind each p-value of a Table 1 (from its `test` column), for its caption."""
    rows = table[table["test"].notna()]
    by_test: dict[str, list[str]] = {}
    for var, test in zip(rows["variable"], rows["test"]):
        by_test.setdefault(str(test), []).append(str(var))
    return "P-values: " + "; ".join(f"{t} ({', '.join(v)})" for t, v in by_test.items()) + "." if by_test else ""


def _text(v) -> str | None:
    """A category as text (True -> "True", 1.0 -> "1"); missing stays missing."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _shown_level(levels: list[str]) -> str:
    """The level whose count is the one row of a two-level variable."""
    hits = [lv for lv in levels if lv in POSITIVE]
    return hits[0] if hits else sorted(levels)[-1]


def _reason_untested(samples: list[np.ndarray]) -> str:
    if any(s.size < 2 for s in samples):
        return "not tested: a group has < 2 values"
    if all(np.ptp(s) == 0 for s in samples):
        return "not tested: no variation"
    return "not tested"


def table_one(df: pd.DataFrame, group: str | None, continuous: list[str], categorical: list[str],
              equal_var: bool = False, digits: int = 1, *, nonnormal: list[str] | None = None,
              display_names: dict | None = None, tests: Table1Tests = "adaptive",
              yates: bool = True) -> pd.DataFrame:
    """Baseline table by `group`, computed by tableone.

    Continuous variables: mean (SD) with a Welch t-test (Student with ``equal_var=True``; Welch ANOVA for > 2
    groups, one-way ANOVA with ``equal_var``), or, when skewed (``nonnormal``, by default those with
    |skewness| > 1), median [Q1, Q3] with Kruskal–Wallis. Categorical: n (%) with chi-square (Yates for 2x2),
    Fisher exact for a 2x2 table with an expected count or a group count < 5; a two-level variable is one row
    naming the level it counts (1, True as "yes", ... else the last level). SMD: absolute standardized mean difference
    between two groups (one column per pair of groups when more). `display_names` relabels the variable column.

    ``tests="student-chi2"``: every continuous variable mean (SD) with Student's t (one-way ANOVA for > 2 groups) and
    every categorical one Pearson's chi-square (Yates-corrected for a 2x2 table with ``yates``), never Fisher or
    Kruskal–Wallis, as papers that state "Student t-test and chi-square" computed them.

    Columns: variable, level, summary, overall (n=N), one per group "group=level (n=k)", SMD..., p_value, test,
    missing (values left out as missing). ``attrs["notes"]`` says what the columns mean and lists the warnings.

    ``group=None``: the overall column alone (a cohort described, as a paper's one-column Table 1), no test, no SMD.
    """
    from tableone import TableOne  # tableone loads its plotting stack: only when a table is made

    if tests not in TEST_SETS:
        raise StatsError(f"Table 1 tests must be one of {TEST_SETS}, got {tests!r}")
    levels = _check(df, group, continuous, categorical)
    if group is None:
        return _overall_only(df, list(continuous), list(categorical), digits, nonnormal, display_names)
    if tests == "student-chi2":
        nonnormal, equal_var = [], True
    data = df.loc[df[group].notna(), [group, *continuous, *categorical]].copy()
    data[group] = data[group].map(_text)
    headers = {_text(lv): f"{group}={lv} (n={int((data[group] == _text(lv)).sum())})" for lv in levels}
    nonnormal, order, limit = _prepare(data, continuous, categorical, nonnormal)
    htest = {v: _welch_anova for v in continuous if v not in nonnormal} if len(levels) > 2 and not equal_var else None
    if tests == "student-chi2":  # tableone would switch a small 2x2 to Fisher: the paper's chi-square instead
        htest = {v: _chi_square(yates and len(order.get(v, [])) == 2 and len(levels) == 2) for v in categorical}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # tableone's own use of deprecated pandas calls is not ours to fix; ours stay errors in the tests
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="tableone")
        t = TableOne(data, columns=[*continuous, *categorical], categorical=list(categorical),
                     continuous=list(continuous), groupby=group, nonnormal=list(nonnormal), pval=True,
                     htest_name=True, smd=True, overall=True, missing=True, order=order or None, limit=limit or None,
                     decimals=digits, ttest_equal_var=equal_var, label_suffix=False, include_null=False,
                     htest=htest, dip_test=False, normal_test=False, tukey_test=False)
    notes = sorted({str(w.message).splitlines()[0] for w in caught if not issubclass(w.category, DeprecationWarning)})
    out = _reshape(t, data, group, list(continuous), list(categorical), list(nonnormal), headers, display_names)
    out.attrs["notes"] = [
        SUMMARY_NOTE, "SMD: absolute standardized mean difference (categorical: Yang & Dalton 2012); < 0.1 is commonly "
        "read as balance", "computed by tableone", *notes]
    return out


SUMMARY_NOTE = (f"continuous: mean (SD), or median [Q1, Q3] when skewed (|skewness| > {SKEW_LIMIT:g} unless listed); "
                "categorical: n (%) of the non-missing values")


def _prepare(data: pd.DataFrame, continuous: list[str], categorical: list[str],
             nonnormal: list[str] | None) -> tuple[list[str], dict, dict]:
    """(skewed variables, tableone's order and limit): a two-level variable one row naming its counted level;
    `data`'s categorical columns become text in place."""
    if nonnormal is None:
        nonnormal = [v for v in continuous if data[v].notna().sum() > 2 and data[v].nunique() > 1
                     and abs(skew(data[v].to_numpy(dtype=float), nan_policy="omit", bias=False)) > SKEW_LIMIT]
    order, limit = {}, {}
    for var in categorical:
        # built as objects: Series.map infers pandas' string dtype, whose missing value is a float NaN, not None
        data[var] = pd.Series([_text(v) for v in data[var]], index=data.index, dtype=object)
        cats = sorted({v for v in data[var] if v is not None})
        if len(cats) == 2:  # one labelled row
            shown = _shown_level(cats)
            order[var], limit[var] = [shown, *[c for c in cats if c != shown]], 1
        elif cats:
            order[var] = cats
    return list(nonnormal), order, limit


def _overall_only(df: pd.DataFrame, continuous: list[str], categorical: list[str], digits: int,
                  nonnormal: list[str] | None, display_names: dict | None) -> pd.DataFrame:
    """table_one without a group: the cohort described in one column (no test, no SMD)."""
    from tableone import TableOne

    data = df[[*continuous, *categorical]].copy()
    nonnormal, order, limit = _prepare(data, continuous, categorical, nonnormal)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="tableone")
        t = TableOne(data, columns=[*continuous, *categorical], categorical=list(categorical),
                     continuous=list(continuous), nonnormal=nonnormal, pval=False, smd=False, overall=True,
                     missing=True, order=order or None, limit=limit or None, decimals=digits, label_suffix=False,
                     include_null=False, dip_test=False, normal_test=False, tukey_test=False)
    out = _reshape(t, data, None, continuous, categorical, nonnormal, {}, display_names)
    out = out.drop(columns=["p_value", "test"])
    out.attrs["notes"] = [SUMMARY_NOTE, "computed by tableone"]
    return out


def _test_of(var: str, htest: pd.DataFrame, data: pd.DataFrame, group: str, headers: dict,
             continuous: bool) -> tuple[float | None, str]:
    """A variable's p-value and the name of its test, or None and why it was not tested."""
    p = htest.loc[var, "P-Value"]
    test = TESTS.get(htest.loc[var, "Test"], htest.loc[var, "Test"])
    if test == "Chi-squared":
        test = "chi-square (Yates)" if data[var].nunique() == 2 and len(headers) == 2 else "chi-square"
    if not continuous and data[var].nunique() < 2:
        return None, "not tested: one level" if data[var].notna().any() else "not tested: all missing"
    if p is None or not np.isfinite(float(p)):
        samples = [data.loc[data[group] == lv, var] for lv in headers]
        return None, _reason_untested([s.to_numpy(dtype=float) for s in samples]) if continuous else (
            "not tested: all missing" if data[var].isna().all() else "not tested")
    return float(p), test


def _reshape(t, data: pd.DataFrame, group: str | None, continuous: list[str], categorical: list[str],
             nonnormal: list[str], headers: dict, display_names: dict | None) -> pd.DataFrame:
    """tableone's display table as cardio's: one row per continuous variable and two-level variable, a header
    row and one row per level for the others; numeric p-values and SMDs."""
    grouped = group is not None
    table = t.tableone.droplevel(0, axis=1) if grouped else t.tableone  # drop the "Grouped by ..." level
    overall = f"overall (n={len(data)})"
    smd_cols = sorted(c for c in t.smd_table.columns) if grouped else []
    pair = {c: ("SMD" if len(smd_cols) == 1 else c.replace(",", " vs ")) for c in smd_cols}
    htest = t.htest_table if group is not None else None
    names = display_names or {}
    rows: list[dict] = []

    def cells(r: pd.Series) -> dict:
        return {overall: r["Overall"], **{h: r[lv] for lv, h in headers.items()}}

    for var in [*continuous, *categorical]:
        p, test = (None, None) if htest is None or group is None else _test_of(var, htest, data, group, headers,
                                                                               var in continuous)
        var_varies = data[var].nunique() > 1
        base = {"variable": names.get(var, var), "level": None,
                "summary": SUMMARY["skewed" if var in nonnormal else "normal"] if var in continuous
                else SUMMARY["categorical"],
                **{pair[c]: round(abs(float(t.smd_table.loc[var, c])), 3) if pd.notna(t.smd_table.loc[var, c])
                   and var_varies else None for c in smd_cols},
                "p_value": None if p is None else float(p), "test": test, "missing": int(data[var].isna().sum())}
        block = table.loc[[var]] if var in table.index.get_level_values(0) else table.iloc[:0]
        if var in continuous or len(block) == 1:
            level = None if var in continuous else block.index[0][1]
            level = "yes" if level in ("True", "true") and data[var].notna().any() else level  # a boolean flag
            rows.append({**base, "level": level, **cells(block.iloc[0])} if len(block) else base)
            continue
        rows.append({**base, overall: "", **{h: "" for h in headers.values()}})
        for (_, level), r in block.iterrows():
            rows.append({"variable": names.get(var, var), "level": level, "summary": SUMMARY["categorical"],
                         **cells(r), "p_value": None, "test": None, "missing": None})
    columns = ["variable", "level", "summary", overall, *headers.values(), *pair.values(), "p_value", "test",
               "missing"]
    out = pd.DataFrame(rows, columns=columns)
    out["missing"] = out["missing"].astype("Int64")
    return out
