"""bootstrap_ci's published intervals, pinned: a faster AUC must draw the same resamples from the same stream and
give every resample the same AUC, so every interval at a given seed stays what it was.

PINNED holds what bootstrap_ci returned at commit e8f5729 (before the buffered AUC): records with ties,
unstratified with resamples that lack a class, continuous scores, three score levels, patients with 1-3
records (some holding both classes) stratified and not, string ids, one record per patient, more than 65,535
records (32-bit draws), bool labels, BCa and a 90% level. Independently of those numbers, every resample's AUC
is checked against the Mann-Whitney count on the expanded resample (same draws, same final division).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cardio_stats import bootstrap_ci, resample_indices
from cardio_stats.bootstrap import _auc_from_draws, _unit_blocks, patients_of


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    rng = np.random.default_rng(20261125)
    out: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {}
    y = (rng.random(300) < 0.3).astype(int)
    s = np.round(rng.normal(size=300) + 0.8 * y, 1)
    out["records_ties"] = (y, s, dict(n_resamples=500, seed=0))
    out["records_ties_seed7_bca"] = (y, s, dict(n_resamples=400, seed=7, method="bca"))
    out["records_ties_unstratified"] = (y, s, dict(n_resamples=300, seed=3, stratified=False))
    y2 = np.array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    s2 = np.round(rng.normal(size=12) + y2, 1)
    out["tiny_unstratified"] = (y2, s2, dict(n_resamples=200, seed=5, stratified=False))
    y3 = (rng.random(1000) < 0.4).astype(int)
    s3 = rng.normal(size=1000) + 0.5 * y3
    out["records_continuous"] = (y3, s3, dict(n_resamples=300, seed=11))
    y4 = (rng.random(200) < 0.5).astype(int)
    s4 = (rng.integers(0, 3, 200) + y4 * (rng.random(200) < 0.3)).astype(float)
    out["three_levels"] = (y4, s4, dict(n_resamples=300, seed=2))
    n = 400
    ids = rng.permutation(np.repeat(np.arange(n), rng.integers(1, 4, n))[:n])
    y5 = (rng.random(n) < 0.35).astype(int)
    s5 = np.round(rng.normal(size=n) + y5, 1)
    out["patients_ties"] = (y5, s5, dict(n_resamples=400, seed=0, groups=ids))
    out["patients_ties_bca"] = (y5, s5, dict(n_resamples=300, seed=4, groups=ids, method="bca"))
    out["patients_unstratified"] = (y5, s5, dict(n_resamples=300, seed=9, groups=ids, stratified=False))
    out["patients_string_ids"] = (y5, s5, dict(n_resamples=200, seed=1, groups=np.array([f"p{i}" for i in ids])))
    out["singletons"] = (y, s, dict(n_resamples=500, seed=0, groups=rng.permutation(300).astype(str)))
    y7 = (rng.random(70_000) < 0.2).astype(int)
    s7 = np.round(rng.normal(size=70_000) + y7, 2)
    out["large_uint32"] = (y7, s7, dict(n_resamples=10, seed=0))
    out["bool_level90"] = (y.astype(bool), s, dict(n_resamples=300, seed=13, level=0.9))
    return out


CASES = _cases()

# name: (estimate, ci_low, ci_high, method, se, valid resamples, warnings), from bootstrap_ci at e8f5729
PINNED = {
    "records_ties": (0.6717141938250428, 0.6079002733704975, 0.7417586835334476, "bootstrap-percentile",
                     0.03504782655381904, 500, []),
    "records_ties_seed7_bca": (0.6717141938250428, 0.6027020658456419, 0.7448163405116759, "bootstrap-bca",
                               0.03796314357861971, 400, []),
    "records_ties_unstratified": (0.6717141938250428, 0.6036194789879932, 0.7441384059006251,
                                  "bootstrap-percentile", 0.03673831268779222, 300, []),
    "tiny_unstratified": (0.8, 0.45, 1.0, "bootstrap-percentile", 0.17594185167405454, 183,
                          ["auc undefined in 17 of 200 resamples; those were left out"]),
    "records_continuous": (0.6031013257575758, 0.5658204181885823, 0.6363872049174784, "bootstrap-percentile",
                           0.017375201949415095, 300, []),
    "three_levels": (0.5825743168851967, 0.5179273846461816, 0.6508244920428385, "bootstrap-percentile",
                     0.03668833742727037, 300, []),
    "patients_ties": (0.7604282876656417, 0.7005900452807626, 0.80485373673457, "bootstrap-percentile",
                      0.025876590009374454, 400, []),
    "patients_ties_bca": (0.7604282876656417, 0.7114975786093609, 0.8008159678008706, "bootstrap-bca",
                          0.022359636016357175, 300, []),
    "patients_unstratified": (0.7604282876656417, 0.7135978046630937, 0.8024841690081437, "bootstrap-percentile",
                              0.023117828274079922, 300, []),
    "patients_string_ids": (0.7604282876656417, 0.708256144582001, 0.8104120567602746, "bootstrap-percentile",
                            0.025854184573279027, 200, []),
    "singletons": (0.6717141938250428, 0.6079002733704975, 0.7417586835334476, "bootstrap-percentile",
                   0.03504782655381904, 500, []),
    "large_uint32": (0.7578468222561512, 0.7526673400371783, 0.7603654608062932, "bootstrap-percentile",
                     0.002799440640101466, 10, []),
    "bool_level90": (0.6717141938250428, 0.6118634755574613, 0.7308935463121784, "bootstrap-percentile",
                     0.03526535556353295, 300, []),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_interval_is_the_published_one_to_the_last_bit(name):
    y, s, kw = CASES[name]
    e = bootstrap_ci(y, s, **kw)
    got = (e.estimate, e.ci_low, e.ci_high, e.method, e.extra["se"], e.extra["n_valid_resamples"], e.warnings)
    assert got == PINNED[name]


def _expanded_auc(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> float:
    """Mann-Whitney AUC of one expanded resample, ties one half: 2U counted pair by pair through sorting."""
    yy, ss = y[idx], s[idx]
    neg = np.sort(ss[yy == 0])
    pos = ss[yy == 1]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    twice_u = int(np.searchsorted(neg, pos, side="left").sum() + np.searchsorted(neg, pos, side="right").sum())
    return twice_u / (2.0 * pos.size * neg.size)


@pytest.mark.parametrize("name", ["records_ties", "records_ties_unstratified", "tiny_unstratified", "three_levels",
                                  "patients_ties", "patients_unstratified", "records_continuous"])
def test_every_resample_auc_is_the_expanded_resample_auc(name):
    y, s, kw = CASES[name]
    y = y.astype(np.int8)
    stratified, groups, n_res = kw.get("stratified", True), kw.get("groups"), min(kw["n_resamples"], 150)
    patients = patients_of(groups, y.size)
    unit = None if patients is None or patients.singletons else patients
    fast = _auc_from_draws(y, s, _unit_blocks(y.size, n_res, kw["seed"], y if stratified else None, patients), unit)
    idx = resample_indices(y.size, n_res, kw["seed"], strata=y if stratified else None, groups=groups)
    np.testing.assert_array_equal(fast, [_expanded_auc(y, s, i) for i in idx])
