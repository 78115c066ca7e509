"""echo_cmr end to end: the whole method's plumbing, and the planted and neutral controls (issue 38)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

import cardio_stats as stats
from cardio_echo_cmr import plugin
from cardio_stats import CV_METHOD, headline_auc
from cardio_testing.harness import invoke, read_metrics, report_page_check, run_plugin, second_intervals

# The controls (issue 38: sized for power, and the same settings as benchmarks/controls.py's echo_cmr entry, which
# runs them over seeds 1-5): 40 studies with WMA planted in half (akinetic walls in one territory), 5 folds (the
# cross-validated interval has 4 df; with 2 folds it has 1 and is nearly [0, 1]), the view fusion fitted on 2 inner
# folds' out-of-fold outputs. One view, A4C, which shows every coronary territory, and one output, WMA: the networks
# of 32 (inner: 16) training clips learned WMA only when it was their one output (test AUROC 1.0 on 48 held-out
# studies, 2 seeds), not beside the CMR set's nine other outputs (0.53-0.68), and three views cost three times.
# r2plus1d_10 at a quarter of its widths (0.8M weights): an epoch 0.2 s instead of 2.5 s, 15 fits a run.
CONTROL = ["echo_cmr.synthetic.n_patients=40", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.synthetic.n_frames=20",
           "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=10",
           "echo_cmr.train.batch_size=8", "echo_cmr.train.lr=0.003", "train.val_fraction=0", "echo_cmr.workers=1",
           "echo_cmr.views=[A4C]",
           "echo_cmr.targets=[{target: wma, kind: binary, level: study, label: wma_global, title: WMA (global)}]",
           "echo_cmr.synthetic.truth.wma_motion_reduction=1.0", "echo_cmr.synthetic.truth.wma_fraction=0.5",
           "cv.folds=5", "echo_cmr.fusion_folds=2", "stats.n_resamples=200", "final_model=false"]
CONTROL_SEED = 1  # chosen before any result of these settings was seen
# The tests check the pair at 99%, benchmarks/controls.py over five seeds at the report's 95%. A neutral seed excludes
# chance at 95% 2.5% of the time by design, and which seed does moves with the CPU's float rounding: on the project's
# AMD EPYC machine seed 1's neutral printed 0.637 [0.502, 0.773] (4 of 5 seeds covered chance; 5 of 5 on the earlier
# Intel one). At 99% a single seed's false alarm is 0.5%, and the planted pair must clear the same bar.
LEVEL = "stats.level=0.99"

# The whole method's plumbing (not a control: one epoch learns nothing): three views, the CMR set's ten outputs.
SMALL = ["echo_cmr.synthetic.n_patients=24", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.synthetic.n_frames=20",
         "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=1", "echo_cmr.train.batch_size=4",
         "train.val_fraction=0", "echo_cmr.workers=1", "echo_cmr.synthetic.truth.wma_fraction=0.5",
         "echo_cmr.thresholds.t1_ms=1030", "echo_cmr.thresholds.t2_ms=53", "echo_cmr.thresholds.ecv_pct=29",
         "cv.folds=2", "stats.n_resamples=100", "final_model=false", "explain=false", "report.figures=false"]


def test_plugin_info_and_documented_config():
    info = plugin.cardio_plugin_info()
    assert info.name == "echo_cmr" and info.modality == "echo"
    cfg = info.default_config
    assert cfg["echo_cmr"]["thresholds"] == {"t1_ms": 1060, "t2_ms": 58, "ecv_pct": 33}
    paper = cfg["profiles"]["paper"]
    assert paper["echo_cmr"]["clip"] == {"size": 112, "frames": 32, "period": 2, "fps": 50, "keep_aspect": True}
    assert paper["stats"]["n_resamples"] == 10000 and paper["echo_cmr"]["max_days"] == 30
    assert paper["echo_cmr"]["arch"] == "r2plus1d_18" and paper["cv"]["ratios"] == [8, 1, 1]
    lines = (Path(plugin.__file__).parent / "config.yaml").read_text().split("profiles:")[0].splitlines()
    undocumented = [ln for prev, ln in zip([""] + lines, lines)
                    if ln.strip() and not ln.lstrip().startswith("#") and ":" in ln
                    and "#" not in ln and not prev.lstrip().startswith("#")]
    assert not undocumented, undocumented


def test_listed_by_the_cli():
    result = invoke("plugins")
    assert result.exit_code == 0 and "echo_cmr" in result.stdout


def _fused_wma_auc(out: Path) -> dict:
    """The fused global-WMA AUC the performance table prints (5 folds: cross-validated, fold DeLong × 2 interval)."""
    auc = headline_auc(read_metrics(out)["estimates"], model="fused", task="wma")
    assert auc is not None and auc["method"] == CV_METHOD, auc
    return auc


def test_the_whole_method_runs_three_views_and_the_cmr_set(tmp_path):
    """Plumbing: every view's network, the fusion on inner out-of-fold outputs, the CMR set's binary and continuous
    outputs, the Table 2 layout and the paper's WMA - LGE comparison, on 24 studies at one epoch."""
    out = run_plugin("echo_cmr", tmp_path / "run", sets=SMALL, cache_dir=tmp_path / "cache")
    pred = pd.read_csv(out / "predictions.csv")
    assert {"r2plus1d-A4C", "r2plus1d-A2C", "r2plus1d-PLAX", "fused"} == set(pred["model"])
    assert {"t1_ms", "t2_ms", "ecv_pct"} == set(pred.loc[pred["kind"] == "regression", "task"])
    report = (out / "report.md").read_text()
    assert "Table 2 layout" in report and "synthetic truth" in report and "fixed in advance" in report
    assert "never saw those patients" in report
    # 2 folds carry no cross-validated interval (it needs 5): the comparison carries none either, and says why
    assert "the cross-validated difference without an interval" in report and "needs at least 5" in report
    # the summary and Table 2 say why there is none, not "95% intervals: no interval" (echo_cmr's default run)
    why = "2 fold(s): a cross-validated interval needs at least 5"
    assert f"**AUC for wma** (no interval: {why}" in report
    assert f"Out-of-fold AUROC without an interval ({why}" in report
    assert "intervals: no interval" not in report and "intervals (cv: no interval" not in report
    metrics = read_metrics(out)
    assert second_intervals(metrics) == []
    delta = stats.pick(metrics["estimates"], metric="auc_difference", model="fused", task="wma - lge")
    assert len(delta) == 1 and delta[0]["method"] == stats.NO_INTERVAL and delta[0]["ci_low"] is None
    assert stats.format_ci(delta[0]) in report
    # the paper's Table 1, Figure 1 and Supplementary Figure 1 (issue 56)
    assert "Table 1, the cohort (paper's layout)" in report and "24 studies from 24 patients" in report
    drawn = {p.name for p in (out / "figures").iterdir()}
    assert {"echo_figure1_roc_views.png", "echo_supp_figure1_scatter.png"} <= drawn
    assert "The paper's Figure 1" in report and "The paper's Supplementary Figure 1" in report
    # Table 1 by the statistics service (table_one, one column): the baseline characteristics, then the CMR values and
    # findings with their cut-offs
    assert "cardio_stats.table_one" in report and "| characteristic | unique patients (n=24) | summary | N |" in report
    for row in ("| Age (years) |", "| Gender, female |", "| Diabetes |", "| T2 (ms) |", "| ECV abnormal (>= 29%) |"):
        assert row in report, row
    assert report.index("| Gender, female |") < report.index("| native T1 (ms) |") < report.index("| WMA (global) |")
    # Supplementary Figure 1 has its panel A, the fused ROC of the abnormal T1, T2 and ECV flags, beside B-D
    assert "(A) the ROC of the three views fused for abnormal native T1, T2 and ECV" in report


def test_planted_control_detects_wma_end_to_end(tmp_path):
    """The planted control: the fused WMA AUROC's cross-validated 99% interval lies above 0.5 (benchmarks/controls.py:
    the same settings over seeds 1-5, at 95%)."""
    out = run_plugin("echo_cmr", tmp_path / "run", sets=[*CONTROL, LEVEL, "report.figures=false",
                                                         f"echo_cmr.synthetic.seed={CONTROL_SEED}"],
                     cache_dir=tmp_path / "cache", seed=CONTROL_SEED)
    auc = _fused_wma_auc(out)
    assert auc["level"] == 0.99 and auc["ci_low"] > 0.5, auc
    report = (out / "report.md").read_text()
    assert {"echo_gradcam_a4c.png", "echo_gradcam_a4c.gif"} <= {p.name for p in (out / "figures").iterdir()}
    # one interval per number: Table 2's fused WMA cell is the performance table's headline AUC, none recomputed
    rows = [line for line in report.splitlines() if line.startswith("| WMA (global) |")]  # Table 1's count, Table 2
    assert any(row.endswith(f"| {stats.format_ci(auc)} |") for row in rows), rows
    assert second_intervals(read_metrics(out)) == []
    assert report_page_check(out) == []  # in Chromium: fits 1280 px, every figure shows, the parts in order


def test_neutral_control_covers_chance(tmp_path):
    out = run_plugin("echo_cmr", tmp_path / "run", sets=[*CONTROL, LEVEL, "cohort.permute_labels=true", "explain=false",
                                                         "report.figures=false",
                                                         f"echo_cmr.synthetic.seed={CONTROL_SEED}"],
                     cache_dir=tmp_path / "cache", seed=CONTROL_SEED)
    auc = _fused_wma_auc(out)
    assert auc["level"] == 0.99 and auc["ci_low"] <= 0.5 <= auc["ci_high"], auc


def test_the_controls_benchmark_runs_these_controls():
    """benchmarks/controls.py's echo_cmr entry and this file's CONTROL are one setting (issue 38)."""
    from cardio_testing.harness import load_script

    bench = load_script(Path(__file__).parents[3] / "benchmarks" / "controls.py")
    entry = bench.CONTROLS["echo_cmr"]
    assert set(CONTROL) - set(entry.sets) == set() and set(entry.sets) - set(CONTROL) <= set(bench.QUIET)
    assert (entry.seed_key, entry.model, entry.task) == ("echo_cmr.synthetic.seed", "fused", "wma")
