"""Choices the pretraining makes on DS1 alone (record split, prior strength), its metrics, and the DS2 ledger."""
import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("cardio_ecg_transfer")

from cardio import CardioError
from cardio_ecg_transfer import aami, beat_metrics, beat_set, prior_correction, side_models
from cardio_testing.harness import load_script

REPO = Path(__file__).resolve().parents[3]

bench = load_script(REPO / "benchmarks" / "aami_interpatient.py")  # the protocol and its ledgers


def _beat_set(y, population):
    y = np.asarray(y)
    return beat_set.BeatSet(np.zeros((len(y), 2, 2), np.float32), y, np.full(len(y), "100"),
                            np.asarray(population), np.zeros((len(y), 0), np.float32))


def test_weighted_macro_f1_matches_a_hand_count():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    # weights 2 for the N beats, 1 for the S beats. N: tp 2, support 4, predicted 2 -> F1 4/6;
    # S: tp 2, support 2, predicted 2 (S beats) + 2 (the N beat called S) = 4 -> F1 4/6
    f1 = beat_metrics.weighted_macro_f1(y, pred, np.array([2.0, 2.0, 1.0, 1.0]))
    assert f1 == pytest.approx(np.mean([2 * 2 / (4 + 2), 2 * 2 / (2 + 4)]))


def test_prior_strength_is_chosen_by_validation_macro_f1():
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.random(n) < 0.1).astype(int)  # class 1 is rare at the natural mix
    logits = np.zeros((n, 5)) - 9.0
    logits[:, 0] = 0.0
    logits[:, 1] = np.where(y == 1, 1.0, 0.6) + rng.normal(0, 0.5, n)  # a network trained on a balanced mix
    shift = np.array([0.0, -1.0, 0.0, 0.0, 0.0])  # the natural mix makes class 1 less likely
    best, scores = prior_correction.choose_prior_strength(logits, y, shift, np.ones(n))
    assert set(scores) == {f"{s:g}" for s in prior_correction.PRIOR_STRENGTHS}
    assert scores[f"{best:g}"] == max(scores.values()) and best > 0
    # a flat criterion keeps the exact Bayes correction (strength 1)
    flat, _ = prior_correction.choose_prior_strength(np.zeros((n, 5)), y, np.zeros(5), np.ones(n))
    assert flat == 1.0


def test_confidence_intervals_count_records_not_beats():
    # record B holds every V beat, half of them right: one record is no sample of records, so Se V has no interval,
    # which a beat-level one (an interval around 0.5 from 100 beats) would have given
    record = np.repeat(["A", "B", "C"], 100)
    y = np.r_[np.zeros(100), np.full(100, 2), np.zeros(100)].astype(int)
    pred = y.copy()
    pred[100:150] = 0  # half of B's V beats called N
    pred[200:210] = 1  # ten of C's N beats called S
    config = {"stats": {"n_resamples": 400, "level": 0.95}}
    ci = beat_metrics.record_intervals(y, pred, record, config)
    assert ci["unit"] == "record" and ci["n_records"] == 3
    v = ci["estimates"]["se_V"]
    assert v["estimate"] == 0.5 and v["ci_low"] is None and v["ci_high"] is None and v["extra"]["n_records"] == 1
    acc = ci["estimates"]["accuracy"]
    assert acc["estimate"] == pytest.approx(240 / 300) and acc["ci_low"] < acc["estimate"] < acc["ci_high"]
    assert acc["method"] == beat_metrics.RECORD_WILSON and acc["level"] == 0.95
    # Wilson at the effective sample size of the records' clustered variance, at t's quantile with 2 df (records of
    # equal size: the bias-reduced variance and Bell-McCaffrey's df are the plain ones)
    right, beats = np.array([100.0, 50.0, 90.0]), np.array([100.0, 100.0, 100.0])
    p = right.sum() / beats.sum()
    v = 3 / 2 * np.sum(((right - p * beats) / beats.sum()) ** 2)
    n_eff, q = p * (1 - p) / v, stats.t.ppf(0.975, 2)
    centre, half = (p + q**2 / (2 * n_eff)) / (1 + q**2 / n_eff), q * np.sqrt(p * (1 - p) / n_eff + q**2 / (
        4 * n_eff**2)) / (1 + q**2 / n_eff)
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx((centre - half, centre + half))
    assert acc["extra"]["n_effective"] == pytest.approx(n_eff) and acc["extra"]["df"] == pytest.approx(2)


def test_ppv_macro_f1_and_balanced_accuracy_cis_resample_records():
    record = np.repeat(["A", "B", "C", "D"], 50)
    y = np.r_[np.zeros(50), np.full(50, 2), np.zeros(50), np.full(50, 1)].astype(int)
    pred = y.copy()
    pred[0:10] = 2  # ten of A's N beats called V
    config = {"stats": {"n_resamples": 300, "level": 0.95}}
    ci = beat_metrics.record_intervals(y, pred, record, config)["estimates"]
    assert ci["ppv_V"]["estimate"] == pytest.approx(50 / 60) and ci["se_V"]["estimate"] == 1.0
    r = beat_metrics.classification_results(y, pred)
    assert ci["macro_f1"]["estimate"] == pytest.approx(r["macro_f1"])
    assert ci["balanced_accuracy"]["estimate"] == pytest.approx(r["balanced_accuracy"])
    assert r["balanced_accuracy"] == pytest.approx(np.mean([90 / 100, 1.0, 1.0]))  # N, S, V present; F absent


def test_always_n_baseline():
    y = np.array([0] * 89 + [1] * 5 + [2] * 6)
    base = beat_metrics.always_n(y)
    assert base["accuracy"] == pytest.approx(0.89) and base["balanced_accuracy"] == pytest.approx(1 / 3)
    assert base["per_class"]["S"]["ppv"] is None and base["per_class"]["S"]["f1"] == 0.0


def test_runs_see_ds1_only():
    assert aami.ds1_records(None) == list(aami.DS1)
    assert aami.ds1_records(["119", "101"]) == ["101", "119"]
    with pytest.raises(CardioError, match=r"DS2 record\(s\) \['100'\].*aami_interpatient.py --final"):
        aami.ds1_records(["101", "100"])
    with pytest.raises(CardioError, match="paced"):
        aami.ds1_records(["101", "217"])
    config: dict = {"ecg_transfer": {"pretrain": {"side_features": []}}}
    with pytest.raises(CardioError, match="outside the ledgered DS2 look"):
        beat_set.build_beat_set(Path("/nowhere"), ["101", "105"], config, max_per_class=None, max_total=None, seed=0)


def test_fitting_and_validation_records_are_split_by_record():
    config = {"ecg_transfer": {"pretrain": {"val_fraction": 0.2}}}
    fit, val = beat_set.split_fit_val(list(aami.DS1), config, seed=0)
    assert len(val) == 4 and not set(fit) & set(val) and sorted(fit + val) == sorted(aami.DS1)
    assert beat_set.split_fit_val(list(aami.DS1), config, seed=0) == (fit, val)  # the seed fixes it
    assert beat_set.split_fit_val(list(aami.DS1), config, seed=1) != (fit, val)
    assert len(beat_set.split_fit_val(["101", "106"], config, seed=0)[1]) == 1
    with pytest.raises(CardioError, match="val_fraction"):
        beat_set.split_fit_val(list(aami.DS1), {"ecg_transfer": {"pretrain": {"val_fraction": 0}}}, seed=0)


def test_ds1_cv_folds_partition_the_records():
    folds = bench._fold_records(list(aami.DS1), 4, seed=0)
    assert sorted(r for f in folds for r in f) == sorted(aami.DS1) and {len(f) for f in folds} == {5, 6}


def test_the_ds2_ledger_lists_the_earlier_looks_and_appends(tmp_path):
    rows = bench.read_ledger(REPO / "benchmarks" / "ledgers" / "aami_ds2.csv")
    assert rows and list(rows[0]) == list(bench.LEDGER_COLUMNS)
    earlier = [r for r in rows if r["status"] == "earlier look"]
    assert [r["look"] for r in rows[:len(earlier)]] == [str(i + 1) for i in range(len(earlier))]
    assert {"0.905", "0.914", "0.901"} <= {r["accuracy"] for r in earlier}  # the development looks at DS2
    ledger = tmp_path / "l.csv"
    bench.append_ledger(ledger, {"look": 1, "seed": 0, "macro_f1": "0.5"})
    bench.append_ledger(ledger, {"look": 2, "seed": 1})
    with ledger.open() as f:
        got = list(csv.DictReader(f))
    assert [r["look"] for r in got] == ["1", "2"] and got[0]["macro_f1"] == "0.5" and got[1]["macro_f1"] == ""


def test_config_hash_covers_the_pretraining_settings_only():
    from cardio_testing.harness import plugin_config

    base = bench.config_hash(plugin_config("ecg_transfer", []))
    assert base == bench.config_hash(plugin_config("ecg_transfer", ["seed=5", "cv.folds=3"]))
    assert base != bench.config_hash(plugin_config("ecg_transfer", ["ecg_transfer.pretrain.epochs=9"]))
    assert bench.git_state(REPO)[0] != "unknown"
    # the fused protocol hashes apart from the validated one, which keeps the hashes of the ledgered looks
    assert bench.config_hash(plugin_config("ecg_transfer", []), "validated") == base
    assert bench.config_hash(plugin_config("ecg_transfer", []), "fused") != base


def test_side_model_is_balanced_and_scores_every_aami_class():
    # S beats (class 1) are rare and premature (short pre-RR): a balanced regression still finds them
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(950), np.ones(50), np.full(3, 4)].astype(int)
    side = np.c_[np.where(y == 1, -0.4, 0.0) + rng.normal(0, 0.1, len(y)), rng.normal(0, 1, len(y))]
    beats = beat_set.BeatSet(np.zeros((len(y), 2, 2), np.float32), y, np.full(len(y), "101"),
                             np.bincount(y, minlength=5), side.astype(np.float32))
    for kind in side_models.SIDE_MODELS:
        model = side_models.fit_side_model(beats, kind)
        assert list(model.model.classes_) == [0, 1]  # Q (class 4) is left out of the fit
        logp = side_models.side_log_proba(model, beats)
        assert logp.shape == (len(y), 5) and np.all(logp[:, [2, 3, 4]] == -30.0) and np.all(np.isfinite(logp))
        pred = logp.argmax(axis=1)
        assert np.mean(pred[y == 1] == 1) > 0.9 and np.mean(pred[y == 0] == 0) > 0.9, kind
    with pytest.raises(CardioError, match="side_features"):
        side_models.fit_side_model(_beat_set([0, 1], [1, 1, 0, 0, 0]))
    with pytest.raises(CardioError, match="'forest' is not known"):
        side_models.fit_side_model(beats, "forest")


def test_side_models_read_their_own_columns_and_add_up():
    # column 0 (an "rr" feature) tells S from N; the "shape" columns are noise
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(600), np.ones(200)].astype(int)
    side = rng.normal(0, 1, (len(y), 8))
    side[:, 0] += np.where(y == 1, -2.0, 0.0)
    beats = beat_set.BeatSet(np.zeros((len(y), 2, 2), np.float32), y, np.full(len(y), "101"),
                             np.bincount(y, minlength=5), side.astype(np.float32))
    config = {"ecg_transfer": {"pretrain": {"side_features": ["rr", "shape"], "side_models": [
        {"model": "logistic", "features": ["rr"]}, {"model": "boosting", "features": ["shape"]}]}}}
    rr, shape = side_models.fit_side_models(beats, config)
    assert rr.columns.tolist() == [0, 1, 2, 3, 4] and shape.columns.tolist() == [5, 6, 7]
    total = side_models.side_log_proba([rr, shape], beats)
    np.testing.assert_allclose(total, side_models.side_log_proba(rr, beats) + side_models.side_log_proba(shape, beats))
    assert np.mean(side_models.side_log_proba(rr, beats).argmax(1) == y) > 0.8  # the rr columns carry the signal
    # null: the default is one logistic regression on every side feature
    (only,) = side_models.fit_side_models(beats, {"ecg_transfer": {"pretrain": {"side_features": ["rr", "shape"],
                                                                              "side_models": None}}})
    assert only.columns.tolist() == list(range(8))
    for bad, match in (([{"model": "logistic", "features": ["two_lead"]}], "not in ecg_transfer.pretrain.side_feat"),
                       ([{"model": "logistic"}], "each entry is"), ([{"model": "svm", "features": ["rr"]}], "svm")):
        with pytest.raises(CardioError, match=match):
            side_models.fit_side_models(beats, {"ecg_transfer": {"pretrain": {"side_features": ["rr", "shape"],
                                                                           "side_models": bad}}})


def test_unknown_protocol_is_refused():
    with pytest.raises(CardioError, match="unknown protocol"):
        bench.ds1_cv({}, None, protocol="best-on-ds2")


def test_the_benchmarks_frozen_protocol_is_a_valid_config_whose_side_models_resolve():
    from cardio_ecg_transfer import beat_context
    from cardio_testing.harness import plugin_config

    config = plugin_config("ecg_transfer", bench.FROZEN)
    pt = config["ecg_transfer"]["pretrain"]
    width = len(beat_context.names(pt["side_features"]))
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 3], 30)
    beats = beat_set.BeatSet(np.zeros((len(y), 2, 2), np.float32), y, np.full(len(y), "101"),
                             np.bincount(y, minlength=5), rng.normal(size=(len(y), width)).astype(np.float32))
    models = side_models.fit_side_models(beats, config)
    assert [len(m.columns) for m in models] == [len(beat_context.names(s["features"])) for s in pt["side_models"]]
    # the hash of ledger looks 8-10: if it changes, the frozen protocol is no longer the one looked at
    assert bench.config_hash(config, bench.PROTOCOL) == "f3a38e3e9499"
