"""Gated NM DICOM, NumPy volumes and polar maps: round trips, the real NM file, bad inputs."""
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import CardioError
from cardio_spect_polar import dicom_io
from cardio_spect_polar.phantom import make_phantom

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("CARDIO_DATA") or os.environ.get("CARDIO_SHARED_DATA") or REPO.parent / "shared" / "data")
REAL_NM = SHARED / "spect_nm" / "NM-MONO2-16-13x-heart.dcm"


@pytest.fixture(scope="module")
def volume():
    return make_phantom(11, pattern="lbbb", dyssynchrony=80).volume


@pytest.mark.parametrize("gates", [8, 16])
def test_gated_dicom_round_trip(tmp_path, gates):
    vol = make_phantom(12, gates=gates, slices=20).volume
    path = dicom_io.write_gated_dicom(tmp_path / "study.dcm", vol, pixel_spacing_mm=5.0, slice_spacing_mm=6.0,
                                      rr_ms=900.0, uid_seed=("t", str(gates)))
    with open(path, "rb") as fh:
        assert fh.read(132)[128:] == b"DICM"  # preamble + prefix: a Part 10 file
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.NuclearMedicineImageStorage == ds.SOPClassUID
    assert ds.Modality == "NM" and ds.ImageType[2] == "RECON GATED TOMO"
    assert int(ds.NumberOfFrames) == gates * 20 and int(ds.NumberOfTimeSlots) == gates
    assert [int(t) for t in ds.FrameIncrementPointer] == [0x00540060, 0x00540070, 0x00540080]
    assert ds.pixel_array.dtype == np.uint16
    back = dicom_io.read_volume(path)
    assert back.gated and back.n_gates == gates and back.n_slices == 20
    np.testing.assert_array_equal(back.data, vol)
    assert back.pixel_spacing == (5.0, 5.0) and back.slice_spacing == 6.0 and back.rr_ms == 900.0
    assert back.time_slot_ms is not None
    np.testing.assert_allclose(back.time_slot_ms, np.arange(gates) * 900.0 / gates)
    # deterministic UIDs: writing again gives the same bytes
    again = dicom_io.write_gated_dicom(tmp_path / "again.dcm", vol, pixel_spacing_mm=5.0, slice_spacing_mm=6.0,
                                       rr_ms=900.0, uid_seed=("t", str(gates)))
    assert path.read_bytes() == again.read_bytes()


def test_frames_are_placed_by_their_vectors_not_their_order(tmp_path, volume):
    path = dicom_io.write_gated_dicom(tmp_path / "a.dcm", volume)
    ds = pydicom.dcmread(path)
    n = int(ds.NumberOfFrames)
    perm = np.random.default_rng(0).permutation(n)
    frames = ds.pixel_array[perm]
    ds.TimeSlotVector = [int(v) for v in np.asarray(ds.TimeSlotVector)[perm]]
    ds.SliceVector = [int(v) for v in np.asarray(ds.SliceVector)[perm]]
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.save_as(tmp_path / "shuffled.dcm")
    np.testing.assert_array_equal(dicom_io.read_volume(tmp_path / "shuffled.dcm").data, volume)


def test_npy_volume_and_polar_maps(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    v = dicom_io.read_volume(tmp_path / "v.npy")
    assert v.gated and v.data.shape == volume.shape and v.data.dtype == np.float32
    pm = np.random.default_rng(1).uniform(0, 360, (32, 64))
    np.save(tmp_path / "p.npy", pm)
    np.savetxt(tmp_path / "p.csv", pm, delimiter=",")
    np.testing.assert_allclose(dicom_io.read_polar_map(tmp_path / "p.npy"), pm)
    np.testing.assert_allclose(dicom_io.read_polar_map(tmp_path / "p.csv", shape=(32, 64)), pm)
    with pytest.raises(CardioError, match="expected"):
        dicom_io.read_polar_map(tmp_path / "p.npy", shape=(16, 32))


def _written(tmp_path, volume, name="x.dcm"):
    return pydicom.dcmread(dicom_io.write_gated_dicom(tmp_path / name, volume))


def test_non_nm_dicom_is_refused(tmp_path, volume):
    ds = _written(tmp_path, volume)
    ds.Modality = "CT"
    ds.save_as(tmp_path / "ct.dcm")
    with pytest.raises(CardioError, match=r"ct\.dcm.*Modality is 'CT'"):
        dicom_io.read_volume(tmp_path / "ct.dcm")


def test_dicom_without_pixel_data_is_refused(tmp_path, volume):
    ds = _written(tmp_path, volume)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(CardioError, match=r"nopix\.dcm.*no pixel data"):
        dicom_io.read_volume(tmp_path / "nopix.dcm")


def test_gated_dicom_with_one_time_slot_is_refused(tmp_path, volume):
    path = dicom_io.write_gated_dicom(tmp_path / "multi.dcm", volume)
    ds = pydicom.dcmread(path)
    n_sl = volume.shape[1]
    ds.NumberOfFrames = n_sl
    ds.NumberOfTimeSlots = 1
    ds.TimeSlotVector = [1] * n_sl
    ds.SliceVector = list(range(1, n_sl + 1))
    ds.RRIntervalVector = [1] * n_sl
    ds.PixelData = volume[0].astype("<u2").tobytes()
    ds.save_as(tmp_path / "one.dcm")
    with pytest.raises(CardioError, match=r"one\.dcm.*one time slot"):
        dicom_io.read_volume(tmp_path / "one.dcm")


def test_gates_of_unequal_size_are_refused(tmp_path, volume):
    ds = _written(tmp_path, volume)
    slots, slices = np.asarray(ds.TimeSlotVector), np.asarray(ds.SliceVector)
    keep = ~((slots == 3) & (slices == slices.max()))  # gate 3 lost its basal slice
    frames = ds.pixel_array[keep]
    ds.NumberOfFrames = int(keep.sum())
    ds.TimeSlotVector = [int(v) for v in slots[keep]]
    ds.SliceVector = [int(v) for v in slices[keep]]
    ds.RRIntervalVector = [1] * int(keep.sum())
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.save_as(tmp_path / "ragged.dcm")
    with pytest.raises(CardioError, match=r"ragged\.dcm.*unequal size.*gate 3: 23"):
        dicom_io.read_volume(tmp_path / "ragged.dcm")
    with pytest.raises(CardioError, match="unequal size"):
        dicom_io.stack_gates([volume[0], volume[1][:-1]], "gates")


def test_projections_and_multiple_windows_are_refused(tmp_path, volume):
    ds = _written(tmp_path, volume)
    n = int(ds.NumberOfFrames)
    ds.AngularViewVector = [1] * n
    ds.FrameIncrementPointer = [*ds.FrameIncrementPointer, pydicom.tag.Tag(0x0054, 0x0090)]
    ds.save_as(tmp_path / "proj.dcm")
    with pytest.raises(CardioError, match="projections"):
        dicom_io.read_volume(tmp_path / "proj.dcm")
    ds = _written(tmp_path, volume, "rr.dcm")
    ds.RRIntervalVector = [1 + (i % 2) for i in range(n)]
    ds.save_as(tmp_path / "rr2.dcm")
    with pytest.raises(CardioError, match="RRIntervalVector"):
        dicom_io.read_volume(tmp_path / "rr2.dcm")


def test_bad_numpy_inputs_name_the_file(tmp_path, volume):
    bad = volume.astype(np.float32)
    bad[1, 3, 4, 5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(CardioError, match=r"nan\.npy.*NaN"):
        dicom_io.read_volume(tmp_path / "nan.npy")
    np.save(tmp_path / "zero.npy", np.zeros_like(volume))
    with pytest.raises(CardioError, match=r"zero\.npy.*zero"):
        dicom_io.read_volume(tmp_path / "zero.npy")
    np.save(tmp_path / "single.npy", volume[:1])
    with pytest.raises(CardioError, match=r"single\.npy.*one gate"):
        dicom_io.read_volume(tmp_path / "single.npy")
    np.save(tmp_path / "flat.npy", volume[0])
    with pytest.raises(CardioError, match=r"flat\.npy.*shape"):
        dicom_io.read_volume(tmp_path / "flat.npy")
    np.save(tmp_path / "ragged.npy", np.array([volume[0], volume[1][:-1]], dtype=object), allow_pickle=True)
    with pytest.raises(CardioError, match=r"ragged\.npy"):
        dicom_io.read_volume(tmp_path / "ragged.npy")
    (tmp_path / "junk.dcm").write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(CardioError, match=r"junk\.dcm"):
        dicom_io.read_volume(tmp_path / "junk.dcm")
    np.save(tmp_path / "pnan.npy", np.full((32, 64), np.nan))
    with pytest.raises(CardioError, match=r"pnan\.npy.*NaN"):
        dicom_io.read_polar_map(tmp_path / "pnan.npy")
    with pytest.raises(CardioError, match="0..65535"):
        dicom_io.write_gated_dicom(tmp_path / "big.dcm", volume.astype(np.float32) * 1000)


@pytest.mark.skipif(not REAL_NM.is_file(), reason=f"real NM DICOM not found at {REAL_NM} (set CARDIO_DATA)")
def test_real_nm_file_loads_as_a_non_gated_stack():
    vol = dicom_io.read_volume(REAL_NM)
    assert not vol.gated and vol.data.shape == (1, 13, 64, 64)
    assert vol.data.max() == 141 and vol.data.min() == 0
    assert vol.meta["modality"] == "NM" and vol.meta["frame_increment_pointer"] == ["SliceVector"]
    assert vol.meta["image_type"][2] == "RECON TOMO" and vol.meta["number_of_time_slots"] == 0
    assert vol.pixel_spacing == pytest.approx((3.11583, 3.11583)) and vol.slice_spacing == pytest.approx(6.231669)
