"""Controls with power (issue 38): each plugin's planted and neutral settings side by side, over seeds.

A control pair shows something only when the planted effect is found AND the neutral one is not, at the same
sample size and epochs. For each control and seed this runs the end-to-end tests' settings twice through
cardio's own run (cardio_testing.harness.run_plugin): planted (the synthetic cohort's effect) and neutral (the labels
permuted, cohort.permute_labels, or a neutral setting of the cohort), each on a new synthetic cohort (the
plugin's synthetic seed) and run seed; seed 1 is the one the end-to-end tests run. It reads the run's headline
AUC interval (cardio_testing.harness.headline: with K folds the cross-validated one the report prints, nested CV
for a refitted model and fold DeLong x 2 for a deep one since issue 53, both counting training variability; not
the pooled DeLong row, which treats the K fold models as one and with no signal excluded chance in 14% of data
sets), or, for a control with a reference model, the headline paired difference
(cardio_testing.harness.paired), or, for a difference of two targets of one model, the plugin section's auc_difference
row (echo_cmr's fused WMA - LGE, the report's cross-validated difference). It prints per control: planted detected
(interval above chance) in N of the seeds and neutral covering chance (for every model the test asserts on) in N
of the seeds, with each run's CPU seconds.
The goal is >= 4 of 5 for both.

    .venv/bin/python benchmarks/controls.py [--plugins ecg_transfer spect_polar ...] [--seeds 5] [--out DIR]
    .venv/bin/python benchmarks/controls.py --plugins perfusion_polar --set perfusion_polar.n_patients=48  # a size
    .venv/bin/python benchmarks/controls.py --plugins echo_cmr_wma_lge --first-seed 11 --seeds 3  # other seeds
    .venv/bin/python benchmarks/controls.py --plugins perfusion_polar --neutral-only --first-seed 16 --seeds 60
        # the neutral arm alone: how often each model's interval excludes 0.5, its spread, the folds' correlation
    .venv/bin/python benchmarks/controls.py --smoke   # one seed of ecg_transfer on 50 patients: the script runs

Expensive: two runs of each control a seed (5-30 s of CPU each; 1-4 min of wall time on 2 loaded cores).

Measured (issue 38, under the interval of that time, the cv-corrected t of Nadeau & Bengio with K - 1 df; not
run again since issue 53 changed the headline intervals: the end-to-end tests check each pair at every change;
2 shared cores at load 11-15, so CPU seconds of the run, not wall time; every run is
deterministic: the same settings gave the same rows in separate invocations). `--plugins ecg_transfer spect_polar
perfusion_polar ecg_transfer_notch --seeds 5` (perfusion_polar's row at its current 4 epochs a step came from the
same command with `--set perfusion_polar.step1.epochs=4 --set perfusion_polar.step2.epochs=4`, now its settings):

| control | model, task | planted detected | neutral covers chance | CPU s a run (after the first) |
|---|---|---|---|---|
| ecg_transfer | svm | 5/5 | 5/5 | 5-7 |
| spect_polar | clinical+psd (neutral: all three models) | 5/5 | 5/5 | 4-8 |
| perfusion_polar | resnet-polar, impaired_mfr (neutral: and logistic-17seg) | 5/5 | 4/5 | 17-20 |
| ecg_transfer_notch | resnet18-transfer - guideline, paired ΔAUC | 5/5 | 5/5 | 20-23 |
| mmode_septal_flash | densenet121-cropped, septal_flash (holdout: logit DeLong; README) | 5/5 | 5/5 | 16-19 |
| echo_cmr | fused, wma (A4C; view fusion on inner out-of-fold outputs; README) | 5/5 | 5/5 | 12-28 |
| echo_cmr_wma_lge | fused WMA - fused LGE, the report's cross-validated difference | 5/5 | 5/5 | 20-25 |

ecg_transfer_notch again under the deep ΔAUC's max form (2026-11-27, AMD EPYC, `--plugins ecg_transfer_notch
--seeds 5`): planted detected 5/5 (0.326 [0.201, 0.451] to 0.370 [0.266, 0.473]), neutral covering 0 5/5 (-0.072
[-0.227, 0.082] to 0.129 [-0.064, 0.323]), 30-38 s of CPU a run.
On the project's later AMD EPYC machine (2026-11-27; the rows above are the earlier Intel one's), float rounding
differs and so do the runs: `--plugins echo_cmr --seeds 5` gave planted 5/5 and neutral 4/5, seed 1's neutral 0.637
[0.502, 0.773] (seeds 2-5: 0.415 [0.232, 0.598], 0.485 [0.341, 0.629], 0.500 [0.500, 0.500], 0.563 [0.282, 0.844]).
The end-to-end tests check the echo_cmr pair at 99% (tests/plugins/echo_cmr/test_plugin.py's LEVEL).
Under issue 53's score intervals (AMD EPYC, 2026-11-27): `--plugins mmode_septal_flash --seeds 5` planted 5/5
(1.000 [0.882, 1.000] where the test's classes do not overlap, [1, 1] before; seed 2 0.995 [0.941, 1.000]), neutral
5/5, 32-37 s of CPU a run; `--plugins echo_cmr --seeds 5` planted 5/5 (1.000 [0.786, 1.000] to [0.790, 1.000]),
neutral 4/5 and seed 4 without an interval (constant fused scores: tied, not detected); the tables are in the two
plugins' READMEs. mmode_septal_flash at 1 epoch (2026-11-30, `--set mmode_septal_flash.train.epochs=1`, since then
its setting): planted 5/5 (0.849 [0.649, 0.943] to 1.000 [0.882, 1.000]), neutral 5/5, 22-35 s of CPU a run.
Three controls made cheaper for the tests (2026-11-30, AMD EPYC, `--set stats.nested_repeats=5`, perfusion_polar's
also `--set perfusion_polar.step1.epochs=2 --set perfusion_polar.step2.epochs=2`; since then their settings):
ecg_transfer planted 5/5 (0.805 [0.661, 0.894] to 0.865 [0.735, 0.932]), neutral 5/5, 16-21 s of CPU a run against
about 35 (the SVM it reads is not refitted: only the logistic regression's nested CV got cheaper); spect_polar planted
5/5 (0.804 [0.664, 0.892] to 0.931 [0.833, 0.972], clinical+psd's nested-CV interval on 5 splits), neutral 5/5 for all
three models, 9-22 s against about 46; perfusion_polar planted 5/5 (0.974 [0.846, 0.996] to 1.000 [0.837, 1.000]),
neutral 5/5, 25-33 s against 61. Before the change, perfusion_polar's permuted ResNet at 4 epochs a step excluded 0.5
in 2 of seeds 1-5 (0.720 [0.504, 0.866], 0.765 [0.550, 0.899]) and in 3 of seeds 1-15 (seed 13: 0.781 [0.553, 0.912];
the mean of the 15 estimates 0.56). A check fixed before it ran, the neutral arm alone on 60 new seeds
(`--neutral-only --first-seed 16 --seeds 60` at those settings and stats.nested_repeats=0, 2026-12-01), found the
interval at its level there: the ResNet excluded 0.5 in 0 of 60, the 17-segment logistic regression in 3
(docs/statistics.md, "Small cohorts at K = 5"). spect_polar's seed 4 could not run at all before: its cohort drew a
130% LVESV reduction, a negative follow-up volume its own schema refused (spect_polar's cohort.bounded_reduction
since).
ecg_transfer_notch at 2 fine-tuning epochs instead of 3 (`--set ecg_transfer.finetune.epochs=2`, since then its
setting): planted 5/5 (0.325 [0.191, 0.442] to 0.376 [0.278, 0.476]), neutral covering 0 5/5 (-0.045 [-0.173, 0.083]
to 0.104 [-0.098, 0.296]); its test pair 97 s of wall and 112 s of CPU against 129 and 151, one after the other.
A neutral row without an interval counts as not detected, and the summary says how many.

| control | seed | planted [CI] | neutral [CI] |
|---|---|---|---|
| ecg_transfer | 1 | 0.805 [0.637, 0.974] | 0.484 [0.348, 0.620] |
| ecg_transfer | 2 | 0.828 [0.678, 0.977] | 0.579 [0.459, 0.699] |
| ecg_transfer | 3 | 0.851 [0.808, 0.894] | 0.439 [0.301, 0.577] |
| ecg_transfer | 4 | 0.865 [0.780, 0.950] | 0.465 [0.333, 0.597] |
| ecg_transfer | 5 | 0.837 [0.652, 1.000] | 0.414 [0.226, 0.601] |
| spect_polar | 1 | 0.857 [0.724, 0.989] | 0.493 [0.339, 0.646] |
| spect_polar | 2 | 0.855 [0.746, 0.965] | 0.559 [0.326, 0.792] |
| spect_polar | 3 | 0.815 [0.663, 0.966] | 0.487 [0.329, 0.644] |
| spect_polar | 4 | 0.930 [0.888, 0.972] | 0.474 [0.234, 0.715] |
| spect_polar | 5 | 0.834 [0.648, 1.000] | 0.476 [0.253, 0.699] |
| perfusion_polar | 1 | 1.000 [1.000, 1.000] | 0.385 [0.039, 0.731] |
| perfusion_polar | 2 | 1.000 [1.000, 1.000] | 0.451 [0.221, 0.682] |
| perfusion_polar | 3 | 0.988 [0.935, 1.000] | 0.740 [0.632, 0.847] (excludes 0.5) |
| perfusion_polar | 4 | 1.000 [1.000, 1.000] | 0.467 [0.192, 0.742] |
| perfusion_polar | 5 | 0.988 [0.935, 1.000] | 0.572 [0.287, 0.858] |
| ecg_transfer_notch | 1 | +0.333 [+0.243, +0.422] | +0.133 [-0.129, +0.395] |
| ecg_transfer_notch | 2 | +0.351 [+0.163, +0.540] | -0.064 [-0.420, +0.293] |
| ecg_transfer_notch | 3 | +0.374 [+0.218, +0.530] | -0.049 [-0.297, +0.198] |
| ecg_transfer_notch | 4 | +0.377 [+0.195, +0.560] | +0.055 [-0.320, +0.430] |
| ecg_transfer_notch | 5 | +0.348 [+0.119, +0.576] | -0.035 [-0.357, +0.286] |
| echo_cmr_wma_lge | 1 | +0.470 [+0.415, +0.526] | 0.000 [0.000, 0.000] |
| echo_cmr_wma_lge | 2 | +0.409 [+0.124, +0.693] | 0.000 [0.000, 0.000] |
| echo_cmr_wma_lge | 3 | +0.537 [+0.381, +0.694] | 0.000 [0.000, 0.000] |
| echo_cmr_wma_lge | 4 | +0.521 [+0.280, +0.762] | -0.006 [-0.030, +0.018] |
| echo_cmr_wma_lge | 5 | +0.424 [+0.011, +0.838] | 0.000 [0.000, 0.000] |

echo_cmr_wma_lge: `--plugins echo_cmr_wma_lge --seeds 5` (815 s wall for the ten runs at load 9-14), sized on pilot
seeds 11-13 with `--first-seed 11 --seeds 3 --set ...` (tests/plugins/echo_cmr/test_wma_lge.py lists each size
tried). Its neutral interval has width 0 in 4 of 5 seeds: one label in both targets, so the heads rank alike; it
checks that the pipeline treats the targets alike, and cv_coverage.py --targets measures the interval's coverage.

Before (the earlier settings, read on this headline interval): ecg_transfer (the script's 71 patients; the test had
120) planted 3/5, neutral 5/5 (folds of 14 patients held 1 non-responder: 77-90% responded); spect_polar (60
patients, 3 folds: t with 2 df) 3/5, 5/5; perfusion_polar (36 patients, 2 folds: t with 1 df; one optimizer step an
epoch) 1/5, 5/5. Read on the pooled DeLong row, as this script and the tests did until then, spect_polar's neutral
excluded 0.5 in 2 of 5 seeds (0.674 [0.527, 0.821], 0.333 [0.187, 0.480]): an interval that ignores training
variability, not a leak (the variables are chosen inside each training fold). With the QRS and LBBB effects kept in
the neutral arm, ecg_transfer_notch's neutral excluded 0 in 2 of 5 (+0.114 [+0.015, +0.213], -0.103 [-0.177,
-0.029]): each model then carries some signal, so the neutral arm was no null for a difference.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Control:
    """One plugin's control pair: the tests' small settings, the synthetic seed key, and what is read.

    The planted run counts as detected when `model`'s headline AUC interval lies above 0.5 (with `reference`: the
    cross-validated paired difference model - reference lies above 0; with `task_reference`: the difference of
    `model`'s AUC for `task` minus its AUC for task_reference, the plugin section's auc_difference row, lies above
    0); the neutral one counts as not detected when that interval covers 0.5 (0) for `model` and every one of
    `neutral_models`, what the tests assert."""

    sets: tuple[str, ...]
    seed_key: str
    model: str
    task: str | None = None
    planted: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ("cohort.permute_labels=true",)
    neutral_models: tuple[str, ...] = ()
    reference: str | None = None
    plugin: str | None = None  # the plugin, where the control's name is not (a second control of one plugin)
    task_reference: str | None = None


QUIET = ("report.figures=false", "explain=false", "final_model=false")
CONTROLS = {
    # tests/plugins/ecg_transfer/test_plugin.py CONTROL (the same tuple; a test holds them equal): the SVM on the
    # clinical covariates; planted QRS and LBBB effects, intercept -2.5 so that about half the patients respond
    "ecg_transfer": Control(
        ("ecg_transfer.synthetic.n_patients=120", "cv.folds=5", "ecg_transfer.pretrain.enabled=false",
         "stats.reference=null", "ecg_transfer.finetune.scratch=false", "ecg_transfer.baselines.rf.n_estimators=50",
         "ecg_transfer.baselines.threshold_cv=2", "stats.n_resamples=200", "stats.nested_repeats=5",
         "ecg_transfer.synthetic.effects.lbbb=3.0",
         "ecg_transfer.synthetic.effects.qrs_per_ms=0.08", "ecg_transfer.synthetic.effects.notch=0.0",
         "ecg_transfer.synthetic.effects.intercept=-2.5", *QUIET),
        "ecg_transfer.synthetic.seed", "svm"),
    # tests/plugins/ecg_transfer/test_neutral.py SETTINGS (the same tuple; a test holds them equal): the paper's
    # claim as a difference, the transfer ResNet against the guideline rule. Planted: a mid-QRS notch effect twice
    # the default (14), which only the waveform shows; neutral: notch 0. QRS and LBBB effects are 0 in both, so
    # that in the neutral run both models score chance and the true difference is 0 (with the default QRS and LBBB
    # effects each model carries some signal and which ranks better differs by seed: not a null for a difference)
    "ecg_transfer_notch": Control(
        ("ecg_transfer.synthetic.n_patients=100", "cv.folds=5", "ecg_transfer.synthetic.effects.intercept=0.0",
         "ecg_transfer.synthetic.effects.qrs_per_ms=0.0", "ecg_transfer.synthetic.effects.lbbb=0.0",
         "ecg_transfer.fs=250", "ecg_transfer.preprocess.max_beats_per_record=4",
         "ecg_transfer.preprocess.beat_length=128", "ecg_transfer.spectrogram.nperseg=32",
         "ecg_transfer.spectrogram.noverlap=28", "ecg_transfer.pretrain.records=[101, 106, 119, 118, 109]",
         "ecg_transfer.pretrain.max_beats_per_class=50", "ecg_transfer.pretrain.max_eval_beats=200",
         "ecg_transfer.pretrain.epochs=1", "ecg_transfer.finetune.epochs=2", "ecg_transfer.finetune.scratch=false",
         "ecg_transfer.baselines.svm.enabled=false", "ecg_transfer.baselines.rf.enabled=false",
         "ecg_transfer.baselines.logistic.enabled=false", "ecg_transfer.baselines.deep_features=false",
         "stats.n_resamples=100", "stats.nested_repeats=0", *QUIET),
        "ecg_transfer.synthetic.seed", "resnet18-transfer", reference="guideline",
        planted=("ecg_transfer.synthetic.effects.notch=14.0",), neutral=("ecg_transfer.synthetic.effects.notch=0.0",),
        plugin="ecg_transfer"),
    # tests/plugins/spect_polar/test_plugin.py CONTROL (the same tuple; a test holds them equal): planted
    # dyssynchrony, read by clinical+psd; with the labels permuted, every model's interval covers 0.5
    "spect_polar": Control(
        ("spect_polar.in_sample_analysis=false", "spect_polar.synthetic.n_patients=120",
         "spect_polar.synthetic.slices=20", "spect_polar.synthetic.size=40", "spect_polar.phase.rings=16",
         "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32", "spect_polar.autoencoder.iterations=40",
         "spect_polar.synthetic.truth.dyssynchrony_per_sd=3.0", "spect_polar.analysis.permutations=200", "cv.folds=5",
         "stats.n_resamples=200", "stats.nested_repeats=5", *QUIET),
        "spect_polar.synthetic.seed", "clinical+psd", neutral_models=("clinical+ae", "clinical+psd", "clinical+pbw")),
    # tests/plugins/perfusion_polar/test_plugin.py CONTROL (the same tuple; a test holds them equal): impaired MFR
    # read by the ResNet; with the labels permuted, both models' intervals cover 0.5
    "perfusion_polar": Control(
        ("perfusion_polar.n_patients=60", "cv.folds=5", "perfusion_polar.size=24", "perfusion_polar.step1.epochs=2",
         "perfusion_polar.step2.epochs=2", "perfusion_polar.step1.batch_size=16", "perfusion_polar.step2.batch_size=16",
         "train.cpu_threads=1", "stats.n_resamples=100", "stats.nested_repeats=5", *QUIET),
        "perfusion_polar.seed", "resnet-polar", "impaired_mfr", neutral_models=("resnet-polar", "logistic-17seg")),
    # tests/plugins/mmode_septal_flash/test_plugin.py CONTROL (the same tuple; a test holds them equal): the planted
    # septal flash, read by the cropped model (the paper's reference) on the paper's holdout (64:16:20) of 200
    # patients: 40 test patients. Not k-fold: five fits would cost five times the training, and the holdout is the
    # plugin's protocol. Seeds 1-5 at 1 epoch: planted 5/5, neutral 5/5 on the headline DeLong score row (README
    # "Controls"; 2 epochs until 2026-11-30, the same 5/5 and 5/5)
    "mmode_septal_flash": Control(
        tuple(f"mmode_septal_flash.{k}" for k in (
            "synthetic.n_patients=200", "synthetic.n_sf=80", "synthetic.size=64", "mmode.offsets=1",
            "model.input_size=64", "train.epochs=1", "model.variants=[cropped]"))
        + ("train.cpu_threads=1", "stats.n_resamples=200", *QUIET),
        "mmode_septal_flash.synthetic.seed", "densenet121-cropped", "septal_flash"),
    # tests/plugins/echo_cmr/test_plugin.py CONTROL (a test checks they agree): planted wall-motion abnormality read
    # from A4C, 5 folds, the view fusion on 2 inner folds' out-of-fold outputs
    "echo_cmr": Control(
        ("echo_cmr.synthetic.n_patients=40", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.synthetic.n_frames=20",
         "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=10", "echo_cmr.train.batch_size=8",
         "echo_cmr.train.lr=0.003", "train.val_fraction=0", "echo_cmr.workers=1", "echo_cmr.views=[A4C]",
         "echo_cmr.targets=[{target: wma, kind: binary, level: study, label: wma_global, title: WMA (global)}]",
         "echo_cmr.synthetic.truth.wma_motion_reduction=1.0", "echo_cmr.synthetic.truth.wma_fraction=0.5",
         "cv.folds=5", "echo_cmr.fusion_folds=2", "stats.n_resamples=200", *QUIET),
        "echo_cmr.synthetic.seed", "fused", "wma"),
    # tests/plugins/echo_cmr/test_wma_lge.py SETTINGS (the same tuples; a test holds them equal): the paper's
    # comparison, fused WMA AUROC minus fused LGE AUROC (issue 29), as a difference control on the report's
    # cross-validated difference. Planted: LGE invisible (brightness 0) and independent of WMA (P(LGE) 0.5 with and
    # without), so LGE's true AUROC is 0.5 while WMA's walls show; neutral: LGE in exactly the patients with WMA
    # (P 1 and 0), so both targets are one label and carry the same signal: a true difference of 0. 60 studies and
    # walls moving 40% less, chosen on pilot seeds 11-13 (the test's docstring): at 100% every neutral fold read both
    # targets at AUROC 1 (an interval [0, 0] that cannot fail); at 40 studies a fold's inner networks (16 studies)
    # sometimes read nothing and the planted difference was missed
    "echo_cmr_wma_lge": Control(
        ("echo_cmr.synthetic.n_patients=60", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.synthetic.n_frames=20",
         "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=10", "echo_cmr.train.batch_size=8",
         "echo_cmr.train.lr=0.003", "train.val_fraction=0", "echo_cmr.workers=1", "echo_cmr.views=[A4C]",
         "echo_cmr.targets=[{target: wma, kind: binary, level: study, label: wma_global, title: WMA (global)}, "
         "{target: lge, kind: binary, level: study, label: lge_global, title: LGE (global)}]",
         "echo_cmr.synthetic.truth.wma_motion_reduction=0.4", "echo_cmr.synthetic.truth.wma_fraction=0.5",
         "echo_cmr.synthetic.truth.lge_brightness=0.0", "cv.folds=5", "echo_cmr.fusion_folds=2",
         "stats.n_resamples=200", *QUIET),
        "echo_cmr.synthetic.seed", "fused", "wma", task_reference="lge", plugin="echo_cmr",
        planted=("echo_cmr.synthetic.truth.lge_given_wma=0.5", "echo_cmr.synthetic.truth.lge_without_wma=0.5"),
        neutral=("echo_cmr.synthetic.truth.lge_given_wma=1.0", "echo_cmr.synthetic.truth.lge_without_wma=0.0")),
}


def headline_auc(run: Path, control: Control, model: str | None = None) -> dict:
    """The run's headline AUC row of a model (the control's by default, and its task): estimate, interval and the
    method it names (with K folds the cv-corrected t, not the pooled DeLong row that treats the K models as one).
    With a `reference`, the cross-validated paired difference model - reference in the same keys."""
    from cardio_stats import pick
    from cardio_testing.harness import headline, paired, read_metrics

    metrics = read_metrics(run)
    if control.task_reference is not None:  # one model, two targets: the plugin's row (the core compares models)
        rows = pick(metrics["estimates"], metric="auc_difference", fold="pooled", model=model or control.model,
                    task=f"{control.task} - {control.task_reference}")
        if len(rows) != 1:
            raise SystemExit(f"{run}: {len(rows)} auc_difference rows of {control.task} - {control.task_reference}")
        return rows[0]
    if control.reference is None:
        return headline(metrics, "auc", model=model or control.model, task=control.task)
    return paired(metrics, model or control.model, control.reference, task=control.task)


def chance(control: Control) -> float:
    """What "no effect" reads as: an AUC of 0.5, or a difference of 0."""
    return 0.5 if control.reference is None and control.task_reference is None else 0.0


#: --smoke: smaller runs that check the script, not the controls' power
SMOKE = ("ecg_transfer.synthetic.n_patients=50", "cv.folds=2", "ecg_transfer.preprocess.max_beats_per_record=1",
         "ecg_transfer.baselines.rf.enabled=false", "ecg_transfer.baselines.logistic.enabled=false",
         "stats.n_resamples=100")


def one_run(name: str, control: Control, kind: str, seed: int, work: Path, smoke: bool = False,
            extra_sets: tuple[str, ...] = ()) -> tuple[Path, float]:
    """The control's planted or neutral run of one seed (its synthetic cohort's seed and the run seed): the run
    folder and the CPU seconds it took (this process's, threads included: load on the machine does not inflate it)."""
    from cardio_testing.harness import run_plugin

    extra = control.planted if kind == "planted" else control.neutral
    sets = (*control.sets, *extra, f"{control.seed_key}={seed}", *(SMOKE if smoke else ()), *extra_sets)
    cpu = time.process_time()
    run = run_plugin(control.plugin or name, work / f"{name}-{kind}-{seed}", sets=sets, cache_dir=work / "cache",
                     seed=seed)
    return run, time.process_time() - cpu


def run_pair(name: str, control: Control, seed: int, work: Path, smoke: bool = False,
             extra_sets: tuple[str, ...] = ()) -> tuple[dict, dict, list[str]]:
    """The planted and the neutral run of one seed (a new synthetic cohort and run seed each): the planted row,
    the neutral row, and the other neutral models whose interval does not cover chance. Each row gets the run's
    CPU seconds ("cpu_s", this process's, threads included: load on the machine does not inflate it)."""
    out, runs = [], []
    for kind in ("planted", "neutral"):
        run, cpu_s = one_run(name, control, kind, seed, work, smoke, extra_sets)
        out.append({**headline_auc(run, control), "cpu_s": cpu_s})
        runs.append(run)  # its checkpoints went when it finished (train.keep_checkpoints: false)
    others = [f"{m} {e['estimate']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
              for m in control.neutral_models if m != control.model
              for e in [headline_auc(runs[1], control, m)] if not e["ci_low"] <= chance(control) <= e["ci_high"]]
    return out[0], out[1], others


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugins", nargs="+", default=list(CONTROLS), choices=list(CONTROLS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=1,
                    help="seeds FIRST..FIRST+N-1 (trying a size on other seeds than the table's 1..N)")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--smoke", action="store_true", help="one seed of ecg_transfer, small: checks the script runs")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting over every control's (trying a size before it goes into CONTROLS)")
    ap.add_argument("--neutral-only", action="store_true",
                    help="the neutral arm alone over the seeds, as a coverage check of the headline AUC interval: "
                         "exclusions of 0.5 per model and tail, the estimates' spread against the intervals' SE, "
                         "and the folds' AUC correlation against the 1/(K - 1) the fold-DeLong interval assumes")
    a = ap.parse_args()
    if a.smoke:
        a.plugins, a.seeds = ["ecg_transfer"], 1
    with tempfile.TemporaryDirectory(prefix="cardio-controls-") as tmp:
        (neutral_table if a.neutral_only else table)(a, a.out or Path(tmp))


def table(a: argparse.Namespace, work: Path) -> None:
    """Every control's pairs, one row a seed as it finishes, then the N/seeds summary."""
    if a.sets:
        print(f"settings over the controls': {' '.join(a.sets)}")
    print("| control | model | seed | planted [CI] | neutral [CI] | interval | CPU s planted, neutral | s |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for name in a.plugins:
        control, detected, covers, bare = CONTROLS[name], 0, 0, 0
        what = f"{control.model}{f' - {control.reference}' if control.reference else ''} {control.task or ''}".strip()
        what += f" - {control.task_reference}" if control.task_reference else ""
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            t0 = time.perf_counter()
            planted, neutral, others = run_pair(name, control, seed, work, a.smoke, tuple(a.sets))
            # a row without an interval (fewer than 5 folds, as --smoke runs) is neither detected nor covering
            detected += planted["ci_low"] is not None and planted["ci_low"] > chance(control)
            covers += (neutral["ci_low"] is not None and neutral["ci_low"] <= chance(control) <= neutral["ci_high"]
                       and not others)
            bare += neutral["ci_low"] is None and not others  # claims nothing: not a detection either
            cells = [f"{e['estimate']:.3f} " + (f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]" if e["ci_low"] is not None
                                               else "(no interval)") for e in (planted, neutral)]
            if others:
                cells[1] += f"; not covering: {', '.join(others)}"
            print(f"| {name} | {what} | {seed} | {cells[0]} | {cells[1]} | {planted.get('method', '')} | "
                  f"{planted['cpu_s']:.0f}, {neutral['cpu_s']:.0f} | {time.perf_counter() - t0:.0f} |", flush=True)
        difference = control.reference or control.task_reference
        models = what if difference else ", ".join(dict.fromkeys((control.model, *control.neutral_models)))
        without = f"; {bare} more without an interval, not detected" if bare else ""
        summary.append(f"| {name} | {what} | {detected}/{a.seeds} | {covers}/{a.seeds} ({models}{without}) |")
    print("\n| control | model, task | planted detected (CI excludes chance) | neutral covers chance |")
    print("|---|---|---|---|")
    print("\n".join(summary))


def fold_aucs(metrics: dict, control: Control, model: str) -> np.ndarray:
    """The model's per-fold AUCs in a run's metrics, in fold order (repeat 0)."""
    from cardio_stats import pick

    keys = {"metric": "auc", "model": model, **({"task": control.task} if control.task else {})}
    rows = sorted((e for e in pick(metrics["estimates"], **keys)  # repeat 0, no subgroup
                   if str(e.get("fold", "")).startswith("fold")), key=lambda e: e["fold"])
    return np.array([e["estimate"] for e in rows])


def neutral_table(a: argparse.Namespace, work: Path) -> None:
    """--neutral-only: each AUC control's neutral arm over the seeds, one row a seed, then per model how often the
    headline interval excluded 0.5 (below, above), the mean estimate, the estimates' SD against the SE the intervals
    assume (their half-width / 1.96), and the folds' AUC correlation pooled over the seeds, centred at 0.5 (the
    neutral truth), against the 1/(K - 1) that the fold-DeLong interval's factor 2 assumes."""
    from cardio_testing.harness import headline, read_metrics

    if a.sets:
        print(f"settings over the controls': {' '.join(a.sets)}")
    for name in a.plugins:
        control = CONTROLS[name]
        if chance(control) != 0.5:
            raise SystemExit(f"--neutral-only reads a control's AUC; {name} is a difference control")
        models = list(dict.fromkeys((control.model, *control.neutral_models)))
        print(f"\n{name}, neutral arm ({' '.join(control.neutral)}), task {control.task or '(the label)'}")
        print("| seed | " + " | ".join(models) + " | CPU s |\n|---|" + "---|" * (len(models) + 1))
        rows: dict[str, list] = {m: [] for m in models}
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            run, cpu_s = one_run(name, control, "neutral", seed, work, a.smoke, tuple(a.sets))
            metrics = read_metrics(run)  # once a run: every model's headline row and fold rows come from it
            cells = []
            for m in models:
                e = headline(metrics, "auc", model=m, task=control.task)  # headline_auc's row of an AUC control
                rows[m].append((e["estimate"], e["ci_low"], e["ci_high"], fold_aucs(metrics, control, m)))
                cells.append(f"{e['estimate']:.3f} " + (f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
                                                        if e["ci_low"] is not None else "(no interval)"))
            print(f"| {seed} | " + " | ".join(cells) + f" | {cpu_s:.0f} |", flush=True)
        print("\n| model | interval excludes 0.5 (below, above) | without one | mean estimate | SD of estimates | "
              "intervals' SE | folds' AUC correlation (factor 2 assumes) |\n|---|---|---|---|---|---|---|")
        for m, rs in rows.items():
            est = np.array([r[0] for r in rs])
            bounded = [r for r in rs if r[1] is not None]
            below, above = sum(r[2] < 0.5 for r in bounded), sum(r[1] > 0.5 for r in bounded)
            se = np.mean([(r[2] - r[1]) / (2 * 1.96) for r in bounded]) if bounded else float("nan")
            k = min(len(r[3]) for r in rs)
            centred = np.array([r[3][:k] for r in rs]) - 0.5
            off = ~np.eye(k, dtype=bool)
            corr = (np.einsum("si,sj->ij", centred, centred)[off].mean() / (centred ** 2).sum(axis=0).mean()
                    if k > 1 else float("nan"))
            sd = f"{est.std(ddof=1):.3f}" if len(est) > 1 else "–"
            print(f"| {m} | {below + above} of {len(bounded)} ({below}, {above}) | {len(rs) - len(bounded)} | "
                  f"{est.mean():.3f} | {sd} | {se:.3f} | {corr:+.3f} ({1 / (k - 1) if k > 1 else float('nan'):+.3f}) |")


if __name__ == "__main__":
    main()
