"""Task perfusion_risk: polar-map geometry, the synthetic .npy cohort, the ResNet and two-step training."""
from __future__ import annotations


import pytest

pytest.importorskip("cardio_spect_polar")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cardio.data import CardioError, Cohort  # noqa: E402
from cardio_spect_polar import perfusion as pf  # noqa: E402

CFG = {"arch": "resnet18", "imagenet": False, "freeze": [], "val_fraction": 0.25, "baseline_c": 1.0,
       "step1": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "patience": 0},
       "step2": {"epochs": 1, "batch_size": 8, "lr": 0.0, "weight_decay": 0.0, "patience": 0}}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny CPU models: threads only add synchronisation on a busy CI runner
    yield
    torch.set_num_threads(before)


def test_segment_map_is_the_aha_bullseye():
    seg = pf.segment_map(32)
    assert set(np.unique(seg)) == set(range(18))  # 0 = outside, 1..17 segments
    c = 16
    assert seg[c, c] == 17                          # apex in the centre
    assert seg[1, c] == 1 and seg[30, c] == 4       # basal anterior at the top, basal inferior at the bottom
    assert seg[c, 1] in (2, 3) and seg[c, 30] in (5, 6)  # septum left, lateral wall right
    assert seg[c, 11] == 14 and seg[c, 20] == 16    # apical septal / apical lateral
    sizes = np.bincount(seg.ravel())[1:]
    assert sizes[:6].std() < 0.1 * sizes[:6].mean()  # the six basal segments are the same size


def test_synthetic_cohort_round_trip_and_known_effects(ctx, tmp_path):
    root = pf.synthetic_root(tmp_path, 300, 24, seed=3)
    assert (root / "labels.csv").exists() and len(list((root / "maps").glob("*.npy"))) == 300
    assert pf.synthetic_root(tmp_path, 300, 24, seed=3) == root  # written once, then reused
    table = pf.read_cohort(root)
    maps = pf.load_maps(table)
    assert maps.shape == (300, 3, 24, 24) and maps.dtype == np.float32
    expect, _ = pf.synthesize(300, 24, 3)
    np.testing.assert_allclose(table[pf.SEGMENT_TASKS].to_numpy(), expect[pf.SEGMENT_TASKS].to_numpy(), atol=1e-4)
    g = table["global_mfr"]
    assert g[table["diabetes"] == 1].mean() < g[table["diabetes"] == 0].mean() - 0.15
    assert ((g < 2.0).astype(int) == table["impaired_mfr"]).all()
    seg = pf.segment_map(24)
    segs = pf.segment_means(maps, seg)
    # the MFR channel carries the segment MFRs; stress perfusion falls where MFR is low
    assert np.corrcoef(segs[:, 2].ravel(), table[pf.SEGMENT_TASKS].to_numpy().ravel())[0, 1] > 0.9
    anterior_rest = segs[:, 0, 0]
    assert anterior_rest[table["sex_male"] == 0].mean() < anterior_rest[table["sex_male"] == 1].mean()


def test_bad_maps_and_labels_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 8, 8), dtype=np.float32))
    with pytest.raises(CardioError, match="bad.npy.*shape"):
        pf.load_map(bad)
    nan = np.zeros((3, 8, 8), dtype=np.float32)
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(CardioError, match="nan.npy.*NaN"):
        pf.load_map(tmp_path / "nan.npy")
    with pytest.raises(CardioError, match="not found"):
        pf.load_map(tmp_path / "missing.npy")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "labels.csv").write_text("patient_id,sex_male\nA,1\n")
    with pytest.raises(CardioError, match="labels.csv.*missing"):
        pf.read_cohort(tmp_path / "c")


def test_resnet_outputs_and_architectures():
    x = torch.rand(2, 3, 32, 32)
    for arch in ("resnet18", "resnet50"):
        m = pf.PolarResNet(arch, pf.N_SEGMENTS).eval()
        assert m(x).shape == (2, 17)
        m.new_head(len(pf.RISK_TASKS))
        assert m(x).shape == (2, 6)
    with pytest.raises(CardioError, match="arch"):
        pf.PolarResNet("vgg11", 3)


def small_features(ctx, tmp_path, n=40):
    root = pf.synthetic_root(tmp_path, n, 32, seed=1)
    cohort = Cohort(pf.read_cohort(root), label="impaired_mfr")
    return pf.featurize(pf.preprocess(cohort, ctx))


def test_two_step_training_and_predictions(ctx, tmp_path):
    feats = small_features(ctx, tmp_path)
    assert feats.x["maps"].shape == (40, 3, 32, 32) and feats.x["segments"].shape == (40, 51)
    train, test = np.arange(30), np.arange(30, 40)
    ctx.fold = "fold0"
    model = pf.train_perfusion(feats, train, CFG, ctx)
    # Step 2 starts from step 1's backbone: with a zero learning rate it must still hold step 1's weights.
    p1 = dict(model.step1.net.named_parameters())
    for name, p in model.step2.net.named_parameters():
        if not name.startswith("fc."):
            assert torch.equal(p, p1[name]), name
    assert model.step1.net.fc.out_features == 17 and model.step2.net.fc.out_features == 6
    assert (tmp_path / "checkpoints" / "fold0-perfusion-step1-mfr.pt").exists()
    assert (tmp_path / "checkpoints" / "fold0-perfusion-step2-risk.pt").exists()
    assert set(model.train_patients) == set(feats.table["patient_id"].iloc[train])

    pred = pf.predict_perfusion(model, feats, test, ctx).table
    reg, binary = pred[pred["kind"] == "regression"], pred[pred["kind"] == "binary"]
    assert set(reg["task"]) == set(pf.SEGMENT_TASKS) and set(binary["task"]) == set(pf.RISK_TASKS)
    assert set(pred["model"]) == {"resnet-polar", "ridge-17seg", "logistic-17seg"}
    assert len(reg) == 10 * 17 * 2 and len(binary) == 10 * 6 * 2
    assert binary["y_score"].between(0, 1).all() and binary["threshold"].notna().all()
    assert set(pred["patient_id"]) == set(feats.table["patient_id"].iloc[test])
