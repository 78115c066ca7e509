"""The cohort's M-modes in the cache, read per batch (issue 57): featurize's features hold paths, not images; the
batches, the training mean image and the predictions are those of the arrays held whole."""
from __future__ import annotations

import pickle

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import torch

from cardio import CardioError, engine
from cardio.engine.data import make_loader
from cardio_mmode_septal_flash import cohort, preprocess
from cardio_mmode_septal_flash.settings import SeptalFlashSettings
from cardio_mmode_septal_flash.store import LineSamples, StoredArray
from cardio_testing.harness import cpu_context, plugin_config, train_settings

SMALL = ["mmode_septal_flash.synthetic.n_patients=12", "mmode_septal_flash.synthetic.n_sf=5",
         "mmode_septal_flash.synthetic.size=48", "mmode_septal_flash.mmode.size=[64, 64]",
         "mmode_septal_flash.mmode.offsets=1", "mmode_septal_flash.model.input_size=32"]


@pytest.fixture(scope="module")
def featurized(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mmode_store")
    cfg = plugin_config("mmode_septal_flash", SMALL)
    ctx = cpu_context(tmp)
    loaded = cohort.load(cfg, ctx)
    return loaded, preprocess.featurize(loaded, SeptalFlashSettings.of(cfg), ctx), cfg, ctx


def test_features_hold_paths_and_read_what_featurize_computed(featurized):
    loaded, features, cfg, _ = featurized
    s = SeptalFlashSettings.of(cfg)
    assert all(isinstance(a, StoredArray) for a in features.x.values())
    assert len(pickle.dumps(features.x)) < 2_000  # the stages kept for a run's other tasks hold no image
    seq = cohort.read_sequence(loaded.table.iloc[3])
    mm = preprocess.patient_mmodes(seq, s.mmode, s.lv_side)
    assert np.array_equal(features.x["cropped"][3], preprocess.variant(mm, "cropped", 32))
    assert np.array_equal(features.x["mmode"][[3]], mm[None, 1])
    assert features.x["full"].shape == (12, 3, 32, 32) and len(features.x["mmode"]) == 12


def test_batches_and_mean_are_those_of_the_arrays_held_whole(featurized):
    """The fit's batches through the engine's loader: the same images, targets and order as an ArrayDataset of the
    same lines in memory (the code before issue 57), and the training mean image to the last bit."""
    from cardio_mmode_septal_flash.store import line_sum

    _, features, _, _ = featurized
    x, rows = features.x["full"], np.array([0, 2, 3, 5, 7, 8, 11])
    whole = x[rows].reshape(-1, 32, 32)
    total, count = line_sum(x, rows)
    assert np.array_equal(total / count, whole.mean(axis=0, dtype=np.float64))
    y = np.arange(len(whole)) % 2
    s = train_settings(batch_size=4)
    sampler = engine.ShardedBatchSampler(len(whole), 4, seed=3)
    streamed = make_loader(LineSamples(x, rows, range(3), y), s, torch.device("cpu"), sampler)
    held = make_loader(engine.ArrayDataset(whole, y), s, torch.device("cpu"), sampler)
    pairs = list(zip(streamed, held))
    assert len(pairs) == 5  # 21 samples: the last batch of one is dropped (BatchNorm needs two)
    for (a, ya), (b, yb) in pairs:
        assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b) and torch.equal(ya, yb)


def test_a_damaged_entry_is_rebuilt_and_a_changed_file_is_one_line(featurized, tmp_path):
    loaded, features, cfg, ctx = featurized
    path = features.x["full"].path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # cut: the cache's size check finds it
    again = preprocess.featurize(loaded, SeptalFlashSettings.of(cfg), ctx)
    assert again.x["full"].path == path and path.read_bytes() == good
    np.save(tmp_path / "other.npy", np.zeros((2, 3), np.uint8))
    with pytest.raises(CardioError, match=r"other.npy: the cache entry holds uint8 \[2, 3\]"):
        StoredArray(tmp_path / "other.npy", (12, 3, 32, 32))[0]
