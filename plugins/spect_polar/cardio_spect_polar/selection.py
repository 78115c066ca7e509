"""Inference valid under selection: a permutation test of the whole screen -> select -> fit -> LR-test recipe.

The in-sample likelihood-ratio test of the AE features' incremental value is computed after the AE
feature was chosen on the same patients because it was associated with response, so its chi-square
p-value is far too small (about 9 in 10 pure-noise data sets of 102 patients give p < 0.05). Here the
labels are permuted and the whole recipe of `analysis.fit_response_models` is re-run on every
permutation: univariate Wald screen of the clinical and AE variables, clinical entry at p < p_enter,
the best AE feature(s) at p < p_ae (the best one when none passes), then the nested models with and
without the AE features and their LR statistic. The observed statistic is ranked among the permuted ones.

Why by hand: statsmodels fits one model at a time (about 80 fits per permutation, 80,000 for 1,000
permutations); the Newton-Raphson iterations below fit every permutation's models at once as batched
NumPy arrays. The per-permutation results equal statsmodels' to its convergence tolerance (tested).
"""
from __future__ import annotations

from functools import partial

import numpy as np
from scipy.special import expit
from scipy.stats import norm

ITERATIONS = 30
RIDGE = 1e-8  # keeps the Newton systems solvable on separated permutations; far below any real effect


def _standardize(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def univariate_wald_p(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Wald p-value of the slope of y ~ 1 + x_j for every column j and every label vector.

    x: (n, J) standardized; y: (B, n) 0/1. Returns (B, J). Closed-form 2x2 Newton steps.
    """
    b_count, j_count = y.shape[0], x.shape[1]
    a = np.zeros((b_count, j_count))   # intercepts
    b = np.zeros((b_count, j_count))   # slopes
    x2 = x * x
    for _ in range(ITERATIONS):
        eta = a[:, None, :] + b[:, None, :] * x[None]          # (B, n, J)
        mu = expit(eta)
        w = mu * (1 - mu)
        r = y[:, :, None] - mu
        g0, g1 = r.sum(1), (r * x[None]).sum(1)
        h00, h01, h11 = w.sum(1) + RIDGE, (w * x[None]).sum(1), (w * x2[None]).sum(1) + RIDGE
        det = h00 * h11 - h01 ** 2
        da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        a, b = a + da, b + db
        if max(np.abs(da).max(), np.abs(db).max()) < 1e-10:
            break
    eta = a[:, None, :] + b[:, None, :] * x[None]
    w = expit(eta) * (1 - expit(eta))
    h00, h01, h11 = w.sum(1) + RIDGE, (w * x[None]).sum(1), (w * x2[None]).sum(1) + RIDGE
    var_b = h00 / (h00 * h11 - h01 ** 2)
    z = b / np.sqrt(var_b)
    return 2 * norm.sf(np.abs(z))


def batched_loglik(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximized log-likelihood of y_b ~ design_b for every b. design: (B, n, k) (intercept added here)."""
    b_count, n, _ = design.shape
    d = np.concatenate([np.ones((b_count, n, 1)), design], axis=2)
    k = d.shape[2]
    beta = np.zeros((b_count, k))
    eye = np.eye(k) * RIDGE
    for _ in range(ITERATIONS):
        mu = expit(np.einsum("bnk,bk->bn", d, beta))
        w = mu * (1 - mu)
        g = np.einsum("bnk,bn->bk", d, y - mu)
        h = np.einsum("bnk,bn,bnl->bkl", d, w, d) + eye
        step = np.linalg.solve(h, g[..., None])[..., 0]
        # Halve oversized steps (separated permutations), as statsmodels' line search would.
        step *= np.minimum(1.0, 10.0 / np.maximum(np.abs(step).max(axis=1, keepdims=True), 1e-12))
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    mu = np.clip(expit(np.einsum("bnk,bk->bn", d, beta)), 1e-12, 1 - 1e-12)
    return (y * np.log(mu) + (1 - y) * np.log(1 - mu)).sum(1)


def pipeline_lr_statistics(clinical: np.ndarray, conventional: np.ndarray, ae: np.ndarray, y: np.ndarray, *,
                           p_enter: float = 0.1, p_ae: float = 0.05, max_ae: int = 1) -> dict[str, np.ndarray]:
    """The recipe's LR statistic of (clinical + conv + AE) vs (clinical + conv) for every label vector y_b.

    clinical (n, C), conventional (n,) (PSD or PBW), ae (n, A); y (B, n). Returns per b the statistic,
    the number of clinical variables and of AE features that passed, and the index of the first AE feature.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    clin, conv, feats = _standardize(clinical), _standardize(conventional[:, None]), _standardize(ae)
    p_clin = univariate_wald_p(clin, y) if clin.shape[1] else np.ones((len(y), 0))
    p_feat = univariate_wald_p(feats, y)
    enter = p_clin < p_enter                                        # (B, C)
    order = np.argsort(p_feat, axis=1, kind="stable")[:, :max_ae]   # best AE features (forced when none passes)
    passed = np.take_along_axis(p_feat, order, 1) < p_ae
    keep = passed.copy()
    keep[:, 0] = True                                               # the best one always enters (ae_forced)
    # Columns of clinical variables that did not enter are zeroed: they then add nothing to the fit.
    clin_b = clin[None] * enter[:, None, :]
    ae_b = feats.T[order].transpose(0, 2, 1) * keep[:, None, :]     # (B, n, max_ae)
    reduced = np.concatenate([clin_b, np.broadcast_to(conv, (len(y),) + conv.shape)], axis=2)
    full = np.concatenate([reduced, ae_b], axis=2)
    stat = 2 * (batched_loglik(full, y) - batched_loglik(reduced, y))
    return {"statistic": np.maximum(stat, 0.0), "n_clinical": enter.sum(1), "n_ae_passed": passed.sum(1),
            "best_ae": order[:, 0], "p_best_ae": np.take_along_axis(p_feat, order[:, :1], 1)[:, 0]}


def permutation_test(clinical: np.ndarray, conventional: np.ndarray, ae: np.ndarray, y: np.ndarray, *,
                     permutations: int = 1000, seed: int = 0, p_enter: float = 0.1, p_ae: float = 0.05,
                     max_ae: int = 1, chunk: int = 250) -> dict:
    """Permutation p-value of the recipe's incremental-value LR test: (1 + #{T_perm >= T_obs}) / (1 + B)."""
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    statistics = partial(pipeline_lr_statistics, p_enter=p_enter, p_ae=p_ae, max_ae=max_ae)
    observed = statistics(clinical, conventional, ae, y[None])
    t_obs = float(observed["statistic"][0])
    perm_stats = []
    for start in range(0, permutations, chunk):
        b = min(chunk, permutations - start)
        ys = np.stack([rng.permutation(y) for _ in range(b)])
        perm_stats.append(statistics(clinical, conventional, ae, ys)["statistic"])
    null = np.concatenate(perm_stats)
    p = (1 + int(np.sum(null >= t_obs - 1e-9))) / (1 + permutations)
    return {"statistic": t_obs, "p_value": p, "permutations": int(permutations),
            "n_ae_passed": int(observed["n_ae_passed"][0]), "null_median": float(np.median(null)),
            "null_q95": float(np.quantile(null, 0.95))}
