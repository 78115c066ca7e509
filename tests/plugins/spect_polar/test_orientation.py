"""Orientation from the DICOM header: slice order (apex to base) from the slice positions, walls from the image
orientation; what a header lacks is assumed, and the cohort table, the log and the report say so."""
import logging

import numpy as np
import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import CardioError
from cardio_spect_polar import cohort, dicom_io, orientation
from cardio_spect_polar.phantom import make_phantom
from cardio_spect_polar.phase import phase_analysis


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(3, pattern="focal", dyssynchrony=120, late_angle=300, slices=20, size=40).volume


def _map(path) -> np.ndarray:
    return phase_analysis(dicom_io.read_volume(path), rings=16, sectors=32).phase_map


def test_base_first_with_a_header_that_says_so_gives_the_apex_first_map(tmp_path, phantom):
    apex = dicom_io.write_gated_dicom(tmp_path / "apex.dcm", phantom)
    base = dicom_io.write_gated_dicom(tmp_path / "base.dcm", phantom, base_first=True)
    stored = pydicom.dcmread(base).pixel_array.reshape(phantom.shape)
    np.testing.assert_array_equal(stored, phantom[:, ::-1])  # the file really holds the base first
    assert float(pydicom.dcmread(base).SpacingBetweenSlices) < 0
    iop = [float(v) for v in pydicom.dcmread(apex).DetectorInformationSequence[0].ImageOrientationPatient]
    assert iop == list(orientation.SHORT_AXIS_IOP)  # a short-axis plane: columns lateral, rows inferior
    back = dicom_io.read_volume(base)
    assert back.slice_spacing is not None and back.slice_spacing > 0
    assert back.orientation.reverse_slices and back.orientation.describe() == "header"
    np.testing.assert_array_equal(back.data, phantom)
    np.testing.assert_array_equal(_map(base), _map(apex))
    # the same file without its plane's geometry: apex first is assumed, and that map is another one
    bare = dicom_io.write_gated_dicom(tmp_path / "bare.dcm", phantom, base_first=True, geometry=False)
    assumed = dicom_io.read_volume(bare).orientation
    assert assumed.assumed == ("slices", "rows", "columns") and not assumed.reverse_slices
    assert np.abs(_map(bare) - _map(apex)).max() > 10


def test_slice_location_vector_and_flipped_image_axes(tmp_path, phantom):
    """Per-frame slice locations order the slices; an image stored right to left and bottom up, with an
    orientation that says so, is turned back (anterior up, lateral right)."""
    path = dicom_io.write_gated_dicom(tmp_path / "a.dcm", phantom[:, ::-1, ::-1, ::-1])
    ds = pydicom.dcmread(path)
    ds.DetectorInformationSequence[0].ImageOrientationPatient = ["-1", "0", "0", "0", "-1", "0"]
    del ds.SpacingBetweenSlices  # slice positions from the Slice Location Vector alone
    # normal (-1,0,0) x (0,-1,0) = (0,0,1): locations falling with slice number step inferiorly, to the apex
    ds.SliceLocationVector = [float(v) for v in np.asarray(ds.SliceVector) * -6.0]
    ds.save_as(tmp_path / "flipped.dcm")
    back = dicom_io.read_volume(tmp_path / "flipped.dcm")
    o = back.orientation
    assert (o.reverse_slices, o.flip_rows, o.flip_cols, o.assumed) == (True, True, True, ())
    np.testing.assert_array_equal(back.data, phantom)


def test_an_orientation_across_the_long_axis_is_assumed_and_a_bad_one_refused(tmp_path, phantom):
    path = dicom_io.write_gated_dicom(tmp_path / "a.dcm", phantom)
    ds = pydicom.dcmread(path)
    # slices stepping along -(1, 1, 0)/sqrt 2, perpendicular to the base-apex axis: the order is not told
    ds.DetectorInformationSequence[0].ImageOrientationPatient = ["0", "0", "1", "-0.7071", "0.7071", "0"]
    ds.save_as(tmp_path / "oblique.dcm")
    o = dicom_io.read_volume(tmp_path / "oblique.dcm").orientation
    assert "slices" in o.assumed and o.describe().startswith("assumed apex first")
    ds.DetectorInformationSequence[0].ImageOrientationPatient = ["0", "0", "0", "0", "1", "0"]
    ds.save_as(tmp_path / "zero.dcm")
    with pytest.raises(CardioError, match="zero.dcm: ImageOrientationPatient .* has a zero direction"):
        dicom_io.read_volume(tmp_path / "zero.dcm")


def test_the_cohort_table_and_the_log_say_what_was_assumed(tmp_path, phantom, caplog):
    (tmp_path / "volumes").mkdir()
    dicom_io.write_gated_dicom(tmp_path / "volumes" / "a.dcm", phantom, base_first=True)
    dicom_io.write_gated_dicom(tmp_path / "volumes" / "b.dcm", phantom, geometry=False)
    np.save(tmp_path / "volumes" / "c.npy", phantom)
    pd.DataFrame({"patient_id": ["a", "b", "c"], "responder": [1, 0, 1]}).to_csv(tmp_path / "clinical.csv",
                                                                                  index=False)
    table = cohort.load_cohort(tmp_path, cohort.run_schema("responder", []))
    assert table["orientation"].tolist() == [
        "header", "assumed apex first, anterior wall up, lateral wall right",
        "assumed apex first, anterior wall up, lateral wall right (a .npy volume has no header)"]
    log = logging.getLogger("spect-orientation-test")
    with caplog.at_level(logging.INFO, logger=log.name):
        cohort.log_orientation(table, log)
    assert "orientation of 1 of 3 record(s): header" in caplog.text
    assert "orientation of 1 of 3 record(s): assumed apex first" in caplog.text
    assert orientation.Orientation().describe() == "assumed apex first, anterior wall up, lateral wall right"
