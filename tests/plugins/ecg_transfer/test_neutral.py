"""The paper's claim as a control pair (issue 38): the transfer-learned ResNet against its pre-specified comparator,
the guideline rule, on the run's headline paired AUC difference (cross-validated, corrected t with 4 df).

Planted: a mid-QRS notch effect (ecg_transfer.synthetic.effects.notch: 14, twice the default), which only the
waveform shows: the difference's interval lies above 0. Neutral: notch 0: it covers 0. The QRS and LBBB effects are
0 in both: with them (the earlier neutral setting) each model carries some of the signal and which ranks better
differed by seed (ΔAUC +0.114 [+0.015, +0.213] at seed 1, −0.103 [−0.177, −0.029] at seed 5), so the neutral
interval is not about a null. 100 patients, 5 folds, four beats per ECG at 250 Hz, two fine-tuning epochs (150
patients and three epochs until 2026-11-30; at 100 and two, seeds 1-5: planted 0.292 [0.123, 0.440] to 0.370 [0.225,
0.498], neutral covering 0 in 5 of 5; the pair 79 s of wall against 97 at 150 patients, one after the other); no
nested CV (stats.nested_repeats=0: it refits the guideline for the guideline's own AUC interval, which this pair
does not read; the paired difference is the same without it):
benchmarks/controls.py CONTROLS["ecg_transfer_notch"] holds these settings (test_settings_are_the_benchmarks) and
measures both over seeds 1-5. Seed 1, the benchmark's first, was fixed before any result."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio_stats import CV_DIFF_METHOD
from cardio_testing.harness import load_script, paired, read_metrics, run_plugin

REPO = Path(__file__).resolve().parents[3]
SETTINGS = ("ecg_transfer.synthetic.n_patients=100", "cv.folds=5", "ecg_transfer.synthetic.effects.intercept=0.0",
            "ecg_transfer.synthetic.effects.qrs_per_ms=0.0", "ecg_transfer.synthetic.effects.lbbb=0.0",
            "ecg_transfer.fs=250", "ecg_transfer.preprocess.max_beats_per_record=4",
            "ecg_transfer.preprocess.beat_length=128", "ecg_transfer.spectrogram.nperseg=32",
            "ecg_transfer.spectrogram.noverlap=28", "ecg_transfer.pretrain.records=[101, 106, 119, 118, 109]",
            "ecg_transfer.pretrain.max_beats_per_class=50", "ecg_transfer.pretrain.max_eval_beats=200",
            "ecg_transfer.pretrain.epochs=1", "ecg_transfer.finetune.epochs=2", "ecg_transfer.finetune.scratch=false",
            "ecg_transfer.baselines.svm.enabled=false", "ecg_transfer.baselines.rf.enabled=false",
            "ecg_transfer.baselines.logistic.enabled=false", "ecg_transfer.baselines.deep_features=false",
            "stats.n_resamples=100", "stats.nested_repeats=0", "report.figures=false", "explain=false",
            "final_model=false")
PLANTED = ("ecg_transfer.synthetic.effects.notch=14.0",)
NEUTRAL = ("ecg_transfer.synthetic.effects.notch=0.0",)
SEED = 1


def test_settings_are_the_benchmarks():
    bench = load_script(REPO / "benchmarks" / "controls.py").CONTROLS["ecg_transfer_notch"]
    assert (bench.sets, bench.planted, bench.neutral) == (SETTINGS, PLANTED, NEUTRAL)
    assert (bench.model, bench.reference, bench.seed_key) == ("resnet18-transfer", "guideline",
                                                              "ecg_transfer.synthetic.seed")


@pytest.mark.slow  # two whole runs with MIT-BIH pretraining, ~23 s of CPU each
@pytest.mark.parametrize("neutral", [False, True], ids=["planted", "neutral"])
def test_transfer_resnet_against_the_guideline_rule(tmp_path, pair_cache, mitdb_dir, neutral):
    sets = (*SETTINGS, *(NEUTRAL if neutral else PLANTED), f"ecg_transfer.synthetic.seed={SEED}",
            f"ecg_transfer.mitdb_dir={mitdb_dir}")
    out = run_plugin("ecg_transfer", tmp_path / "run", cache_dir=pair_cache, sets=sets, seed=SEED)
    d = paired(read_metrics(out), "resnet18-transfer", "guideline")
    print(f"{'neutral' if neutral else 'planted'}: ΔAUC resnet18-transfer − guideline {d['estimate']:+.3f} "
          f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] ({d['method']})")
    assert d["method"] == CV_DIFF_METHOD, d
    if neutral:
        assert d["ci_low"] <= 0.0 <= d["ci_high"], d
    else:
        assert d["ci_low"] > 0.0, d
    md = (out / "report.md").read_text()
    # the report says what was planted and names the pre-specified reference
    notch = "0 × (mid-QRS notch depth" if neutral else "14 × (mid-QRS notch depth"
    assert notch in md and "**resnet18-transfer**" in md
