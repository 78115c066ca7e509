"""Signal plausibility of a gated perfusion SPECT (issue 55): counts of a normalised export, gates out of order, a
voxel spacing in another unit, a phase map in radians, ESV above EDV, one scan under two patients by content, and a
truncated file named as truncated. Each is one problem line naming the file, from the record checks that a run and
`cardio validate` share (cohort.load_cohort with records "read")."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio.data.cohort import CohortProblems
from cardio_spect_polar import cohort, plausibility
from cardio_spect_polar.dicom_io import read_volume
from cardio_spect_polar.settings import SpectSettings

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("CARDIO_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spect_plausible")
    settings = SpectSettings.of({"spect_polar": {"synthetic": {"slices": 16, "size": 32}}})
    patients = pd.DataFrame({"patient_id": [f"P{i + 1:04d}" for i in range(10)], "responder": [0, 1] * 5,
                             "drive": np.linspace(-1.5, 1.5, 10)})
    cohort.write_multimodal_cohort(patients, tmp / "base", 55, settings, progress=lambda it, **_: it)
    return tmp / "base"


@pytest.fixture()
def root(base, tmp_path):
    return shutil.copytree(base, tmp_path / "c")


def _problems(root, table: pd.DataFrame | None = None) -> str:
    if table is not None:
        table.to_csv(root / "clinical.csv", index=False)
    with pytest.raises(CohortProblems) as err:
        cohort.load_cohort(root, records="read")
    return "\n".join(map(str, err.value.problems))


def _as_npy(root, table: pd.DataFrame, pid: str, data: np.ndarray) -> None:
    np.save(root / "volumes" / f"{pid}.npy", data)
    (root / "volumes" / f"{pid}.dcm").unlink()
    table.loc[table["patient_id"] == pid, "file"] = f"volumes/{pid}.npy"


def test_the_clean_base_passes(base):
    assert len(cohort.load_cohort(base, records="read")) == 10


def test_counts_gate_order_and_phase_units(root):
    table = pd.read_csv(root / "clinical.csv").assign(file="")
    v = {p: read_volume(root / "volumes" / f"{p}.dcm").data for p in ("P0002", "P0003")}
    _as_npy(root, table, "P0002", v["P0002"] / v["P0002"].max())                    # normalised 0..1
    _as_npy(root, table, "P0003", v["P0003"][[0, 4, 1, 6, 2, 7, 3, 5]])              # gates shuffled
    np.savetxt(root / "volumes" / "P0004.csv", np.full((32, 64), 1.8) + np.linspace(0, 0.6, 64), delimiter=",")
    (root / "volumes" / "P0004.dcm").unlink()
    table.loc[3, "file"] = "volumes/P0004.csv"                                       # radians
    text = _problems(root, table)
    assert "line 3, column 'file': volumes/P0002.npy: its counts peak at 1: " in text
    assert "line 4, column 'file': volumes/P0003.npy: its gates are out of order" in text
    assert "line 5, column 'file': volumes/P0004.csv: its phases span 1.8..2.4" in text and "radians" in text


def test_gates_in_order_pass_the_order_check(base):
    for path in sorted((base / "volumes").glob("*.dcm")):
        assert plausibility.gate_order_ratio(read_volume(path).data) < plausibility.GATE_ORDER_RATIO - 0.2


def test_voxel_spacing_in_another_unit(root):
    for pid, values in (("P0005", {"PixelSpacing": [0.6, 0.6]}), ("P0006", {"SpacingBetweenSlices": 90.0})):
        ds = pydicom.dcmread(root / "volumes" / f"{pid}.dcm")
        for key, value in values.items():
            setattr(ds, key, value)
        ds.save_as(root / "volumes" / f"{pid}.dcm")
    text = _problems(root)
    assert "line 6, column 'file': volumes/P0005.dcm: PixelSpacing is 0.6 mm (written in cm?)" in text
    assert "line 7, column 'file': volumes/P0006.dcm: SpacingBetweenSlices (else SliceThickness) is 90 mm" in text


def test_the_real_nm_file_passes_the_spacing_check():
    path = SHARED / "spect_nm" / "NM-MONO2-16-13x-heart.dcm"
    if not path.is_file():
        pytest.skip(f"the real NM file is not at {path} (set CARDIO_DATA)")
    assert cohort.check_dicom_header(path).gates == 1  # its 3.1 mm pixels and 6.2 mm slices are a SPECT's


def test_esv_above_edv_and_a_truncated_file(root):
    table = pd.read_csv(root / "clinical.csv")
    table.loc[6, "esv"] = 1.5 * table.loc[6, "edv"]
    cut = (root / "volumes" / "P0008.dcm").read_bytes()
    (root / "volumes" / "P0008.dcm").write_bytes(cut[:int(0.6 * len(cut))])
    text = _problems(root, table)
    assert "line 8, column 'esv': esv" in text and "exceeds edv" in text
    assert "line 9, column 'file': volumes/P0008.dcm: pixel data holds" in text and "truncated" in text


def test_one_scan_re_exported_under_a_new_patient(root):
    table = pd.read_csv(root / "clinical.csv").assign(file="")
    np.save(root / "volumes" / "P9001.npy", read_volume(root / "volumes" / "P0007.dcm").data * 2.0)  # rescaled
    extra = table.iloc[[6]].assign(patient_id="P9001", file="volumes/P9001.npy")
    text = _problems(root, pd.concat([table, extra]))
    assert "volumes/P0007.dcm (line 8, patient 'P0007') and volumes/P9001.npy (line 12, patient 'P9001') hold one " \
           "scan" in text
