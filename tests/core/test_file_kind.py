"""cardio.data.file_kind.read_dicom: a misnamed file as one line naming it, and pydicom itself an extra of the
kernel (cardio-crt[dicom]), required by the plugins and services that read DICOM."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cardio import CardioError
from cardio.data.file_kind import read_dicom

pydicom = pytest.importorskip("pydicom")


def _dicom(path: Path) -> Path:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID, meta.MediaStorageSOPClassUID = ExplicitVRLittleEndian, generate_uid()
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = pydicom.Dataset()
    ds.file_meta, ds.PatientID = meta, "anon"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_dicom_file_reads_and_a_png_under_a_dicom_name_is_one_line(tmp_path):
    assert read_dicom(_dicom(tmp_path / "a.dcm")).PatientID == "anon"
    png = tmp_path / "b.dcm"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    with pytest.raises(CardioError, match="b.dcm"):
        read_dicom(png)


def test_without_pydicom_reading_dicom_is_one_line_naming_the_file_and_the_install(tmp_path, monkeypatch):
    path = _dicom(tmp_path / "a.dcm")
    for name in [n for n in list(sys.modules) if n == "pydicom" or n.startswith("pydicom.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # how Python marks a module absent
    with pytest.raises(CardioError, match=r"a\.dcm: reading DICOM needs pydicom.*-m pip install 'cardio-crt\[dicom\]'"):
        read_dicom(path)
