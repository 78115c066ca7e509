"""Side features of the pretraining network: RR ratios and likeness to the record's median QRS."""
import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")

import torch

from cardio import CardioError
from cardio_ecg_transfer import beat_context, resnet
from cardio_ecg_transfer.beat_images import highpass


def test_rr_features_of_a_premature_beat():
    r = np.arange(0, 20 * 300, 300, dtype=float)  # 300-sample RR
    r[10] -= 120  # beat 10 comes early, with a compensatory pause after it
    f = beat_context.rr_features(r)
    assert f.shape == (20, len(beat_context.RR_NAMES))
    pre, post, local, pre_local, pre_post = f.T
    np.testing.assert_allclose(f[:9], 0.0, atol=1e-6)  # regular rhythm: every ratio is 1
    assert pre[10] == pytest.approx(np.log(180 / 300)) and post[10] == pytest.approx(np.log(420 / 300))
    assert pre_post[10] == pytest.approx(np.log(180 / 420)) and pre_local[10] < 0
    assert pre[11] == pytest.approx(np.log(420 / 300))
    with pytest.raises(CardioError, match="increasing"):
        beat_context.rr_features(np.array([0.0, 10.0, 5.0]))


def _qrs(t, width, height):
    return height * np.exp(-0.5 * (t / width) ** 2)


def test_a_wide_tall_beat_is_unlike_its_records_median_qrs():
    fs = 360.0
    r = np.arange(200, 200 + 30 * 300, 300)
    t = np.arange(r[-1] + 300) - 0.0
    x = np.zeros(len(t))
    for i, p in enumerate(r):
        wide = i == 15
        x += _qrs(t - p, 25 if wide else 6, 2.5 if wide else 1.0)
    f = beat_context.shape_features(x, r, fs)
    corr, amplitude, residual = f.T
    normal = np.delete(np.arange(len(r)), 15)
    assert np.all(corr[normal] > 0.999) and corr[15] < corr[normal].min() - 0.05
    assert amplitude[15] > np.log(2.0) and np.all(np.abs(amplitude[normal]) < 1e-6)  # median-centred window: < 2.5x
    assert residual[15] > residual[normal].max() + 3


def test_morphology_of_a_wide_beat_with_a_discordant_t_wave_on_one_channel():
    fs = 360.0
    r = np.arange(200, 200 + 40 * 300, 300)
    t = np.arange(r[-1] + 300, dtype=float)
    x = np.zeros(len(t))
    for i, p in enumerate(r):
        odd = i == 20  # a wide QRS with an inverted T wave, the picture of a ventricular beat
        x += _qrs(t - p, 22 if odd else 6, 1.0) + (-0.6 if odd else 0.3) * np.exp(-0.5 * ((t - p - 100) / 25) ** 2)
    f = beat_context.morphology_features(x, r, fs)
    assert f.shape == (len(r), len(beat_context.MORPHOLOGY_NAMES))
    col = {n: f[:, i] for i, n in enumerate(beat_context.MORPHOLOGY_NAMES)}
    normal = np.delete(np.arange(len(r)), 20)
    assert np.all(col["qrs_corr"][normal] > 0.999) and col["qrs_corr"][20] < 0.95
    assert col["t_corr"][20] < 0 < 0.99 < col["t_corr"][normal].min()  # the T wave turned over
    assert col["log_qrs_width_ratio"][20] > np.log(2.0) and np.all(np.abs(col["log_qrs_width_ratio"][normal]) < 0.1)
    # the neighbours' median is normal, so the odd beat is unlike its neighbours too; its neighbours are not
    assert col["neighbour_qrs_corr"][20] < 0.95 and col["neighbour_qrs_corr"][normal].min() > 0.999
    both = beat_context.side_features(x, r, fs, ["two_lead"], channels=(x, -x))
    assert both.shape == (len(r), len(beat_context.TWO_LEAD_NAMES))
    np.testing.assert_allclose(both[:, :3], f[:, :3], atol=1e-6)  # channel 0 is this lead
    with pytest.raises(CardioError, match="both channels"):
        beat_context.side_features(x, r, fs, ["rr", "two_lead"])


def test_names_and_unknown_kinds():
    assert beat_context.names(["rr", "shape"]) == list(beat_context.RR_NAMES + beat_context.SHAPE_NAMES)
    assert beat_context.side_features(np.zeros(1000), np.array([100, 400, 700]), 360.0, []).shape == (3, 0)
    with pytest.raises(CardioError, match="qrs"):
        beat_context.names(["rr", "qrs"])


def test_ventricular_beats_of_mitdb_record_119_stand_out(mitdb_dir):
    """Record 119 (ventricular bigeminy): V beats are premature and unlike the record's median QRS."""
    wfdb = pytest.importorskip("wfdb")
    from cardio_ecg_transfer import aami

    rec = wfdb.rdrecord(str(mitdb_dir / "119"), channels=[0])
    ann = wfdb.rdann(str(mitdb_dir / "119"), "atr")
    cls = aami.class_index(ann.symbol)
    keep = cls >= 0
    pos, cls = np.asarray(ann.sample)[keep], cls[keep]
    x = highpass(rec.p_signal[:, 0], rec.fs, 0.5)
    f = beat_context.side_features(x, pos, rec.fs, ["rr", "shape"])
    v, n = cls == aami.AAMI_CLASSES.index("V"), cls == aami.AAMI_CLASSES.index("N")
    assert v.sum() > 400 and n.sum() > 1000
    k = len(beat_context.RR_NAMES)
    pre, corr, residual = f[:, 0], f[:, k], f[:, k + 2]
    assert np.median(pre[v]) < np.median(pre[n]) - 0.3  # premature
    assert np.median(corr[v]) < 0.8 < 0.95 < np.median(corr[n])  # unlike the record's (normal) median QRS
    assert np.median(residual[v]) > np.median(residual[n]) + 2.0
    # on the second channel (V1) as on MLII, V beats are unlike the record's median beat
    other = highpass(wfdb.rdrecord(str(mitdb_dir / "119"), channels=[1]).p_signal[:, 0], rec.fs, 0.5)
    two = beat_context.side_features(x, pos, rec.fs, ["two_lead"], channels=(x, other))
    qrs = [beat_context.TWO_LEAD_NAMES.index(f"ch{c}_qrs_corr") for c in (0, 1)]
    for c in qrs:
        assert np.median(two[n, c]) > 0.95 and np.median(two[v, c]) < np.median(two[n, c]) - 0.1
        assert np.mean(two[v, c] < np.quantile(two[n, c], 0.05)) > 0.8  # most V beats below 95% of N beats


def test_side_features_feed_the_pretraining_head_only():
    model = resnet.build_resnet("resnet18", n_outputs=5, n_side=8).eval()
    assert model.net.fc.in_features == 512 + 8
    side = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 8))
    model.set_side_scaling(side)
    np.testing.assert_allclose(model.side_mean.numpy(), side.mean(0), rtol=1e-5)
    x = torch.randn(4, 33, 33)
    s = torch.as_tensor(side[:4], dtype=torch.float32)
    with torch.no_grad():
        out = model(x, s)
        assert out.shape == (4, 5) and not torch.allclose(out, model(x, s + 1.0))
    with pytest.raises(CardioError, match="side features"):
        model(x)


def test_a_side_feature_network_transfers_its_backbone_to_an_image_only_model(tmp_path):
    pretrained = resnet.build_resnet("resnet18", n_outputs=5, n_side=8)
    pretrained.set_side_scaling(np.random.default_rng(0).normal(size=(20, 8)))
    path = resnet.save_weights(pretrained, tmp_path / "w.pt")
    target = resnet.build_resnet("resnet18", n_outputs=1)
    resnet.load_pretrained(target, path)
    source = pretrained.state_dict()
    for k, v in target.state_dict().items():
        if not k.startswith(resnet.HEAD_PREFIX):
            assert torch.equal(v, source[k]), k
    assert "side_mean" not in target.state_dict() and target.net.fc.in_features == 512


def test_de_chazal_rr_features_of_a_premature_beat():
    fs = 360.0
    r = np.arange(0, 40 * 300, 300, dtype=float)  # 300-sample RR
    r[20] -= 120  # a premature beat with a compensatory pause
    f = beat_context.dechazal_rr_features(r, fs)
    assert f.shape == (40, 4) and beat_context.names(["dechazal_rr"]) == list(beat_context.DECHAZAL_NAMES)
    pre, post, average, local = f.T
    mean_rr = 300.0  # the pause makes up for the early beat
    assert pre[20] == pytest.approx(180 / mean_rr) and post[20] == pytest.approx(420 / mean_rr)
    np.testing.assert_allclose(average, 1.0, atol=1e-6)  # +-5 min holds the whole record: its mean RR
    assert local[20] == pytest.approx(1.0, abs=1e-6) and local[2] == pytest.approx(1.0)  # ten beats either side
    # the record's own rhythm sets the scale: a record at half the heart rate gives the same features
    np.testing.assert_allclose(beat_context.dechazal_rr_features(2 * r, fs), f, atol=1e-6)
    with pytest.raises(CardioError, match="increasing"):
        beat_context.dechazal_rr_features(np.array([0.0, 10.0, 5.0]), fs)
