"""Reliability, family "what validate missed" (issue 55): the damages validate passed, or named for the wrong reason,
each now one line naming the file and the real problem, on real files where a real file shows it (the echo DICOMs,
pydicom's MR slice and 12-lead ECG, MIT-BIH). The held-out damaged cohorts are benchmarks/validate_damages.py's."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError
from cardio.data.cohort import CohortProblems, Column, Schema, read_table
from cardio_imaging.cine import cine_problem, frame_time_problem, probe, read_cine, to_gray, write_video


def test_the_real_echo_clips_raise_no_alarm(echo_dicom_dir):
    for path in sorted(echo_dicom_dir.glob("*.dcm")):
        cine = read_cine(path)
        assert cine_problem(cine.frames) is None and frame_time_problem(cine.frame_time_ms) is None, path.name


def test_a_truncated_jpeg_echo_is_named_truncated_and_no_warning_leaks(echo_dicom_dir, tmp_path):
    data = (echo_dicom_dir / "examples_ybr_color.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:int(0.6 * len(data))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for read in (read_cine, probe):
            with pytest.raises(CardioError, match=r"cut\.dcm: truncated DICOM file: its 134,941 bytes end inside"):
                read(cut)
    assert not caught  # was: "no pixel data", and pydicom's "End of file reached before delimiter" on the screen


def test_a_truncated_dicom_ecg_is_named_truncated(tmp_path):
    from pydicom.data import get_testdata_file

    from cardio_ecg_transfer.leads import read_waveform

    ecg = get_testdata_file("waveform_ecg.dcm")
    assert isinstance(ecg, str)  # pydicom's own test file, always shipped
    data = Path(ecg).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:int(0.7 * len(data))])
    with pytest.raises(CardioError, match=r"cut\.dcm: truncated DICOM file") as err:
        read_waveform(tmp_path / "cut.dcm")
    assert "No tag to read" not in str(err.value)


def test_files_under_another_kind_s_name(tmp_path, echo_dicom_dir):
    from cardio_ecg_transfer import leads, records

    frames = read_cine(echo_dicom_dir / "US-MONO2-8-8x-execho.dcm").frames
    write_video(tmp_path / "clip.avi", frames, 10.0).replace(tmp_path / "clip.dcm")
    for read in (read_cine, probe):
        with pytest.raises(CardioError, match=r"clip\.dcm: an AVI video saved under a \.dcm name, not a DICOM file: "
                                              r"rename it \.avi"):
            read(tmp_path / "clip.dcm")
    t = np.arange(3600) / 360
    leads.write_edf(tmp_path / "e.edf", np.c_[np.sin(t), np.cos(t)], 360.0, ["ECG MLII", "ECG V1"])
    (tmp_path / "e.edf").replace(tmp_path / "e.csv")
    with pytest.raises(CardioError, match=r"e\.csv: an EDF saved under a \.csv name, not a CSV file: rename it \.edf"):
        records.read_ecg(tmp_path / "e.csv", 360.0, None, 360.0)


def test_an_mr_slice_given_as_an_echo_is_named_by_its_modality():
    from pydicom.data import get_testdata_file

    mr = get_testdata_file("MR_small.dcm")
    assert isinstance(mr, str)
    for read in (read_cine, probe):
        with pytest.raises(CardioError, match=r"MR_small\.dcm: an MR image \(Modality MR, 1 frame\(s\)\), not an "
                                              r"ultrasound cine"):
            read(mr)


def test_saturated_and_inverted_clips_are_named_for_what_they_are(echo_dicom_dir):
    frames = to_gray(read_cine(echo_dicom_dir / "examples_ybr_color.dcm").frames)  # the gain acts on the grey
    saturated = np.clip(frames.astype(int) * 8, 0, 255).astype(np.uint8)
    assert "the gain saturates" in (cine_problem(saturated) or "")  # was: "one still image"
    assert "the grey scale is inverted" in (cine_problem(255 - frames) or "")
    assert "frames per second" in (frame_time_problem(333.0) or "")


def test_a_header_exports_write_is_tied_to_its_column(tmp_path):
    schema = Schema((Column("qrs_ms", "number", aliases=("qrs_duration", "qrsd")),), table="t.csv")
    pd.DataFrame({"patient_id": ["a"], "QRS_duration": [150]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(CohortProblems, match=r"column\(s\) 'QRS_duration' \(did you mean 'qrs_ms'\?\)"):
        read_table(tmp_path, schema)


def test_r_peaks_with_decimal_commas_and_a_septum_drawn_apex_to_base():
    from cardio_mmode_septal_flash.cohort import r_peaks
    from cardio_mmode_septal_flash.geometry import check_points

    assert r_peaks("412,5;1230,0") == [412.5, 1230.0]       # ";" between times: the commas are decimal
    assert r_peaks("67,933", decimal_comma=True) == [67.933]  # a ';' table: one time, not 67 and 933
    assert r_peaks("412,1230") == [412.0, 1230.0]
    y = np.linspace(56, 13, 62)
    base_to_apex = np.c_[np.full(62, 30.0), y]
    check_points(base_to_apex, (64, 64), "s.csv")
    with pytest.raises(CardioError, match=r"s\.csv: its septum points run from y=13 \(point 0\) down to y=56 "
                                          r"\(point 61\), apex to base"):
        check_points(base_to_apex[::-1], (64, 64), "s.csv")
