"""One way to print an estimate with its interval, and a p-value, in tables and figure legends."""
from __future__ import annotations

import math
from typing import Any

from cardio_stats.result import NOT_ESTIMABLE, Estimate, StatsError


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))


def format_ci(estimate: Estimate | dict | tuple | None, digits: int = 3, sep: str = ", ") -> str:
    """"0.812 [0.734, 0.890]" from an Estimate, a metrics.json dict or (estimate, low, high); "–" when missing;
    "not estimable" where the service computed the value and refused it (an unstable fit: its warning says why),
    which "–" would show as never computed."""
    if estimate is None:
        return "–"
    est: Any
    warned: list = []
    if isinstance(estimate, Estimate):
        est, lo, hi, warned = estimate.estimate, estimate.ci_low, estimate.ci_high, estimate.warnings
    elif isinstance(estimate, dict):
        est, lo, hi = estimate.get("estimate"), estimate.get("ci_low"), estimate.get("ci_high")
        warned = estimate.get("warnings") or []
    else:
        est, lo, hi = estimate
    if not _finite(est):
        return NOT_ESTIMABLE if any(str(w).startswith(NOT_ESTIMABLE) for w in warned) else "–"
    if not (_finite(lo) and _finite(hi)):
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} [{lo:.{digits}f}{sep}{hi:.{digits}f}]"


def format_interval(low: float | None, high: float | None, digits: int = 3, sep: str = ", ") -> str:
    """"[0.734, 0.890]", or "" when either end is missing."""
    if not (_finite(low) and _finite(high)):
        return ""
    return f"[{low:.{digits}f}{sep}{high:.{digits}f}]"


def format_difference(diff: float | None, low: float | None, high: float | None, digits: int = 3,
                      why: str = "zero width") -> str:
    """"+0.050 [-0.020, +0.120]" (signed); "+0.050 (no interval)" where a K-fold run could carry none (fewer than
    5 folds, a one-class fold), "+0.000 (no interval: zero width)" where the bounds coincide (two models whose
    AUCs are both 1; `why` may name the row's own reason); "–" without an estimate."""
    if diff is None or not _finite(diff):
        return "–"
    diff = diff + 0.0  # -0.0 prints as "+0.000"
    if not (_finite(low) and _finite(high)):
        return f"{diff:+.{digits}f} (no interval)"
    if low == high:
        return f"{diff:+.{digits}f} (no interval: {why})"
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def format_p(p: float | None) -> str:
    """p-values as journals print them: "<0.001" below a thousandth, three decimals otherwise."""
    if p is None or not _finite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def pick(estimates: list[dict], **keys: Any) -> list[dict]:
    """The estimates whose fields equal `keys` (e.g. metric="auc", method="delong", fold="pooled"); an `extra`
    field is matched inside `extra`. Repeat 0 and no subgroup unless the keys say otherwise."""
    keys = {"repeat": 0, "subgroup": None, **keys}
    out = []
    for e in estimates:
        extra = e.get("extra") or {}
        if all((e.get(k, 0 if k == "repeat" else None) if k in e or k in ("repeat", "subgroup") else extra.get(k))
               == v for k, v in keys.items()):
            out.append(e)
    return out


# The AUC rows a table shows, best first: the cross-validated AUC (nested CV, cardio_stats.nested_cv.NESTED_METHOD,
# for a model refitted on its splits; else cardio_stats.cv_auc.CV_METHOD; both count training variability; "cv: no
# interval" where a K-fold run cannot carry one), DeLong's score interval of one model's scores (before issue 53's
# near-separation work, its small-sample logit interval), and plain DeLong where none exists.
HEADLINE_AUC = ("nested CV (Bates, Hastie & Tibshirani 2023)", "cv: fold DeLong x 2", "cv: no interval",
                "delong-score", "delong-logit", "delong")
_RANK = {m: i for i, m in enumerate(HEADLINE_AUC)}


# The paired DeLong test's methods as a report names them: a one-fold run's (holdout, external) test row carries
# the score interval; identical scores and the pooled variant of a K-fold run, pROC's normal one.
PAIRED_DELONG = {"delong-paired": "paired DeLong", "delong-paired-score": "paired DeLong, score interval"}

# What each interval a report prints counts, in the words of the performance table's "AUC interval" column.
_COUNTS = {HEADLINE_AUC[0]: "refitted on many splits: counts training variability",
           HEADLINE_AUC[1]: "from the run's fold models: counts training variability",
           "cv: fold DeLong + fold covariance": "from the run's fold models: counts training variability",
           HEADLINE_AUC[2]: "too few folds, a fold with one class, or tied scores",
           "delong-score": "DeLong, score interval: one model's scores, ignores training variability",
           "delong-logit": "DeLong, logit small-sample interval: one model's scores, ignores training variability",
           "delong": "DeLong of the pooled scores as one model's: ignores training variability",
           **dict.fromkeys(PAIRED_DELONG.values(), "one model's scores each: ignores training variability")}


def interval_note(method: str) -> str:
    """"<method>: what it counts", for a plugin table that says which interval it prints (docs/statistics.md)."""
    return f"{method}: {_COUNTS[method]}" if method in _COUNTS else str(method)


def headline_auc(estimates: list[dict], **keys: Any) -> dict | None:
    """The AUC row the performance table shows for `keys` (e.g. model=, task=; pooled, repeat 0 unless the keys say
    otherwise): the cross-validated AUC with its interval in a K-fold run (nested CV or fold-DeLong), DeLong's score
    interval of a one-fold run; None where the core estimated none. Its ``method`` names the interval, for a table's
    text."""
    found = [e for e in pick(estimates, metric="auc", **{"fold": "pooled", **keys}) if e.get("method") in _RANK]
    return min(found, key=lambda e: _RANK[e["method"]]) if found else None


def estimate_table(estimates: list[dict], rows: str | tuple[str, ...] = "model", columns: str = "metric",
                   digits: int = 3, **keys: Any) -> Any:
    """A paper's table from the core's estimates: one row per value of `rows`, one column per value of `columns`,
    each cell "estimate [low, high]" (pooled estimates by default; the AUC's headline interval, as the performance
    table shows: ``HEADLINE_AUC``). A plugin's report pivots these instead of computing an interval the core
    already has."""
    import pandas as pd

    rows = (rows,) if isinstance(rows, str) else tuple(rows)
    keys = {"fold": "pooled", **keys}
    found = pick(estimates, **keys)
    if "method" not in keys:  # the AUC the performance table shows: the headline, DeLong's where there is none
        best: dict[tuple, int] = {}
        for e in found:
            if e.get("metric") == "auc" and e.get("method") in _RANK:
                k = tuple(e.get(r) for r in rows)
                best[k] = min(best.get(k, len(_RANK)), _RANK[e["method"]])
        found = [e for e in found if e.get("metric") != "auc"
                 or _RANK.get(str(e.get("method")), -1) == best.get(tuple(e.get(r) for r in rows))]
    chosen = found
    cells: dict[tuple, dict] = {}
    for e in chosen:
        row = cells.setdefault(tuple(e.get(r) for r in rows), dict(zip(rows, (e.get(r) for r in rows))))
        row[str(e.get(columns))] = format_ci(e, digits)
    return pd.DataFrame(list(cells.values())).fillna("–")


def paired_test(tests: list[dict], a: str, b: str, interval: str = "delong") -> dict | None:
    """The core's paired test of models a and b, turned to read a − b (`diff`, `low`, `high`, `p`, `p_holm`: Holm
    within the core's family; `aucs`: the two AUCs a K-fold difference was formed from, a's first, for
    format_paired) and the interval it carries (`method`); None where it ran none. ``interval="cv"``:
    the difference the report prints, the test row's top level (with K folds the cross-validated one, which counts
    training variability: docs/statistics.md; with one fold the paired DeLong one); "delong": the paired DeLong
    test of the pooled scores (`extra.delong` with K folds, the top level with one)."""
    if interval not in ("delong", "cv"):
        raise StatsError(f"interval must be 'delong' or 'cv', got {interval!r}")
    for t in tests:
        e = t.get("extra") or {}
        variant = e.get("delong") if interval == "delong" and e.get("delong") else None
        if variant is not None:
            d, lo, hi, p, holm = (variant.get(k) for k in ("diff", "diff_ci_low", "diff_ci_high", "p_value",
                                                           "p_adjusted"))
            method = variant.get("method", "delong-paired")
        else:
            d, lo, hi, p, holm = (t.get("estimate", e.get("diff")), t.get("ci_low", e.get("diff_ci_low")),
                                  t.get("ci_high", e.get("diff_ci_high")), t.get("p_value"), t.get("p_adjusted"))
            method = t.get("method")
        shown = {"p": p, "p_holm": holm, "method": PAIRED_DELONG.get(method, method)}
        formed = (e.get("auc_a"), e.get("auc_b")) if variant is None else (None, None)  # the K folds' AUCs
        if (t.get("model_a"), t.get("model_b")) == (a, b):
            return {**t, "diff": d, "low": lo, "high": hi, "aucs": formed, **shown}
        if (t.get("model_a"), t.get("model_b")) == (b, a) and d is not None:
            return {**t, "diff": -d, "low": None if hi is None else -hi, "high": None if lo is None else -lo,
                    "aucs": formed[::-1], **shown}
    return None


_FOLDS = " on the run's folds"  # what format_paired adds


def paired_note(cells: Any) -> str:
    """The sentence a table's text needs where any of its cells carries format_paired's addition, else ""."""
    if not any(_FOLDS in str(c) for c in cells):
        return ""
    return (" Where a model refitted for nested CV (its AUC the mean over the refits' splits) is compared with one "
            "that is not, the difference is paired on the run's own folds: the two AUCs it was formed from follow "
            "it (\"from A − B on the run's folds\").")


def format_paired(test: dict | None, shown: tuple[Any, Any], digits: int = 3, interval: bool = True) -> str:
    """A paired_test's difference a − b as format_difference prints it (without its interval: `interval` False);
    where an AUC printed beside it (`shown`: a's and b's headline AUCs) is not one the difference was formed from
    (paired_note), those two follow it, so that no table sets two AUCs beside a difference they do not make."""
    if test is None or not _finite(test.get("diff")):
        return "–"
    text = (format_difference(test.get("diff"), test.get("low"), test.get("high"), digits) if interval
            else f"{test['diff'] + 0.0:+.{digits}f}")
    formed = test.get("aucs") or (None, None)
    if all(_finite(f) for f in formed) and any(
            _finite(v) and round(float(v), digits) != round(float(f), digits) for v, f in zip(shown, formed)):
        text += f", from {formed[0]:.{digits}f} − {formed[1]:.{digits}f}{_FOLDS}"
    return text
