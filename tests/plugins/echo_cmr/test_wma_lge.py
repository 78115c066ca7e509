"""The paper's comparison as a control pair (issues 29 and 38): fused WMA AUROC minus fused LGE AUROC, read on the
interval the report prints for it (report.delta_auc: with 5 folds the cross-validated difference, the mean of
the folds' differences with the fold-DeLong interval, or, where the LGE head scores every patient of a fold alike,
WMA's own cross-validated AUC interval less 0.5 (on an Intel Xeon it did); a metrics.json row auc_difference of
task "wma - lge").

Planted: LGE invisible (truth.lge_brightness 0) and independent of WMA (P(LGE) 0.5 with WMA and without), so the
LGE head has nothing to read (true AUROC 0.5) while WMA shows as walls that move less: the interval lies above 0.
Neutral: LGE in exactly the patients with WMA (P 1 with, 0 without): the two targets are one label and carry the
same signal, so the true difference is 0 and the interval covers it. Each arm carries the same signal in both
targets or none in one, as ecg_transfer's difference control learned a neutral arm must (test_neutral.py).
SIZING holds the size and why. benchmarks/controls.py CONTROLS["echo_cmr_wma_lge"] holds these settings
(test_settings_are_the_benchmarks) and measures both over seeds 1-5. Seed 1 was fixed before any result."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from sklearn.metrics import roc_auc_score

from cardio import Predictions
from cardio_echo_cmr import report
from cardio_stats import CV_METHOD, NO_INTERVAL, cv_auc_difference, pick
from cardio_testing.harness import load_script, read_metrics, run_plugin

REPO = Path(__file__).resolve().parents[3]
TARGETS = ("echo_cmr.targets=[{target: wma, kind: binary, level: study, label: wma_global, title: WMA (global)}, "
           "{target: lge, kind: binary, level: study, label: lge_global, title: LGE (global)}]")
# The echo controls' small settings (r2plus1d_10_narrow, A4C, 5 folds, the fusion on 2 inner folds' out-of-fold
# outputs) with both targets as outputs, sized on pilot seeds 11-13 (benchmarks/controls.py --first-seed 11 --set
# ...), never on the table's seeds 1-5; planted detected, and neutral intervals of width 0 (both targets at AUROC 1
# in every fold: a neutral that cannot fail), by how much less the WMA walls move and the studies:
#   100%, 40 studies: 2/2, width 0 in 2/2;  50%, 40: 2/2, 1/2;  35%, 40: 0/2;  60%, 40: 2/3, 0/3;
#   60%, 40, 15 epochs: 1/2, 2/2;  50%, 60: 3/3, 3/3;  40%, 60: 3/3, 2/3 (chosen: all planted found, then width).
# A missed planted seed had one fold whose inner networks (16 studies at 40) read nothing: the fusion gave A4C
# weight 0 and that fold's WMA AUROC was 0.5. Tried after seeds 1-3 of the table showed width 0, and rejected on the
# pilot seeds: A2C alone at 100% (its view misses the LCX territory, so neither target reads at AUROC 1), 40
# studies: 1/3, 0/3; 60 studies: 1/3, 0/3. About 25 s of CPU a run.
# What the neutral arm checks: with one label in both targets the two heads rank the studies alike, and the
# difference is 0 in most folds even below AUROC 1 (seed 2: both 0.926); it fails where the pipeline treats the
# targets differently (the fusion, the selection, which columns the comparison reads), not by training noise. The
# interval's coverage for a difference of two targets is measured by benchmarks/cv_coverage.py --targets.
SETTINGS = ("echo_cmr.synthetic.n_patients=60", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.synthetic.n_frames=20",
            "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=10",
            "echo_cmr.train.batch_size=8", "echo_cmr.train.lr=0.003", "train.val_fraction=0", "echo_cmr.workers=1",
            "echo_cmr.views=[A4C]", TARGETS, "echo_cmr.synthetic.truth.wma_motion_reduction=0.4",
            "echo_cmr.synthetic.truth.wma_fraction=0.5", "echo_cmr.synthetic.truth.lge_brightness=0.0", "cv.folds=5",
            "echo_cmr.fusion_folds=2", "stats.n_resamples=200", "report.figures=false", "explain=false",
            "final_model=false")
PLANTED = ("echo_cmr.synthetic.truth.lge_given_wma=0.5", "echo_cmr.synthetic.truth.lge_without_wma=0.5")
NEUTRAL = ("echo_cmr.synthetic.truth.lge_given_wma=1.0", "echo_cmr.synthetic.truth.lge_without_wma=0.0")
SEED = 1


def test_settings_are_the_benchmarks():
    bench = load_script(REPO / "benchmarks" / "controls.py").CONTROLS["echo_cmr_wma_lge"]
    assert (bench.sets, bench.planted, bench.neutral) == (SETTINGS, PLANTED, NEUTRAL)
    assert (bench.plugin, bench.model, bench.task, bench.task_reference, bench.seed_key) == (
        "echo_cmr", "fused", "wma", "lge", "echo_cmr.synthetic.seed")


def _predictions(folds: int, seed: int = 0):
    """Fused WMA and LGE scores of 40 studies in `folds` folds: WMA read, LGE noise."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:02d}" for i in range(40)]
    wma, lge = np.tile([1, 0], 20), rng.permutation(np.tile([1, 0], 20))
    fold = [f"fold{i % folds}" if folds > 1 else "test" for i in range(40)]
    rows = [pd.DataFrame({"record_id": ids, "patient_id": ids, "model": "fused", "task": task, "kind": "binary",
                          "y_true": y, "y_score": s, "fold": fold})
            for task, y, s in (("wma", wma, wma + rng.normal(size=40)), ("lge", lge, rng.normal(size=40)))]
    return Predictions(table=pd.concat(rows, ignore_index=True)), wma, lge, np.array(fold)


def test_the_comparison_is_the_cross_validated_difference_or_says_what_it_ignores():
    p, wma, lge, fold = _predictions(5)
    t = p.table
    d = report.delta_auc(p, 200, 0.95)
    ref = cv_auc_difference(wma, t.loc[t["task"] == "wma", "y_score"], t.loc[t["task"] == "lge", "y_score"], fold,
                            groups=t["patient_id"][:40], y_b=lge)
    assert d.method == CV_METHOD and (d.estimate, d.ci_low, d.ci_high) == (ref.estimate, ref.ci_low, ref.ci_high)
    row = report.comparison_row(d)
    assert (row["metric"], row["model"], row["task"], row["fold"]) == ("auc_difference", "fused", "wma - lge", "pooled")
    titles = {"wma": "WMA", "lge": "LGE"}
    assert "counts training variability" in report.comparison_text(d, titles, 200)
    # a fold without an LGE positive has no per-fold difference: the pooled one without an interval, and why (it
    # was a pooled bootstrap, which ignores training variability)
    no_lge = t.assign(y_true=np.where((t["task"] == "lge") & (t["fold"] == "fold2"), 0, t["y_true"]))
    b = report.delta_auc(Predictions(table=no_lge), 200, 0.95)
    text = report.comparison_text(b, titles, 200)
    assert b.method == NO_INTERVAL and b.ci_low is None and "positive records of y_b" in text
    lab = no_lge[no_lge["task"] == "wma"], no_lge[no_lge["task"] == "lge"]
    assert b.estimate == roc_auc_score(lab[0]["y_true"], lab[0]["y_score"]) - roc_auc_score(lab[1]["y_true"],
                                                                                          lab[1]["y_score"])
    # 3 folds (echo_cmr's default): the mean of the folds' differences, no interval, and why
    p3, wma3, lge3, fold3 = _predictions(3)
    three = report.delta_auc(p3, 200, 0.95)
    w3, l3 = p3.table[p3.table["task"] == "wma"], p3.table[p3.table["task"] == "lge"]
    by_fold = [roc_auc_score(wma3[fold3 == f], w3["y_score"][fold3 == f])
               - roc_auc_score(lge3[fold3 == f], l3["y_score"].to_numpy()[fold3 == f]) for f in np.unique(fold3)]
    assert three.method == NO_INTERVAL and three.ci_high is None
    assert np.isclose(three.estimate, np.mean(by_fold))
    assert "needs at least 5" in report.comparison_text(three, titles, 200)
    # an LGE head that scores every study of a fold alike (it learned nothing): the sentence says so
    flat = t.assign(y_score=np.where(t["task"] == "lge", t["fold"].str[-1].astype(float), t["y_score"]))
    c = report.delta_auc(Predictions(table=flat), 200, 0.95)
    text = report.comparison_text(c, titles, 200)
    assert c.method == CV_METHOD and c.extra["constant"] == "B"
    assert ("the LGE head scored every study of each fold alike (AUROC 0.5 in every fold), so the interval is "
            "WMA's own cross-validated AUROC interval less 0.5") in text
    one_fold = report.delta_auc(_predictions(1)[0], 200, 0.95)  # a holdout: the bootstrap, no fallback note
    assert one_fold.method != CV_METHOD and not one_fold.warnings


def test_the_bootstrap_comparison_is_roc_auc_score_s_to_the_last_bit():
    # delta_auc's bootstrap computes each resample's AUCs by roc_curve and auc without sklearn's checks (issue 57:
    # 2.7x faster): the interval is the one roc_auc_score's differences give, bit for bit, ties included
    from sklearn.metrics import roc_auc_score

    from cardio_stats import bootstrap_metric

    p, wma, lge, _ = _predictions(1, seed=3)
    t = p.table.assign(y_score=lambda d: np.round(d["y_score"], 1))  # tied scores
    d = report.delta_auc(Predictions(table=t), 300, 0.95)
    a, b = t[t["task"] == "wma"], t[t["task"] == "lge"]

    def diff(ya, sa, yb, sb):
        if min(len(set(ya)), len(set(yb))) < 2:
            return float("nan")
        return float(roc_auc_score(ya, sa) - roc_auc_score(yb, sb))

    ref = bootstrap_metric(diff, wma, a["y_score"].to_numpy(), lge, b["y_score"].to_numpy(), n_resamples=300,
                           level=0.95, metric="auc_difference", groups=a["patient_id"].to_numpy())
    assert (d.estimate, d.ci_low, d.ci_high, d.extra["se"]) == (ref.estimate, ref.ci_low, ref.ci_high, ref.extra["se"])


@pytest.mark.slow  # two whole runs of 15 video-network fits each, ~20 s of CPU each
@pytest.mark.parametrize("neutral", [False, True], ids=["planted", "neutral"])
def test_fused_wma_minus_lge(tmp_path, neutral):
    sets = (*SETTINGS, *(NEUTRAL if neutral else PLANTED), f"echo_cmr.synthetic.seed={SEED}")
    out = run_plugin("echo_cmr", tmp_path / "run", sets=sets, cache_dir=tmp_path / "cache", seed=SEED)
    rows = pick(read_metrics(out)["estimates"], metric="auc_difference", fold="pooled", model="fused",
                task="wma - lge")
    assert len(rows) == 1, rows
    d = rows[0]
    print(f"{'neutral' if neutral else 'planted'}: fused AUROC WMA − LGE {d['estimate']:+.3f} "
          f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] ({d['method']})")
    assert d["method"] == CV_METHOD and d["extra"]["n_folds"] == 5, d
    if neutral:
        assert d["ci_low"] <= 0.0 <= d["ci_high"], d
    else:
        assert d["ci_low"] > 0.0, d
    md = (out / "report.md").read_text()
    # the report states the planted truth and prints this interval, naming what it counts
    lge = "LGE probability 1.0 with WMA and 0.0 without" if neutral else "LGE probability 0.5 with WMA and 0.5 without"
    assert lge in md and "the cross-validated difference" in md and "counts training variability" in md
    assert f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}]" in md
