"""Loader, preprocessing, clip sampling and the bad-input errors of echo_cmr."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio import Cache, CardioError
from cardio_echo_cmr import cohort, synthetic, video
from cardio_echo_cmr.settings import Clip, EchoSettings, Synthetic
from cardio_imaging.cine import read_cine, sector_mask, to_gray

THRESHOLDS = {"t1_ms": 1060, "t2_ms": 58, "ecv_pct": 33}


def test_synthetic_cohort_written_and_read_back(tmp_path):
    root = synthetic.write_cohort(tmp_path / "c", 4, seed=1, n_frames=12, height=48, width=64)
    rows = pd.read_csv(root / "labels.csv")
    assert len(rows) == 12 and set(rows["view"]) == set(synthetic.VIEWS)
    assert {p.suffix for p in (root / "videos").iterdir()} == {".dcm", ".avi"}
    for f in rows["file"]:
        c = read_cine(root / f, need_frame_time=True)
        assert c.n_frames == 12 and c.frame_time_ms == pytest.approx(33.3, rel=1e-3)
    table = cohort.read_cohort(root, THRESHOLDS)
    assert len(table) == 4 and {"video_A4C", "video_A2C", "video_PLAX", "wma", "t1_abnormal"} <= set(table.columns)
    # view WMA implies global WMA; the global label is the study's
    for v in synthetic.VIEWS:
        assert (table[f"wma_{v}"] <= table["wma"]).all()


def test_a_run_of_fewer_views_gets_a_synthetic_cohort_of_those_views(tmp_path):
    cfg = Synthetic(n_patients=3, seed=1, n_frames=12, height=48, width=64)
    root = synthetic.cached_cohort(Cache(tmp_path / "cache"), cfg, ("A4C",))
    assert set(pd.read_csv(root / "labels.csv")["view"]) == {"A4C"}
    assert synthetic.cached_cohort(Cache(tmp_path / "cache"), cfg) != root  # the three views' cohort is another one
    table = cohort.read_cohort(root, THRESHOLDS, s=EchoSettings(views=("A4C",)))
    assert len(table) == 3 and "video_A4C" in table and "video_A2C" not in table

def test_planted_wma_reduces_wall_motion():
    rng = np.random.default_rng(0)
    kw: dict[str, Any] = {"n_frames": 16, "height": 64, "width": 80, "reduction": 0.9}
    normal = synthetic.render_view("A4C", set(), rng, **kw).astype(float)
    lad = synthetic.render_view("A4C", {14, 16, 17, 13}, rng, **kw).astype(float)
    # cavity area over the cycle: dark pixels inside the fan; reduced apical motion shrinks its swing
    swing = [np.ptp((f[:, 10:50, 20:60] < 40).sum((1, 2))) for f in (normal, lad)]
    assert swing[1] < 0.8 * swing[0]


def test_masking_a_frame_with_burned_in_text():
    rng = np.random.default_rng(0)
    frames = synthetic.render_view("A2C", set(), rng, n_frames=16, height=64, width=80, reduction=0.0)
    mask = sector_mask(frames)
    assert not mask[2:6, 2:20].any()          # the burned-in text
    assert not mask[-6:].any()                # the ECG trace
    clip, _ = video.preprocess_frames(frames, 24)
    assert clip.shape == (16, 24, 24) and clip.dtype == np.uint8


CLIP = Clip(size=16, fps=30, keep_aspect=True)


def test_a_60_fps_video_is_resampled_to_the_30_fps_one(tmp_path):
    """The same heartbeat written at 30 and at 60 fps gives one clip after resampling to 30 fps."""
    root = synthetic.write_cohort(tmp_path / "c", 2, seed=5, n_frames=16, height=48, width=64,
                                  frame_time_ms=(33.3, 16.65))
    slow, _ = video.read_frames(root / "videos" / "P0000_A4C.dcm", 30)
    fast, _ = video.read_frames(root / "videos" / "P0001_A4C.dcm", 30)
    assert read_cine(root / "videos" / "P0001_A4C.dcm").n_frames == 32 and len(fast) == len(slow) == 16
    assert video.resample_times(32, 60.06, 30).tolist() == list(range(0, 32, 2))
    assert video.resample_times(8, 10, 30).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6,
                                                        7, 7, 7, 7]
    with pytest.raises(CardioError, match=r"x\.npy: no frame rate"):
        np.save(tmp_path / "x.npy", np.zeros((4, 8, 8), np.uint8))
        video.read_frames(tmp_path / "x.npy", 30)


def test_aspect_ratio_kept_from_the_pixel_spacing():
    assert video.fit_size(50, 100, 32, None) == (16, 32)              # square pixels: 1:2 stays 1:2
    assert video.fit_size(50, 100, 32, (0.4, 0.2)) == (32, 32)        # rows twice as tall: a square in mm
    frames = np.zeros((3, 40, 80), np.uint8)
    frames[:, 5:35, 5:75] = np.random.default_rng(0).integers(50, 250, (3, 30, 70))
    clip, _ = video.preprocess_frames(frames, 32)
    assert clip[:, :6].max() == 0 and clip[:, 12:20].min() > 0      # zero bands above and below the sector
    stretched, _ = video.preprocess_frames(frames, 32, keep_aspect=False)
    assert stretched[:, :6].max() > 0


def test_clip_sampling_at_the_edges():
    v = np.arange(10)[:, None, None].repeat(2, 1).repeat(2, 2).astype(np.uint8)
    clip, padded = video.sample_clip(v, 0, 4, 2)
    assert clip[:, 0, 0].tolist() == [0, 2, 4, 6] and padded == 0
    clip, padded = video.sample_clip(v, 6, 4, 2)   # runs past the end: the last frame repeats
    assert clip[:, 0, 0].tolist() == [6, 8, 9, 9] and padded == 2
    assert video.clip_starts(10, 4, 2) == [0]
    assert video.clip_starts(20, 4, 2) == [0, 8]
    assert video.clip_starts(3, 4, 2) == [0]


def test_clip_cache_built_once_and_parallel(tmp_path, cpu_context):
    root = synthetic.write_cohort(tmp_path / "c", 2, seed=2, n_frames=8, height=48, width=64)
    ctx = replace(cpu_context(), cache_dir=tmp_path / "cache")
    paths = sorted(str(p) for p in (root / "videos").iterdir())
    built = video.preprocess_all(paths, CLIP, ctx, workers=2)
    assert len(built) == 6 and all(np.load(p).shape == (8, 16, 16) for p in built)
    stamps = [p and __import__("os").stat(p).st_mtime_ns for p in built]
    again = video.preprocess_all(paths, CLIP, ctx, workers=1)
    assert again == built and stamps == [__import__("os").stat(p).st_mtime_ns for p in again]
    # the cached clip equals decoding and preprocessing the file directly
    frames, spacing = video.read_frames(Path(paths[0]), 30)
    direct, _ = video.preprocess_frames(frames, 16, spacing)
    assert np.array_equal(direct, np.load(built[0]))


def test_label_csv_naming_a_missing_video(tmp_path):
    root = synthetic.write_cohort(tmp_path / "c", 2, seed=3, n_frames=8, height=48, width=64)
    (root / "videos" / "P0001_A2C.dcm").unlink()
    with pytest.raises(CardioError, match=r"labels\.csv: line 6, column 'file': names videos/P0001_A2C\.dcm, which "
                                          r"is not a file"):
        cohort.read_cohort(root, THRESHOLDS)


def test_bad_video_in_the_cohort_names_the_file_and_keeps_the_cache(tmp_path):
    root = synthetic.write_cohort(tmp_path / "c", 2, seed=4, n_frames=8, height=48, width=64)
    cache = Cache(tmp_path / "cache")
    good = video.cached_clip(cache, root / "videos" / "P0000_A4C.dcm", CLIP)
    before = good.read_bytes()
    (root / "videos" / "P0001_PLAX.avi").write_bytes(b"")
    with pytest.raises(CardioError, match=r"P0001_PLAX\.avi: empty video"):
        video.cached_clip(cache, root / "videos" / "P0001_PLAX.avi", CLIP)
    assert good.read_bytes() == before


def test_real_clips_masked_cropped_resized(echo_dicom_dir):
    for p in sorted(echo_dicom_dir.glob("*.dcm")):
        cine = read_cine(p)
        clip, mask = video.preprocess_frames(cine.frames, 112, cine.pixel_spacing_mm)
        assert clip.shape == (cine.n_frames, 112, 112) and clip.dtype == np.uint8
        assert clip.mean() > 5, p.name
        assert mask.shape == to_gray(cine.frames).shape[1:]


def test_masking_figure_of_the_real_clips(echo_dicom_dir, tmp_path):
    from cardio_echo_cmr.report import masking_figure

    fig = masking_figure(sorted(echo_dicom_dir.glob("*.dcm")))
    fig.savefig(tmp_path / "masking.png", dpi=80)
    assert (tmp_path / "masking.png").stat().st_size > 10_000
