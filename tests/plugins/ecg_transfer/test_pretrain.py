"""Choices the pretraining makes on DS1 alone: natural-mix weights and the prior-correction strength."""
import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio_ecg_transfer import pretrain


def _beat_set(y, population):
    y = np.asarray(y)
    return pretrain.BeatSet(np.zeros((len(y), 2, 2), np.float32), y, np.full(len(y), "100"),
                            np.asarray(population), np.zeros((len(y), 0), np.float32))


def test_natural_mix_weights_give_the_subset_the_population_class_mix():
    train = _beat_set([0] * 10 + [1] * 5 + [2] * 10, [1000, 5, 50, 0, 0])
    w = pretrain.natural_mix_weights(train, train.y)
    mix = np.bincount(train.y, weights=w, minlength=5)
    np.testing.assert_allclose(mix / mix.sum(), np.array([1000, 5, 50, 0, 0]) / 1055)


def test_weighted_macro_f1_matches_a_hand_count():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    # weights 2 for the N beats, 1 for the S beats. N: tp 2, support 4, predicted 2 -> F1 4/6;
    # S: tp 2, support 2, predicted 2 (S beats) + 2 (the N beat called S) = 4 -> F1 4/6
    f1 = pretrain.weighted_macro_f1(y, pred, np.array([2.0, 2.0, 1.0, 1.0]))
    assert f1 == pytest.approx(np.mean([2 * 2 / (4 + 2), 2 * 2 / (2 + 4)]))


def test_prior_strength_is_chosen_by_validation_macro_f1():
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.random(n) < 0.1).astype(int)  # class 1 is rare at the natural mix
    logits = np.zeros((n, 5)) - 9.0
    logits[:, 0] = 0.0
    logits[:, 1] = np.where(y == 1, 1.0, 0.6) + rng.normal(0, 0.5, n)  # a network trained on a balanced mix
    shift = np.array([0.0, -1.0, 0.0, 0.0, 0.0])  # the natural mix makes class 1 less likely
    best, scores = pretrain.choose_prior_strength(logits, y, shift, np.ones(n))
    assert set(scores) == {f"{s:g}" for s in pretrain.PRIOR_STRENGTHS}
    assert scores[f"{best:g}"] == max(scores.values()) and best > 0
    # a flat criterion keeps the exact Bayes correction (strength 1)
    flat, _ = pretrain.choose_prior_strength(np.zeros((n, 5)), y, np.zeros(5), np.ones(n))
    assert flat == 1.0


def test_confidence_intervals_resample_records_not_beats():
    # record B holds every V beat, half of them right: every resample that has V beats has Se 0.5
    # exactly, which a beat-level bootstrap (an interval around 0.5 of nonzero width) would not give
    record = np.repeat(["A", "B", "C"], 100)
    y = np.r_[np.zeros(100), np.full(100, 2), np.zeros(100)].astype(int)
    pred = y.copy()
    pred[100:150] = 0  # half of B's V beats called N
    pred[200:210] = 1  # ten of C's N beats called S
    config = {"stats": {"n_resamples": 400, "level": 0.95}}
    ci = pretrain.record_bootstrap(y, pred, record, config, seed=0)
    assert ci["unit"] == "record" and ci["n_records"] == 3
    v = ci["estimates"]["se_V"]
    assert v["estimate"] == v["ci_low"] == v["ci_high"] == 0.5
    acc = ci["estimates"]["accuracy"]
    assert acc["estimate"] == pytest.approx(240 / 300) and acc["ci_low"] < acc["estimate"] < acc["ci_high"]
    assert acc["method"] == "bootstrap-percentile" and acc["level"] == 0.95
