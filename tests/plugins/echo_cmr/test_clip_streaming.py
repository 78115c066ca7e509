"""Issue 57: echo_cmr's clips stay in the cache. A fit's and a prediction's datasets hold each video's length, not the
video; the training pixel statistics are counted clip by clip and equal those of every clip's pixels held together."""
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("cardio_echo_cmr")
from cardio_echo_cmr.training import AllClips, ClipDataset, pixel_stats
from cardio_echo_cmr.video import clip_starts, sample_clip


@pytest.fixture()
def clips(tmp_path) -> list[str]:
    rng = np.random.default_rng(1)
    paths = []
    for i, n in enumerate((40, 33, 7, 52, 40)):  # one video shorter than a clip
        paths.append(str(tmp_path / f"v{i}.npy"))
        np.save(paths[-1], rng.integers(0, 256, (n, 24, 24), dtype=np.uint8))
    return paths


def test_the_datasets_hold_no_video(clips):
    """Pickled, a dataset of five 40-frame videos is their paths and lengths: a few hundred bytes where the videos
    are 23 KB each (it held every video whole before, so it grew with the cohort)."""
    y = np.zeros((len(clips), 2), np.float32)
    train = ClipDataset(clips, y, frames=8, period=2, train=True, seed=0)
    train.on_device(torch.device("cpu"))
    train.take(torch.as_tensor([3, 1]))
    windows = AllClips(clips, frames=8, period=2)
    windows[len(windows) - 1]  # the last video read, and kept until the next one
    for ds in (train, windows):
        assert len(pickle.dumps(ds)) < 24 * 24 * 40, type(ds).__name__


def test_test_windows_are_every_videos_non_overlapping_clips_in_order(clips):
    windows = AllClips(clips, frames=8, period=2)
    expected = [(j, sample_clip(np.load(p), s, 8, 2)[0]) for j, p in enumerate(clips)
                for s in clip_starts(len(np.load(p)), 8, 2)]
    assert len(windows) == len(expected) and windows.owner.tolist() == [j for j, _ in expected]
    for i, (_, clip) in enumerate(expected):
        assert torch.equal(windows[i][0], torch.from_numpy(clip.astype(np.float32)))


def test_pixel_statistics_counted_clip_by_clip_are_those_of_the_pixels_together(clips):
    vals = np.concatenate([np.load(p).reshape(-1)[::7] for p in clips]).astype(np.float64)
    mean, sd = pixel_stats(clips)
    assert mean == float(vals.mean())  # an exact sum of integers over the same count
    assert sd == pytest.approx(float(vals.std()), rel=1e-13)
