""""Table 1": baseline characteristics by group with t-test / chi-square / Fisher p-values."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, f_oneway, fisher_exact, ttest_ind
from statsmodels.stats.oneway import anova_oneway

from cardio.stats.result import StatsError


def _group_labels(df: pd.DataFrame, group: str) -> tuple[list, dict]:
    values = df[group].dropna()
    levels = sorted(values.unique().tolist(), key=str)
    if len(levels) < 2:
        raise StatsError(f"group column {group!r} has {len(levels)} level(s) ({levels}); Table 1 compares >= 2 groups")
    headers = {lv: f"{group}={lv} (n={int((values == lv).sum())})" for lv in levels}
    return levels, headers


def _continuous_test(samples: list[np.ndarray], equal_var: bool) -> tuple[float | None, str]:
    if any(s.size < 2 for s in samples):
        return None, "not tested: a group has < 2 values"
    if all(np.ptp(s) == 0 for s in samples):
        return None, "not tested: no variation"
    if len(samples) == 2:
        p = ttest_ind(samples[0], samples[1], equal_var=equal_var).pvalue
        return float(p), "Student t-test" if equal_var else "Welch t-test"
    if equal_var:
        return float(f_oneway(*samples).pvalue), "one-way ANOVA"
    return float(anova_oneway(samples, use_var="unequal").pvalue), "Welch ANOVA"


def _categorical_test(table: np.ndarray) -> tuple[float | None, str]:
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None, "not tested: one level"
    expected = chi2_contingency(table, correction=False).expected_freq
    if table.shape == (2, 2):
        if (expected < 5).any():  # the chi-square approximation fails with small expected counts
            return float(fisher_exact(table).pvalue), "Fisher exact"
        return float(chi2_contingency(table, correction=True).pvalue), "chi-square (Yates)"
    p = float(chi2_contingency(table, correction=False).pvalue)
    small = int((expected < 5).sum())
    return p, f"chi-square ({small} cell(s) with expected count < 5)" if small else "chi-square"


def table_one(df: pd.DataFrame, group: str, continuous: list[str], categorical: list[str],
              equal_var: bool = False, digits: int = 1) -> pd.DataFrame:
    """Baseline table: "mean ± SD" (Welch t-test, or Student with ``equal_var=True``) and "n (%)" per level
    (chi-square with Yates correction for 2x2, Fisher exact when a 2x2 expected count is < 5).

    Columns: variable, level, one per group, p_value, test, missing (values left out as missing).
    """
    if group not in df.columns:
        raise StatsError(f"group column {group!r} not found")
    wanted = [*continuous, *categorical]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise StatsError(f"column(s) {missing} not found")
    if group in wanted:
        raise StatsError(f"the group column {group!r} is also listed as a variable")
    if not wanted:
        raise StatsError("no variables given for Table 1")
    levels, headers = _group_labels(df, group)
    data = df[df[group].notna()]
    rows: list[dict] = []
    for var in continuous:
        col = data[var]
        if col.dtype == bool or not pd.api.types.is_numeric_dtype(col):
            raise StatsError(f"continuous variable {var!r} is not numeric (dtype {col.dtype}); list it as categorical")
        values = col.to_numpy(dtype=np.float64)
        if np.isinf(values).any():
            raise StatsError(f"continuous variable {var!r} has {int(np.isinf(values).sum())} infinite value(s)")
        row = {"variable": var, "level": None}
        samples = []
        for lv in levels:
            s = values[(data[group] == lv).to_numpy()]
            s = s[~np.isnan(s)]
            samples.append(s)
            row[headers[lv]] = (f"{s.mean():.{digits}f} ± {s.std(ddof=1):.{digits}f}" if s.size >= 2
                                else (f"{s.mean():.{digits}f}" if s.size else "–"))
        row["p_value"], row["test"] = _continuous_test(samples, equal_var)
        row["missing"] = int(np.isnan(values).sum())
        rows.append(row)
    for var in categorical:
        col = data[var]
        present = col.notna().to_numpy()
        cats = sorted(col[present].unique().tolist(), key=str)
        table = np.array([[int(((col == c) & (data[group] == lv)).sum()) for lv in levels] for c in cats])
        p, test = _categorical_test(table) if cats else (None, "not tested: all missing")
        rows.append({"variable": var, "level": None, **{headers[lv]: "" for lv in levels}, "p_value": p,
                     "test": test, "missing": int((~present).sum())})
        totals = table.sum(axis=0) if cats else np.zeros(len(levels))
        for i, c in enumerate(cats):
            row = {"variable": var, "level": str(c), "p_value": None, "test": None, "missing": None}
            for j, lv in enumerate(levels):
                pct = 100.0 * table[i, j] / totals[j] if totals[j] else 0.0
                row[headers[lv]] = f"{table[i, j]} ({pct:.{digits}f}%)"
            rows.append(row)
    columns = ["variable", "level", *headers.values(), "p_value", "test", "missing"]
    return pd.DataFrame(rows, columns=columns)
