"""Bootstrap confidence intervals: vectorized stratified AUC bootstrap, generic metric bootstrap, percentile and BCa.

Every bootstrap here resamples records, or, given ``groups`` (the patient of each record), patients: a
drawn patient brings all of its records, so records of one patient never count as independent evidence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from cardio_stats.result import Estimate, StatsError
from cardio_stats.validation import as_binary_labels, as_scores, check_level, check_n_resamples

# Cells (resamples x records) handled at once by the vectorized AUC: small enough that the counts and their
# cumulative sums stay in cache (measured fastest around 128 k at n = 2,000: 64 resamples a chunk).
_CHUNK_CELLS = 131_072
# Cells of one stack of resamples handed to a row-wise statistic (bootstrap_metric's ``rows``): a few MB.
_ROWS_CELLS = 262_144


@dataclass(frozen=True)
class Patients:
    """The patient of every record, numbered 0..n_groups-1 in order of first appearance."""

    codes: np.ndarray
    n_groups: int

    @property
    def singletons(self) -> bool:
        """Every patient has exactly one record: resampling patients is resampling records."""
        return self.n_groups == self.codes.size

    def extra(self) -> dict:
        """What an Estimate records about its resampling unit."""
        return {"resampled": "patients", "n_groups": int(self.n_groups)}

    def strata(self, record_strata: Any) -> np.ndarray:
        """Stratum of each patient: the highest stratum among its records (with classes 0/1: positive if any
        record is). Returned as codes into the sorted record levels."""
        levels = np.unique(np.asarray(record_strata), return_inverse=True)[1].ravel()
        order = np.lexsort((levels, self.codes))
        last = np.r_[np.flatnonzero(np.diff(self.codes[order])), order.size - 1]
        out = np.empty(self.n_groups, dtype=np.intp)
        out[self.codes[order[last]]] = levels[order[last]]
        return out

    def members(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Records sorted by patient (stable), and each patient's first position and record count there."""
        order = np.argsort(self.codes, kind="stable")
        sizes = np.bincount(self.codes, minlength=self.n_groups)
        return order, np.cumsum(sizes) - sizes, sizes


def patients_of(groups: Any, n_records: int) -> Patients | None:
    """Validated patient ids (one per record) as Patients; None when ``groups`` is None."""
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n_records:
        raise StatsError(f"length mismatch: groups has {g.size} values but there are {n_records} records")
    import pandas as pd  # here, not at the top: the ungrouped bootstrap and `import cardio_stats` need no pandas

    codes, uniques = pd.factorize(g, sort=False)
    missing = int((codes < 0).sum())
    if missing:
        raise StatsError(f"groups has {missing} missing patient id(s) out of {n_records} records")
    return Patients(codes=codes.astype(np.intp), n_groups=len(uniques))


def _draw_dtype(size: int) -> type:
    # the narrowest integer type draws fastest (NumPy fills 16-bit draws from one 32-bit word)
    return np.uint16 if size < 2**16 else (np.uint32 if size < 2**32 else np.int64)


def _draw_blocks(n_units: int, n_resamples: int, seed: int | None,
                 strata: Any = None) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """The draws of every resample, stratum by stratum: (members, draws (resamples x stratum size)).

    ``draws`` are positions within ``members`` (None: no strata, the draws are the units themselves).
    These are the exact draws of the same seed since cardio 0.1: every resampling function goes through here.
    """
    rng = np.random.default_rng(seed)
    if strata is None:
        return [(None, rng.integers(0, n_units, size=(n_resamples, n_units), dtype=_draw_dtype(n_units)))]
    strata = np.asarray(strata)
    if strata.shape != (n_units,):
        raise StatsError(f"length mismatch: strata has {strata.size} values but there are {n_units} records")
    blocks: list[tuple[np.ndarray | None, np.ndarray]] = []
    for level in np.unique(strata):
        members = np.flatnonzero(strata == level)
        draws = rng.integers(0, members.size, size=(n_resamples, members.size), dtype=_draw_dtype(members.size))
        blocks.append((members, draws))
    return blocks


def _assemble(blocks: list, n_units: int) -> np.ndarray:
    """The drawn units of every resample, shape (resamples, units); columns grouped stratum by stratum."""
    dtype = np.int32 if n_units < 2**31 else np.int64
    members, draws = blocks[0]
    if members is None:
        return draws.astype(dtype)
    out = np.empty((draws.shape[0], n_units), dtype=dtype)
    start = 0
    for members, draws in blocks:
        out[:, start:start + members.size] = members.astype(dtype)[draws]
        start += members.size
    return out


def _unit_blocks(n_records: int, n_resamples: int, seed: int | None, strata: Any,
                 patients: Patients | None) -> list:
    """Draw blocks over records, or over patients (stratified by patient stratum) when ``patients`` is given."""
    if patients is None:
        return _draw_blocks(n_records, n_resamples, seed, strata)
    unit_strata = None if strata is None else patients.strata(_check_strata(strata, n_records))
    return _draw_blocks(patients.n_groups, n_resamples, seed, unit_strata)


def _check_strata(strata: Any, n_records: int) -> np.ndarray:
    strata = np.asarray(strata)
    if strata.shape != (n_records,):
        raise StatsError(f"length mismatch: strata has {strata.size} values but there are {n_records} records")
    return strata


def resample_indices(n_records: int, n_resamples: int, seed: int | None, strata: Any = None,
                     groups: Any = None) -> np.ndarray | list[np.ndarray]:
    """All bootstrap resamples at once, shape (n_resamples, n_records), drawn within each stratum when given.

    With strata, every resample keeps each stratum's size (a stratified bootstrap keeps the
    prevalence fixed, so no resample lacks a class); columns are grouped stratum by stratum.

    With ``groups`` (the patient of each record) patients are drawn, within the strata of patients (a
    patient's stratum is the highest of its records': positive if any record is), and each drawn patient
    brings all its records, together and in record order. Resamples then differ in length, so a list of
    n_resamples index arrays is returned. When every patient has one record the indices equal those
    of ``groups=None`` with the same seed.
    """
    patients = patients_of(groups, n_records)
    blocks = _unit_blocks(n_records, n_resamples, seed, strata, patients)
    if patients is None:
        return _assemble(blocks, n_records)
    drawn = _assemble(blocks, patients.n_groups)
    order, first, sizes = patients.members()
    out = []
    for row in drawn:
        lens = sizes[row]
        shift = np.repeat(first[row] - (np.cumsum(lens) - lens), lens)
        out.append(order[shift + np.arange(shift.size)])
    return out


class _Counter:
    """How often each key is drawn in a chunk of resamples, (rows, n_keys), into buffers allocated once (the counts
    returned are overwritten by the next call).

    Each block's key table is laid out once per row of a chunk with that row's offset (row * n_keys) added, so a
    chunk costs one cast-and-add of the draws, one gather and one bincount. Nothing large is allocated per chunk:
    fresh pages cost more than the counting here (a whole `python -c bootstrap_ci` process spent a third of its
    time in page faults when each chunk allocated its temporaries; benchmarks/stats_bootstrap.py).
    """

    def __init__(self, blocks: list, tables: list[np.ndarray], n_keys: int, rows: int) -> None:
        self.blocks, self.n_keys, self.rows = blocks, n_keys, rows
        row_keys = (np.arange(rows, dtype=np.intp) * n_keys)[:, None]
        self.keyed = [(np.asarray(t, dtype=np.intp)[None, :] + row_keys).ravel() for t in tables]
        self.offsets = [(np.arange(rows, dtype=np.intp) * t.size)[:, None] for t in tables]
        self.index = np.empty(rows * max(t.size for t in tables), dtype=np.intp)
        self.keys = np.empty(rows * sum(t.size for t in tables), dtype=np.intp)
        self.counts = np.empty((rows, n_keys), dtype=np.intp)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        c, at = stop - start, 0
        for (_, draws), keyed, offsets in zip(self.blocks, self.keyed, self.offsets):
            w = draws.shape[1]
            index = self.index[:c * w].reshape(c, w)
            np.add(draws[start:stop], offsets[:c], out=index)  # the draws' cast to intp, row offsets with it
            np.take(keyed, index.ravel(), out=self.keys[at:at + c * w], mode="clip")  # "raise" would buffer out
            at += c * w
        counts = self.counts[:c]
        counts.fill(0)
        np.add.at(counts.ravel(), self.keys[:at], 1)  # faster than a bincount here, and into the same buffer
        return counts


def _chunks(n_resamples: int, width: int) -> Iterator[tuple[int, int]]:
    rows = max(1, _CHUNK_CELLS // max(width, 1))
    for start in range(0, n_resamples, rows):
        yield start, min(start + rows, n_resamples)


def patient_counts(patients: Patients, n_resamples: int, seed: int | None,
                   strata: Any = None) -> Iterator[tuple[int, np.ndarray]]:
    """How many times each patient is drawn, chunk by chunk: (first resample, counts (rows, n_groups)).

    The same draws as ``resample_indices(..., groups=)`` with that seed; a record's weight in a resample is
    ``counts[:, patients.codes]``.
    """
    blocks = _unit_blocks(patients.codes.size, n_resamples, seed, strata, patients)
    tables = [np.arange(patients.n_groups) if m is None else m for m, _ in blocks]
    count = _Counter(blocks, tables, patients.n_groups, max(1, _CHUNK_CELLS // patients.n_groups))
    for start, stop in _chunks(n_resamples, patients.n_groups):
        yield start, count(start, stop)


def _dense_ranks(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank of every score (ties share a rank) and the number of distinct values."""
    uniq, inverse = np.unique(score, return_inverse=True)
    return inverse.astype(np.int64), uniq.size


def auc_from_indices(y: np.ndarray, score: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """AUC of every resample (one row of ``indices`` each), without a Python loop over resamples.

    Hand-written because no library computes many resampled AUCs at once. For each resample we
    count how often each distinct score value is drawn among positives and among negatives
    (one bincount); the Mann-Whitney sum is then
        sum_k  pos_count[k] * (2 * neg_count_below[k] + neg_count[k]) / (2 m n),
    i.e. ties count one half, exactly like the rank formula and sklearn's trapezoid AUC.
    Integer arithmetic keeps it exact up to the final division. Resamples lacking a class give NaN.
    """
    y = as_binary_labels(y, require_both=False)
    score = as_scores(score, n=y.size)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.dtype.kind not in "iu":
        raise StatsError(f"indices must be a 2-D integer array (resamples x records), "
                         f"got {indices.dtype} {indices.shape}")
    ranks, k = _dense_ranks(score)
    n_rec = score.size
    # key of each record: its score rank, shifted by k for positives -> one bincount per resample row
    key_of_record = ranks + k * (y.astype(np.int64) == 1)
    n_res = indices.shape[0]
    out = np.empty(n_res, dtype=np.float64)
    rows = max(1, 500_000 // max(n_rec, 2 * k))
    for start in range(0, n_res, rows):
        block = indices[start:start + rows]
        c = block.shape[0]
        keys = np.take(key_of_record, block)
        keys += (2 * k) * np.arange(c, dtype=np.int64)[:, None]
        counts = np.bincount(keys.ravel(), minlength=c * 2 * k).reshape(c, 2, k)
        neg, pos = counts[:, 0, :], counts[:, 1, :]
        neg_below = np.cumsum(neg, axis=1) - neg
        twice_u = np.einsum("ij,ij->i", pos, 2 * neg_below + neg)
        m = pos.sum(axis=1)
        n = neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + c] = twice_u / (2.0 * m * n)
    return out


def _auc_from_draws(y: np.ndarray, score: np.ndarray, blocks: list, patients: Patients | None) -> np.ndarray:
    """AUC of every resample straight from the draws, ties counted one half, exact up to the last division.

    Per chunk of resamples, one bincount gives how often each unit was drawn. Records: a negative's key is
    its score level among negatives, a positive's is its level among positives (after them), so the counts
    are already in score order. Patients: the counts of patients are spread over their records (negatives
    sorted by score). The cumulative drawn negatives C then give each positive's placement,
        2U = sum_pos w_pos * (C[below] + C[at or below]),   AUC = 2U / (2 m n),
    the weighted Mann-Whitney statistic. Integer throughout, so a record drawn k times counts k times, exactly
    as an expanded resample would. Resamples lacking a class give NaN.
    """
    pos = y == 1
    if patients is None:
        neg_levels, neg_key = np.unique(score[~pos], return_inverse=True)
        pos_levels, pos_key = np.unique(score[pos], return_inverse=True)
        key = np.empty(y.size, dtype=np.intp)
        key[~pos] = neg_key.ravel()
        key[pos] = neg_levels.size + pos_key.ravel()
        n_keys, neg_sorted, pos_scores = neg_levels.size + pos_levels.size, neg_levels, pos_levels
        n_units = y.size
    else:
        key = np.arange(patients.n_groups, dtype=np.intp)
        neg_records = np.flatnonzero(~pos)
        neg_records = neg_records[np.argsort(score[neg_records], kind="stable")]
        neg_cols, pos_cols = patients.codes[neg_records], patients.codes[pos]
        n_keys, neg_sorted, pos_scores = patients.n_groups, score[neg_records], score[pos]
        n_units = patients.n_groups
    below = np.searchsorted(neg_sorted, pos_scores, side="left")
    at_or_below = np.searchsorted(neg_sorted, pos_scores, side="right")
    n_neg_cols = neg_sorted.size
    tables = [key if members is None else key[members] for members, _ in blocks]
    n_res = blocks[0][1].shape[0]
    width = max(n_units, n_keys, n_neg_cols)
    rows = max(1, _CHUNK_CELLS // width)
    count = _Counter(blocks, tables, n_keys, rows)
    cum = np.zeros((rows, n_neg_cols + 1), dtype=np.intp)  # drawn negatives at or below each negative column
    # C[below] + C[at or below] of every positive column, as flat positions in cum, row by row
    row_start = (np.arange(rows, dtype=np.intp) * (n_neg_cols + 1))[:, None]
    at_below, at_or_below = row_start + below, row_start + at_or_below
    placement = np.empty((rows, pos_scores.size), dtype=np.intp)
    ties = np.empty_like(placement)
    spread = None if patients is None else (np.empty((rows, n_neg_cols), dtype=np.intp), np.empty_like(placement))
    out = np.empty(n_res, dtype=np.float64)
    for start, stop in _chunks(n_res, width):
        counts = count(start, stop)
        c = stop - start
        if spread is None:
            neg_w, pos_w = counts[:, :n_neg_cols], counts[:, n_neg_cols:]
        else:
            neg_w = np.take(counts, neg_cols, axis=1, out=spread[0][:c], mode="clip")
            pos_w = np.take(counts, pos_cols, axis=1, out=spread[1][:c], mode="clip")
        np.cumsum(neg_w, axis=1, out=cum[:c, 1:])
        flat = cum.ravel()
        np.take(flat, at_below[:c], out=placement[:c], mode="clip")
        np.add(placement[:c], np.take(flat, at_or_below[:c], out=ties[:c], mode="clip"), out=placement[:c])
        twice_u = np.einsum("ij,ij->i", pos_w, placement[:c])
        m = pos_w.sum(axis=1)
        n = cum[:c, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = twice_u / (2.0 * m * n)
    return out


def _auc_jackknife(y: np.ndarray, score: np.ndarray, patients: Patients | None = None) -> np.ndarray:
    """Leave-one-out AUCs in O(n log n) from placements (needs >= 2 records per class).

    With patients, leave-one-patient-out: a patient's records leave together, so their placements are taken
    off and the pairs within the patient (counted twice by that) are added back.
    """
    ranks, k = _dense_ranks(score)
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    neg_count = np.bincount(ranks[~pos], minlength=k)
    pos_count = np.bincount(ranks[pos], minlength=k)
    neg_below = np.cumsum(neg_count) - neg_count
    pos_above = pos_count.sum() - np.cumsum(pos_count)
    # twice the placement of each record: negatives below a positive, positives above a negative; ties 1/2
    place2 = np.where(pos, 2 * neg_below[ranks] + neg_count[ranks], 2 * pos_above[ranks] + pos_count[ranks])
    total2 = float(place2[pos].sum())
    if patients is None or patients.singletons:
        return np.where(pos, (total2 - place2) / (2.0 * (m - 1) * n), (total2 - place2) / (2.0 * m * (n - 1)))
    codes, g = patients.codes, patients.n_groups
    m_g = np.bincount(codes[pos], minlength=g)
    n_g = np.bincount(codes[~pos], minlength=g)
    removed = np.bincount(codes, weights=place2, minlength=g)  # integers below 2**53: exact
    within = np.zeros(g)
    order, first, sizes = patients.members()
    for p in np.flatnonzero((m_g > 0) & (n_g > 0)):  # patients with records of both classes (few)
        rec = order[first[p]:first[p] + sizes[p]]
        xs, zs = score[rec][y[rec] == 1], score[rec][y[rec] == 0]
        within[p] = 2 * np.count_nonzero(xs[:, None] > zs[None, :]) + np.count_nonzero(xs[:, None] == zs[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total2 - removed + within) / (2.0 * (m - m_g) * (n - n_g))


def _interval(theta_hat: float, theta_b: np.ndarray, jackknife: np.ndarray | None, level: float,
              method: str, warnings: list[str]) -> tuple[float | None, float | None, str]:
    """Percentile or BCa interval from a bootstrap distribution; BCa written by hand (Efron & Tibshirani 14.3).
    None where the bounds coincide (e.g. an AUC of 1 in every resample): a zero-width interval claims certainty."""
    alpha = (1.0 - level) / 2.0
    if method == "percentile":
        lo, hi = np.percentile(theta_b, [100 * alpha, 100 * (1 - alpha)])
        if lo == hi:
            share = float(np.mean(theta_b == lo))
            warnings.append(f"no interval: {100 * share:.0f}% of the resamples give {lo:.3g}, so the bounds coincide")
            return None, None, "bootstrap-percentile"
        return float(lo), float(hi), "bootstrap-percentile"
    from scipy.special import ndtr, ndtri  # here: the percentile interval's whole process loads no SciPy

    # bias correction: share of resamples below the estimate, ties counted half (as scipy.stats.bootstrap)
    share = (np.count_nonzero(theta_b < theta_hat) + np.count_nonzero(theta_b <= theta_hat)) / (2.0 * theta_b.size)
    z0 = ndtri(share)
    assert jackknife is not None  # BCa is asked for only with the jackknife values
    u = jackknife.mean() - jackknife
    denom = float(np.sum(u**2))
    if not np.isfinite(z0) or denom == 0.0:
        warnings.append(
            "BCa interval undefined (bootstrap or jackknife distribution degenerate); percentile interval reported"
        )
        lo, hi, _ = _interval(theta_hat, theta_b, None, level, "percentile", warnings)
        return lo, hi, "bootstrap-percentile"
    a = float(np.sum(u**3)) / (6.0 * denom**1.5)
    z_lo, z_hi = ndtri(alpha), ndtri(1 - alpha)
    p_lo = ndtr(z0 + (z0 + z_lo) / (1 - a * (z0 + z_lo)))
    p_hi = ndtr(z0 + (z0 + z_hi) / (1 - a * (z0 + z_hi)))
    lo, hi = np.percentile(theta_b, [100 * p_lo, 100 * p_hi])
    if lo == hi:
        warnings.append(f"no interval: the BCa bounds coincide at {lo:.3g}")
        return None, None, "bootstrap-bca"
    return float(lo), float(hi), "bootstrap-bca"


def _check_method(method: str) -> str:
    m = str(method).lower()
    if m not in ("percentile", "bca"):
        raise StatsError(f"method must be 'percentile' or 'bca', got {method!r}")
    return m


def _drop_invalid(theta_b: np.ndarray, what: str, warnings: list[str]) -> np.ndarray:
    ok = np.isfinite(theta_b)
    if not ok.all():
        bad = int((~ok).sum())
        if bad == theta_b.size:
            raise StatsError(f"{what} is undefined in all {bad} bootstrap resamples")
        warnings.append(f"{what} undefined in {bad} of {theta_b.size} resamples; those were left out")
    return theta_b[ok]


def _check_patients(patients: Patients | None) -> None:
    if patients is not None and patients.n_groups < 2:
        raise StatsError(f"a bootstrap over patients needs at least 2 patients, got {patients.n_groups}")


def bootstrap_ci(y: Any, score: Any, statistic: str | Callable[[np.ndarray, np.ndarray], float] = "auc",
                 n_resamples: int = 2000, seed: int | None = 0, method: str = "percentile",
                 level: float = 0.95, stratified: bool = True, groups: Any = None) -> Estimate:
    """Bootstrap CI of the AUC (vectorized) or of any ``statistic(y, score)`` callable (loop).

    Stratified by class by default, so every resample has the original numbers of positives and negatives.
    With ``groups`` (patient ids, one per record) patients are resampled with all their records,
    stratified by patient class (positive if any record is); ``extra`` then says ``resampled: patients``.
    """
    method = _check_method(method)
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    yy = as_binary_labels(y)
    s = as_scores(score, n=yy.size)
    patients = patients_of(groups, yy.size)
    _check_patients(patients)
    m, n = int(yy.sum()), int(yy.size - yy.sum())
    if callable(statistic) and not isinstance(statistic, str):
        est = bootstrap_metric(statistic, yy, s, n_resamples=n_resamples, seed=seed, level=level, method=method,
                               stratify=yy if stratified else None, groups=groups)
        est.extra.update({"n_pos": m, "n_neg": n})
        return est
    if not isinstance(statistic, str) or statistic.lower() != "auc":
        raise StatsError(f"statistic must be 'auc' or a callable(y, score) -> float, got {statistic!r}")
    if method == "bca" and min(m, n) < 2:
        raise StatsError(f"BCa needs at least 2 positives and 2 negatives for the jackknife; got {m} and {n}")
    warnings: list[str] = []
    blocks = _unit_blocks(yy.size, n_resamples, seed, yy if stratified else None, patients)
    theta_hat = float(auc_from_indices(yy, s, np.arange(yy.size)[None, :])[0])
    # one record per patient: the draws are the record draws, so the record path gives the same AUCs, faster
    unit = None if patients is None or patients.singletons else patients
    theta_b = _drop_invalid(_auc_from_draws(yy, s, blocks, unit), "auc", warnings)
    jack = None
    if method == "bca":
        jack = _auc_jackknife(yy, s, patients)
        if not np.isfinite(jack).all():
            raise StatsError("BCa needs at least 2 patients with positive and 2 with negative records for the "
                             "jackknife; use method='percentile'")
    lo, hi, used = _interval(theta_hat, theta_b, jack, level, method, warnings)
    extra = {"n_pos": m, "n_neg": n, "stratified": bool(stratified), "se": float(np.std(theta_b, ddof=1)),
             "n_valid_resamples": int(theta_b.size)}
    return Estimate(
        metric="auc", estimate=theta_hat, ci_low=lo, ci_high=hi, level=level, method=used, n=int(yy.size),
        seed=seed, n_resamples=n_resamples, warnings=warnings,
        extra=extra if patients is None else {**extra, **patients.extra()},
    )


def _generic_jackknife(fn: Callable[..., float], arrays: tuple[np.ndarray, ...],
                       patients: Patients | None = None) -> np.ndarray:
    """Leave-one-out values of ``fn``: one record at a time, or one patient (all its records) at a time."""
    n = arrays[0].shape[0]
    codes = np.arange(n) if patients is None else patients.codes
    n_out = n if patients is None else patients.n_groups
    out = np.empty(n_out)
    for i in range(n_out):
        keep = codes != i
        out[i] = fn(*(a[keep] for a in arrays))
    ok = np.isfinite(out)
    if not ok.all():
        raise StatsError(f"the statistic is undefined in {int((~ok).sum())} of {n_out} jackknife samples; "
                         "use method='percentile'")
    return out


def _rows_of(rows: Callable[..., np.ndarray], arrs: tuple[np.ndarray, ...],
             idx: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """The statistic of every resample through ``rows``, a stack of equal-length resamples at a time.

    Resamples of patients differ in length: those of one length are stacked together. Each row is reduced
    on its own, so a statistic whose row reduction is the 1-D one (np.mean(axis=1), counts) gives exactly
    the loop's numbers."""
    if isinstance(idx, np.ndarray):
        step = max(1, _ROWS_CELLS // max(idx.shape[1], 1))
        return np.concatenate([np.asarray(rows(*(a[idx[i:i + step]] for a in arrs)), dtype=np.float64)
                               for i in range(0, idx.shape[0], step)])
    out = np.empty(len(idx), dtype=np.float64)
    lengths = np.array([i.size for i in idx])
    for size in np.unique(lengths):
        which = np.flatnonzero(lengths == size)
        step = max(1, _ROWS_CELLS // max(int(size), 1))
        for i in range(0, which.size, step):
            part = which[i:i + step]
            stacked = np.stack([idx[j] for j in part])
            out[part] = rows(*(a[stacked] for a in arrs))
    return out


def bootstrap_metric(fn: Callable[..., float], *arrays: Any, n_resamples: int = 2000, seed: int | None = 0,
                     level: float = 0.95, method: str = "percentile", stratify: Any = None,
                     metric: str | None = None, groups: Any = None,
                     rows: Callable[..., np.ndarray] | None = None) -> Estimate:
    """Bootstrap CI of ``fn(*arrays)``, resampling records jointly (within ``stratify`` levels if given).

    With ``groups`` (patient ids, one per record) patients are resampled, each with all its records,
    within patient strata (a patient's stratum is the highest ``stratify`` level among its records).
    ``rows``, where given, is ``fn`` over a stack of resamples (2-D arrays, one resample a row), giving the
    same number per row as ``fn``: the resamples are then computed without a Python loop.
    """
    method = _check_method(method)
    level = check_level(level)
    n_resamples = check_n_resamples(n_resamples)
    if not arrays:
        raise StatsError("bootstrap_metric needs at least one array")
    arrs = tuple(np.asarray(a) for a in arrays)
    n = arrs[0].shape[0]
    for j, a in enumerate(arrs):
        if a.shape[0] != n:
            raise StatsError(f"length mismatch: array 0 has {n} records but array {j} has {a.shape[0]}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise StatsError(f"array {j} has {int((~np.isfinite(a)).sum())} NaN/infinite value(s) out of {n} records")
    if n < 2:
        raise StatsError(f"bootstrap needs at least 2 records, got {n}")
    patients = patients_of(groups, n)
    _check_patients(patients)
    name = str(metric or getattr(fn, "__name__", "statistic"))
    warnings: list[str] = []
    unit = {} if patients is None else patients.extra()
    theta_hat = float(fn(*arrs))
    if not np.isfinite(theta_hat):
        warnings.append(f"{name} is undefined on the full data")
        return Estimate(metric=name, estimate=float("nan"), ci_low=None, ci_high=None, level=level,
                        method=f"bootstrap-{method}", n=n, seed=seed, n_resamples=n_resamples, warnings=warnings,
                        extra=dict(unit))
    idx = resample_indices(n, n_resamples, seed, strata=stratify, groups=groups)
    if rows is None:
        theta_b = np.array([fn(*(a[i] for a in arrs)) for i in idx], dtype=np.float64)
    else:
        theta_b = _rows_of(rows, arrs, idx)
    theta_b = _drop_invalid(theta_b, name, warnings)
    jack = _generic_jackknife(fn, arrs, patients) if method == "bca" else None
    lo, hi, used = _interval(theta_hat, theta_b, jack, level, method, warnings)
    return Estimate(metric=name, estimate=theta_hat, ci_low=lo, ci_high=hi, level=level, method=used, n=n,
                    seed=seed, n_resamples=n_resamples, warnings=warnings,
                    extra={"stratified": stratify is not None, "se": float(np.std(theta_b, ddof=1)),
                           "n_valid_resamples": int(theta_b.size), **unit})
