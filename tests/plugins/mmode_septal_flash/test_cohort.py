"""The synthetic cohort (planted flash in its window, stored truth) and the loader's refusals of bad input."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd

from cardio import Cache
from cardio.data.cohort import CohortProblems
from cardio_mmode_septal_flash import cohort, preprocess, synthetic
from cardio_mmode_septal_flash.settings import MMode, Synthetic
from cardio_testing.harness import check_refused, checksums, invoke

SMALL = Synthetic(n_patients=12, n_sf=5, size=64, seed=3)


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory) -> Path:
    return synthetic.write_cohort(SMALL, tmp_path_factory.mktemp("sf") / "cohort")


def _lv_edge(mm: np.ndarray) -> np.ndarray:
    """Depth of the septum's LV-side edge per instant: last bright sample of the upper half."""
    upper = mm[: mm.shape[0] // 2].astype(float)
    bright = upper > 0.5 * upper.max()
    return upper.shape[0] - 1 - np.argmax(bright[::-1], axis=0)


def test_synthetic_cohort_stores_its_truth_and_plants_the_flash_in_its_window(small_cohort, tmp_path):
    table = cohort.read_labels(small_cohort)
    assert len(table) == 12 and table["septal_flash"].sum() == 5
    # no record_id column (the format before the cohort contract): each patient's one sequence is the record
    assert (table["record_id"] == table["patient_id"]).all()
    assert table["sequence"].iloc[0] == str(small_cohort / "sequences" / "SF0001.npy")
    sf = table["septal_flash"] == 1
    assert table.loc[sf, ["sf_start_ms", "sf_end_ms"]].notna().all().all()
    assert table.loc[~sf, ["sf_start_ms", "sf_end_ms"]].isna().all().all()
    assert ((table.loc[sf, "sf_start_ms"] >= table.loc[sf, "mvc_ms"])
            & (table.loc[sf, "sf_end_ms"] <= table.loc[sf, "avo_ms"])).all()
    excursions: list[float] = []
    for _, row in table.iterrows():
        seq = cohort.read_sequence(row)
        assert seq.points.shape == (62, 2) and seq.frames.dtype == np.uint8
        mm = preprocess.patient_mmodes(seq, MMode(offsets=0), "right")[0]
        edge = _lv_edge(mm)
        cycle_ms = (seq.cycle[1] - seq.cycle[0]) * seq.frame_time_ms
        t = np.linspace(0, cycle_ms, mm.shape[1])
        window = (t >= row["mvc_ms"]) & (t <= row["avo_ms"])
        excursions.append(edge[window].max() - edge[t < row["mvc_ms"]].mean())  # excursion toward the LV before AVO
    gain = np.array(excursions)
    assert gain[sf.to_numpy()].min() > gain[~sf.to_numpy()].max()  # the planted flash, and only there
    cache = Cache(tmp_path)
    root = synthetic.cached_cohort(cache, SMALL)
    assert synthetic.cached_cohort(cache, SMALL) == root  # written once, then reused
    assert synthetic.cached_cohort(cache, replace(SMALL, flash_amplitude=0.03)) != root


def _edit_labels(d: Path, **columns) -> None:
    t = pd.read_csv(d / "labels.csv", dtype={"patient_id": str})
    for k, v in columns.items():
        t[k] = [v] + list(t[k][1:]) if k in t.columns else [v] + [None] * (len(t) - 1)
    t.to_csv(d / "labels.csv", index=False)


def _first(d: Path, folder: str, suffix: str) -> Path:
    return sorted((d / folder).glob(f"*{suffix}"))[0]


def _septum(d: Path, edit) -> None:
    p = _first(d, "septum", ".csv")
    edit(pd.read_csv(p)).to_csv(p, index=False)


def write_dicom(path: Path, frames: np.ndarray, frame_time_ms: float | None) -> Path:
    """A multi-frame MONOCHROME2 ultrasound DICOM, with FrameTime or without any frame timing."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames, (ds.Rows, ds.Columns) = len(frames), frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frame_time_ms is not None:
        ds.FrameTime = f"{frame_time_ms:.3f}"
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _dicom_without_timing(d: Path) -> None:
    npy = _first(d, "sequences", ".npy")
    write_dicom(npy.with_suffix(".dcm"), np.load(npy), None)
    npy.unlink()
    t = pd.read_csv(d / "labels.csv", dtype={"patient_id": str})
    t["frame_time_ms"] = t["frame_time_ms"].astype(object)
    t.loc[0, "frame_time_ms"] = None
    t.to_csv(d / "labels.csv", index=False)


def test_sequences_from_dicom_avi_and_numpy_read_alike(small_cohort, tmp_path):
    """The same frames as DICOM (frame time from the header), AVI (from the frame rate) and NumPy (labels.csv)."""
    import cv2

    from cardio_imaging.cine import read_cine

    npy = _first(small_cohort, "sequences", ".npy")
    frames = np.load(npy)
    dcm = read_cine(write_dicom(tmp_path / "a.dcm", frames, 20.0), need_frame_time=True)
    assert dcm.source == "dicom" and dcm.frame_time_ms == 20.0 and np.array_equal(dcm.frames, frames)
    writer = cv2.VideoWriter(str(tmp_path / "a.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 50.0, frames.shape[:0:-1])
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()
    avi = read_cine(tmp_path / "a.avi", need_frame_time=True)
    assert avi.frame_time_ms == pytest.approx(20.0) and avi.frames.shape == (*frames.shape, 3)
    assert np.abs(avi.frames[..., 0].astype(int) - frames).mean() < 8  # MJPEG is lossy
    assert read_cine(npy).frame_time_ms is None


CASES = [
    ("septum-61-points", lambda d: _septum(d, lambda p: p.iloc[:61]), "61 septum points"),
    ("septum-point-outside", lambda d: _septum(d, lambda p: p.assign(x=p["x"].where(p.index > 0, 500.0))),
     "outside the 64 x 64 image"),
    ("septum-no-xy", lambda d: _septum(d, lambda p: p.rename(columns={"x": "col"})), "columns x and y"),
    ("sequence-shorter-than-cycle", lambda d: _edit_labels(d, cycle_end=400), "lies past the clip's last frame"),
    ("dicom-without-frame-timing", _dicom_without_timing, ".dcm"),
    ("label-not-yes-no", lambda d: _edit_labels(d, septal_flash="maybe"), "column 'septal_flash': must be 0/1"),
    ("no-cycle-columns", lambda d: pd.read_csv(d / "labels.csv").drop(columns=["cycle_start", "cycle_end"])
     .to_csv(d / "labels.csv", index=False), "cycle_start and cycle_end"),
    ("sequence-missing", lambda d: _first(d, "sequences", ".npy").unlink(), "sequences/SF0001{.dcm,.avi,.mp4,.npy}"),
]


@pytest.mark.parametrize("case_id,corrupt,names", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_file(small_cohort, tmp_path, case_id, corrupt, names):
    d = shutil.copytree(small_cohort, tmp_path / "cohort")
    corrupt(d)
    before = checksums(d)
    # two folds: 12 patients are too few for the default holdout's test part (refused before any clip is read)
    result = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"),
                    "--set", f"cohort.dir={d}", "--set", f"cache_dir={tmp_path / 'cache'}",
                    "--set", "cv.method=kfold", "--set", "cv.folds=2")
    check_refused(result, names)
    last = result.stderr.strip().splitlines()[-1]
    if case_id.startswith(("septum", "sequence", "dicom", "label", "no-cycle")):
        assert "SF0001" in last or "labels.csv" in last, last  # the file is named
    assert checksums(d) == before


def test_every_problem_of_the_table_is_listed_at_once(small_cohort, tmp_path):
    d = shutil.copytree(small_cohort, tmp_path / "cohort")
    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    t.loc[0, "septal_flash"] = "maybe"  # CSV line 2
    t.loc[1, ["mvc_ms", "avo_ms"]] = ["130", "90"]  # line 3: MVC after AVO
    t.loc[2, "cycle_end"] = t.loc[2, "cycle_start"]  # line 4: a cycle of no frames
    t.loc[3, "frame_time_ms"] = "0"  # line 5
    t.loc[4, "frame_time_ms"] = "fast"  # line 6: not a number (issue 27 item 11: a crash before)
    t.loc[6, "septal_flash"] = ""  # line 8: not assessed, a missing label and no problem
    t.to_csv(d / "labels.csv", index=False)
    septum = d / "septum" / "SF0005.csv"  # line 6
    pd.read_csv(septum).iloc[:61].to_csv(septum, index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_labels(d)
    found = {(p.line, p.column) for p in e.value.problems}
    assert found == {(2, "septal_flash"), (3, "mvc_ms"), (4, "cycle_end"), (5, "frame_time_ms"), (6, "septum"),
                     (6, "frame_time_ms")}
    assert "61 septum points" in str(next(p for p in e.value.problems if p.column == "septum"))


def test_validate_lists_a_short_septum_and_a_cycle_past_the_clip(tmp_path):
    """Issue 27 item 13 / issue 26 item 1: a 61-point tracing and a cycle end past the clip's last frame are problems
    of cardio validate (read with the table), not failures 25 s into featurizing."""
    from cardio_mmode_septal_flash import synthetic
    from cardio_mmode_septal_flash.settings import SeptalFlashSettings
    from cardio_testing.harness import invoke, plugin_config

    cfg = SeptalFlashSettings.of(plugin_config("mmode_septal_flash", [
        "profile=fast", "mmode_septal_flash.synthetic.n_patients=10", "mmode_septal_flash.synthetic.n_sf=4",
        "mmode_septal_flash.synthetic.size=64"]))
    root = synthetic.write_cohort(cfg.synthetic, tmp_path / "c")
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    septum = root / "septum" / f"{table.loc[1, 'patient_id']}.csv"
    points = pd.read_csv(septum)
    points.iloc[:61].to_csv(septum, index=False)
    frames = len(np.load(root / "sequences" / f"{table.loc[4, 'patient_id']}.npy", mmap_mode="r"))
    table.loc[4, "cycle_end"] = str(frames + 5)
    table.loc[4, "r_peaks_ms"] = ""
    table.to_csv(root / "labels.csv", index=False)
    result = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={root}")
    assert result.exit_code == 2
    text = "\n".join(line for line in result.stderr.splitlines() if line.startswith("problem:"))
    assert "line 3, column 'septum'" in text and "61" in text, text
    assert f"line 6, column 'cycle_end': cycle_end {frames + 5} lies past the clip's last frame" in text, text


def test_pixel_spacing_from_the_dicom_regions_or_the_table_and_the_report_says_which(small_cohort, tmp_path):
    import pydicom
    from pydicom.dataset import Dataset

    from cardio_imaging.cine import write_dicom_cine
    from cardio_mmode_septal_flash.report import line_statement

    npy = _first(small_cohort, "sequences", ".npy")
    dcm = write_dicom_cine(tmp_path / "a.dcm", np.load(npy), 20.0)
    ds = pydicom.dcmread(dcm)
    region = Dataset()
    region.RegionSpatialFormat, region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 1, 3, 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.04, 0.04  # cm per pixel
    ds.SequenceOfUltrasoundRegions = [region]
    ds.save_as(dcm)
    t = cohort.read_labels(small_cohort)
    row = t.iloc[0].copy()
    row["sequence"], row["frame_time_ms"] = str(dcm), None
    seq = cohort.read_sequence(row)
    assert seq.spacing_mm == pytest.approx((0.4, 0.4))
    [line] = preprocess.septal_lines(seq, MMode(offsets=0), "right")
    assert line.length_mm == 90.0 and line.length == pytest.approx(225.0)  # 90 mm at 0.4 mm per pixel
    row["pixel_spacing_mm"] = 0.5  # the table's value wins over the header's
    assert cohort.read_sequence(row).spacing_mm == (0.5, 0.5)
    assert cohort.read_sequence(t.iloc[0]).spacing_mm is None  # NumPy: no calibration, pixels
    m = MMode()
    assert "90 mm on 1 of 3 records" in line_statement(pd.DataFrame({"line_mm": [90.0, np.nan, np.nan]}), m)
    assert "0.6 x the image width in pixels for all 2" in line_statement(pd.DataFrame({"line_mm": [np.nan] * 2}), m)


def test_one_clip_re_encoded_under_a_new_patient_is_named_by_its_clip(small_cohort, tmp_path):
    """Issue 55: the copy was named by its septum file's bytes only; its clip, re-encoded as AVI (other bytes), is
    now named by content (cardio_imaging.same_image.same_cines), and the clean cohort raises no such line."""
    from cardio_imaging.cine import write_video

    assert len(cohort.read_labels(small_cohort, records="read")) == 12
    root = shutil.copytree(small_cohort, tmp_path / "c")
    table = pd.read_csv(root / "labels.csv")
    write_video(root / "sequences" / "SF9001.avi", np.load(root / "sequences" / "SF0004.npy"), 50.0)
    shutil.copy(root / "septum" / "SF0004.csv", root / "septum" / "SF9001.csv")
    extra = table[table["patient_id"] == "SF0004"].assign(patient_id="SF9001", sequence="sequences/SF9001.avi")
    pd.concat([table, extra]).to_csv(root / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as err:
        cohort.read_labels(root, records="read")
    lines = [str(p) for p in err.value.problems]
    assert any("sequences/SF0004.npy (line 5, patient 'SF0004') and sequences/SF9001.avi (line 14, patient 'SF9001') "
               "hold one clip" in line for line in lines), lines
