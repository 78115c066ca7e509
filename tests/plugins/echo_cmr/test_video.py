"""Loader, preprocessing, clip sampling and the bad-input errors of echo_cmr."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio import Cache, CardioError
from cardio.cine import read_cine, sector_mask, to_gray
from cardio_echo_cmr import cohort, synthetic, video

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


def test_planted_wma_reduces_wall_motion():
    rng = np.random.default_rng(0)
    kw = dict(n_frames=16, height=64, width=80, reduction=0.9)
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
    ctx = cpu_context()
    ctx.cache_dir = tmp_path / "cache"
    paths = sorted(str(p) for p in (root / "videos").iterdir())
    built = video.preprocess_all(paths, 16, ctx, workers=2)
    assert len(built) == 6 and all(np.load(p).shape == (8, 16, 16) for p in built)
    stamps = [p and __import__("os").stat(p).st_mtime_ns for p in built]
    again = video.preprocess_all(paths, 16, ctx, workers=1)
    assert again == built and stamps == [__import__("os").stat(p).st_mtime_ns for p in again]
    # the cached clip equals decoding and preprocessing the file directly
    direct, _ = video.preprocess_frames(read_cine(paths[0]).frames, 16)
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
    good = video.cached_clip(cache, root / "videos" / "P0000_A4C.dcm", 16)
    before = good.read_bytes()
    (root / "videos" / "P0001_PLAX.avi").write_bytes(b"")
    with pytest.raises(CardioError, match=r"P0001_PLAX\.avi: empty video"):
        video.cached_clip(cache, root / "videos" / "P0001_PLAX.avi", 16)
    assert good.read_bytes() == before


def test_real_clips_masked_cropped_resized(echo_dicom_dir):
    for p in sorted(echo_dicom_dir.glob("*.dcm")):
        cine = read_cine(p)
        clip, mask = video.preprocess_frames(cine.frames, 112)
        assert clip.shape == (cine.n_frames, 112, 112) and clip.dtype == np.uint8
        assert clip.mean() > 5, p.name
        assert mask.shape == to_gray(cine.frames).shape[1:]


def test_masking_figure_of_the_real_clips(echo_dicom_dir, tmp_path):
    from cardio_echo_cmr.report import masking_figure

    fig = masking_figure(sorted(echo_dicom_dir.glob("*.dcm")))
    fig.savefig(tmp_path / "masking.png", dpi=80)
    assert (tmp_path / "masking.png").stat().st_size > 10_000
