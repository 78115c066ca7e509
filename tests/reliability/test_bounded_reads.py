"""Reliability, family "allocation bounded by file size" (issue 58, cases 21 and 23): a header's claim (a .npy shape,
a WFDB signal length, a DICOM's NumberOfFrames) is checked against the file's bytes before anything is allocated, and
every plugin reads its NumPy records through one reader (cardio.data.files.read_npy) that refuses an .npz saved as .npy.

Before (54c188f): a .npy header claiming shape (10^9, 4) made the ECG reader try to allocate 14.9 GiB; a FLAC WFDB
header claiming 10^9 samples made wfdb allocate 1.9 GiB; a compressed DICOM cine claiming 20,000 frames made pydicom
allocate 1.2 GiB; an .npz saved as .npy gave "AttributeError: 'NpzFile' object has no attribute 'ndim'" in ecg_transfer
and spect_polar. Each is now one line naming the file; tracemalloc shows what was allocated. Controls in pairs: the
same files with honest headers read.
"""
from __future__ import annotations

import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cardio import CardioError
from cardio.data.files import npy_header, read_npy

MiB = 1 << 20


def _peak(read) -> tuple[str, float]:
    """(the CardioError's text, the MiB the read allocated at its peak)."""
    tracemalloc.start()
    try:
        with pytest.raises(CardioError) as e:
            read()
        return str(e.value), tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


def _huge_npy(path: Path) -> Path:
    """A real .npy of (1000, 12) float32 whose header is edited to claim (10^9, 4): 14.9 GiB."""
    np.save(path, np.zeros((1000, 12), np.float32))
    raw = path.read_bytes()
    head = raw[:128].decode("latin1").replace("(1000, 12)", "(1000000000, 4)")
    path.write_bytes((head[:127].rstrip("\n").ljust(127) + "\n").encode("latin1") + raw[128:])
    assert npy_header.__module__ == "cardio.data.files"
    return path


def test_a_npy_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    from cardio_ecg_transfer.records import read_npy_signal

    path = _huge_npy(tmp_path / "big.npy")
    text, peak = _peak(lambda: read_npy_signal(path, 360.0))
    assert "big.npy: truncated .npy array, or its header is damaged: the header claims a float32 array of shape " \
           "(1000000000, 4) (at least 14.9 GiB), the file holds" in text, text
    assert peak < 16, peak
    np.save(tmp_path / "ok.npy", np.sin(np.arange(3600) / 20.0))  # the control: an honest header reads
    assert read_npy(tmp_path / "ok.npy").shape == (3600,)


@pytest.mark.parametrize("reader", ["ecg_transfer", "spect_polar volume", "spect_polar map", "perfusion_polar",
                                    "cine"])
def test_an_npz_saved_as_npy_is_refused_cleanly_by_every_reader(tmp_path, reader):
    path = tmp_path / "z.npy"
    np.savez(tmp_path / "z.npz", x=np.zeros((3, 8, 8)))
    (tmp_path / "z.npz").rename(path)
    if reader == "ecg_transfer":
        from cardio_ecg_transfer.records import read_npy_signal as read
        call: Callable[[], object] = lambda: read(path, 360.0)  # noqa: E731
    elif reader == "spect_polar volume":
        from cardio_spect_polar.dicom_io import read_npy_volume
        call = lambda: read_npy_volume(path)  # noqa: E731
    elif reader == "spect_polar map":
        from cardio_spect_polar.dicom_io import read_polar_map
        call = lambda: read_polar_map(path)  # noqa: E731
    elif reader == "perfusion_polar":
        from cardio_perfusion_polar.cohort import _read
        from cardio_perfusion_polar.polar_table import Orientation
        call = lambda: _read(path, 8, Orientation())  # noqa: E731
    else:
        from cardio_imaging.cine import read_cine
        call = lambda: read_cine(path)  # noqa: E731
    with pytest.raises(CardioError, match=r"an \.npz archive \(a zip of arrays\) saved as \.npy"):
        call()


def _wfdb(tmp: Path, fmt: str, claim: int | None = None) -> Path:
    import wfdb

    signal = np.sin(np.arange(3600) / 20.0)[:, None]
    wfdb.wrsamp("r", fs=360, units=["mV"], sig_name=["II"], p_signal=signal, fmt=[fmt], adc_gain=[1000.0],
                baseline=[0], write_dir=str(tmp))
    if claim:
        lines = (tmp / "r.hea").read_text().splitlines()
        fields = lines[0].split()
        fields[3] = str(claim)
        (tmp / "r.hea").write_text("\n".join([" ".join(fields), *lines[1:]]) + "\n")
    return tmp / "r.hea"


@pytest.mark.parametrize("fmt", ["16", "516"])  # 516: FLAC, which wfdb decodes into an array of the claimed length
def test_a_wfdb_header_claiming_a_billion_samples_is_refused_before_allocating(tmp_path, fmt):
    pytest.importorskip("soundfile") if fmt == "516" else None
    from cardio_ecg_transfer.records import read_wfdb

    (tmp_path / "ok").mkdir()
    assert read_wfdb(_wfdb(tmp_path / "ok", fmt)).signal.shape == (3600,)  # the control
    (tmp_path / "big").mkdir()
    text, peak = _peak(lambda: read_wfdb(_wfdb(tmp_path / "big", fmt, 10**9)))
    assert "r.dat: truncated WFDB signal file, or its header is damaged: the header claims 1,000,000,000 samples per " \
           f"lead in format {fmt}" in text, text
    assert peak < 16, peak


@pytest.mark.parametrize("syntax", ["explicit", "rle"])
def test_a_dicom_cine_claiming_more_frames_than_it_holds_is_refused_before_allocating(tmp_path, syntax):
    import pydicom

    from cardio_imaging.cine import read_cine, write_dicom_cine

    frames = (np.random.default_rng(0).random((4, 128, 128)) * 255).astype(np.uint8)
    path = write_dicom_cine(tmp_path / "c.dcm", frames, 33.0, transfer_syntax=syntax)
    assert read_cine(path).n_frames == 4  # the control
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 20000
    ds.save_as(path)
    text, peak = _peak(lambda: read_cine(path))
    assert "c.dcm: truncated DICOM pixel data, or its header is damaged" in text and "20,000" in text, text
    assert peak < 16, peak


def test_an_edf_header_claiming_more_records_is_refused_by_its_library(tmp_path):
    pytest.importorskip("pyedflib")
    from cardio_ecg_transfer.leads import read_edf, write_edf

    path = write_edf(tmp_path / "x.edf", np.sin(np.arange(3600)[:, None] / 20.0).repeat(2, 1), 360.0, ["I", "II"])
    assert read_edf(path, ["II"], 360.0).signals.shape[0] == 1  # the control
    raw = bytearray(path.read_bytes())
    raw[236:244] = b"99999999"  # the number of data records
    path.write_bytes(bytes(raw))
    text, peak = _peak(lambda: read_edf(path, ["II"], 360.0))
    assert "x.edf: unreadable EDF file" in text and peak < 16  # edflib checks the file size itself


def test_validate_names_the_huge_npy_in_one_problem(tmp_path):
    synthetic = pytest.importorskip("cardio_ecg_transfer.synthetic")
    import pandas as pd

    from cardio_testing.harness import invoke

    root = tmp_path / "cohort"
    synthetic.write_synthetic_cohort(root, n_patients=4, seed=2, fs=250, seconds=4, leads=("II",))
    _huge_npy(root / "ecg" / "big.npy")
    np.savez(root / "ecg" / "z.npz", x=np.zeros(1000))
    shutil.move(root / "ecg" / "z.npz", root / "ecg" / "z.npy")
    rows = pd.read_csv(root / "cohort.csv", dtype=str, keep_default_na=False).assign(fs="")
    rows.loc[0, ["ecg", "fs"]] = ["ecg/big.npy", "360"]
    rows.loc[1, ["ecg", "fs"]] = ["ecg/z.npy", "360"]
    rows.to_csv(root / "cohort.csv", index=False)
    result = invoke("validate", "--plugin", "ecg_transfer", "--set", f"cohort.dir={root}", "--set", "cv.folds=2",
                    "--set", f"cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    assert any("line 2, column 'ecg': ecg/big.npy: truncated .npy array" in p for p in problems), problems
    assert any("line 3, column 'ecg': ecg/z.npy: an .npz archive" in p for p in problems), problems
