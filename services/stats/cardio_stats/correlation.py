"""Pearson / Spearman correlation matrices with p-values (pairwise complete observations)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from cardio_stats.result import StatsError


def correlation_matrix(df: pd.DataFrame, columns: list[str] | None = None,
                       method: str = "pearson") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Correlation coefficients and two-sided p-values (scipy pearsonr/spearmanr) for every pair of columns."""
    method = str(method).lower()
    tests = {"pearson": pearsonr, "spearman": spearmanr}
    if method not in tests:
        raise StatsError(f"method must be 'pearson' or 'spearman', got {method!r}")
    cols = list(df.columns if columns is None else columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StatsError(f"column(s) {missing} not found")
    if len(cols) < 2:
        raise StatsError(f"a correlation matrix needs at least 2 columns, got {len(cols)}")
    data = {}
    for c in cols:
        col = df[c].astype(np.int8) if df[c].dtype == bool else df[c]
        if not pd.api.types.is_numeric_dtype(col):
            raise StatsError(f"column {c!r} is not numeric (dtype {col.dtype})")
        values = col.to_numpy(dtype=np.float64)
        if np.isinf(values).any():
            raise StatsError(f"column {c!r} has {int(np.isinf(values).sum())} infinite value(s)")
        data[c] = values
    r = pd.DataFrame(np.eye(len(cols)), index=cols, columns=cols)
    p = pd.DataFrame(np.zeros((len(cols), len(cols))), index=cols, columns=cols)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            ok = ~np.isnan(data[a]) & ~np.isnan(data[b])  # pairwise complete, as pandas .corr()
            if ok.sum() < 3:
                raise StatsError(f"columns {a!r} and {b!r} share only {int(ok.sum())} complete record(s); need >= 3")
            for name in (a, b):
                if np.ptp(data[name][ok]) == 0:
                    raise StatsError(f"column {name!r} is constant over the records shared with "
                                     f"{b if name == a else a!r}: correlation undefined")
            res = tests[method](data[a][ok], data[b][ok])
            r.loc[a, b] = r.loc[b, a] = float(res.statistic)
            p.loc[a, b] = p.loc[b, a] = float(res.pvalue)
    return r, p
