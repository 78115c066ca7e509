"""One scan or clip under two patients, found by content (cardio_imaging.same_image; issue 55): the same echo clip
re-encoded, or one frame shorter, is found on the real DICOM clips; different real clips, and the clips of different
synthetic patients (which look alike), are not; echo_cmr's record check names such a pair in one line."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cardio_imaging.cine import read_cine, write_dicom_cine, write_video
from cardio_imaging.same_image import cine_prints, same_cines, same_images

REAL = ("US-MONO2-8-8x-execho.dcm", "US-PAL-8-10x-echo.dcm", "color3d_jpeg_baseline.dcm", "examples_ybr_color.dcm")


def _prints(path) -> tuple[np.ndarray, float | None]:
    cine = read_cine(path)
    return cine_prints(cine.frames), cine.frame_time_ms


def test_real_clips_re_encoded_or_a_frame_shorter_are_one_clip(echo_dicom_dir, tmp_path):
    ybr = read_cine(echo_dicom_dir / "examples_ybr_color.dcm")
    pal = read_cine(echo_dicom_dir / "US-PAL-8-10x-echo.dcm")
    write_video(tmp_path / "ybr.avi", ybr.frames, ybr.fps or 30.0)                        # re-encoded (MJPG)
    write_dicom_cine(tmp_path / "pal.dcm", pal.frames[1:].mean(axis=-1).astype(np.uint8) if pal.frames.ndim == 4
                     else pal.frames[1:], pal.frame_time_ms or 33.3)                       # one frame dropped, grey
    clips = {name: _prints(echo_dicom_dir / name) for name in REAL}
    clips |= {"ybr.avi": _prints(tmp_path / "ybr.avi"), "pal.dcm": _prints(tmp_path / "pal.dcm")}
    found = {frozenset((m.a, m.b)): m for m in same_cines(clips)}
    assert set(found) == {frozenset(("examples_ybr_color.dcm", "ybr.avi")),
                          frozenset(("US-PAL-8-10x-echo.dcm", "pal.dcm"))}, found
    dropped = found[frozenset(("US-PAL-8-10x-echo.dcm", "pal.dcm"))]
    assert dropped.r > 0.99 and abs(dropped.lag_s) > 0  # the copy starts one frame into the original


def test_the_clips_of_different_synthetic_patients_are_not_one(tmp_path):
    pytest.importorskip("cardio_echo_cmr")
    from cardio_echo_cmr import synthetic

    root = synthetic.write_cohort(tmp_path / "c", 12, seed=5, n_frames=32, height=48, width=64)
    table = pd.read_csv(root / "labels.csv")
    assert same_cines({f: _prints(root / f) for f in table["file"]}) == []


def test_same_images_finds_a_rescaled_copy_and_nothing_else():
    rng = np.random.default_rng(0)
    prints = {i: rng.normal(size=51) for i in range(200)}
    prints[200] = 3.0 * prints[17] + 0.01 * rng.normal(size=51)
    assert [(m.a, m.b) for m in same_images(prints)] == [(17, 200)]


def test_echo_validate_names_a_real_clip_re_encoded_under_a_new_patient(echo_dicom_dir, tmp_path):
    pytest.importorskip("cardio_echo_cmr")
    from cardio.data.cohort import CohortProblems
    from cardio_echo_cmr import cohort, synthetic

    root = synthetic.write_cohort(tmp_path / "c", 6, seed=5, n_frames=32, height=48, width=64)
    table = pd.read_csv(root / "labels.csv")
    shutil.copy(echo_dicom_dir / "examples_ybr_color.dcm", root / "videos" / "R1_A4C.dcm")
    real = read_cine(root / "videos" / "R1_A4C.dcm")
    write_video(root / "videos" / "R2_A4C.avi", real.frames, real.fps or 30.0)
    first = table.iloc[0].to_dict()
    extra = pd.DataFrame([{**first, "patient_id": pid, "study_id": f"S{pid}", "view": "A4C", "file": f}
                          for pid, f in (("R1", "videos/R1_A4C.dcm"), ("R2", "videos/R2_A4C.avi"))])
    pd.concat([table, extra]).to_csv(root / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as err:
        cohort.read_clips(root, records="read")
    lines = [str(p) for p in err.value.problems]
    assert any("videos/R1_A4C.dcm" in line and "videos/R2_A4C.avi" in line and "hold one clip" in line
               for line in lines), lines
