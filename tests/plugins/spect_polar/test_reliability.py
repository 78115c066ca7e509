"""Bad SPECT inputs through the real CLI: one error line naming the file, exit 2, the cohort folder unchanged."""
from __future__ import annotations

import logging
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

pytest.importorskip("cardio_spect_polar")
from cardio import Cache, CardioError
from cardio.data.cohort import CohortProblems
from cardio_spect_polar.cohort import load_cohort, write_default_cohort
from cardio_spect_polar.dicom_io import write_gated_dicom
from cardio_spect_polar.phantom import make_phantom
from cardio_testing.harness import check_refused, checksums, invoke


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory) -> Path:
    """A small user-style cohort folder: clinical.csv and volumes/P0001.dcm ..."""
    cache = tmp_path_factory.mktemp("spect_cache")
    folder = write_default_cohort(Cache(cache), n_patients=12, seed=4, gates=8, progress=lambda it, **kw: it,
                                  slices=16, size=32)
    return folder


def _csv(d: Path, edit) -> None:
    table = pd.read_csv(d / "clinical.csv", dtype={"patient_id": str})
    table = edit(table)
    table.to_csv(d / "clinical.csv", index=False)


def _first(t: pd.DataFrame, column: str, value) -> pd.DataFrame:
    return t.assign(**{column: [value] + list(t[column][1:])})


def _with_file_column(d: Path, first: str) -> None:
    def edit(t):
        t["file"] = [f"volumes/{p}.dcm" for p in t["patient_id"]]
        t.loc[0, "file"] = first
        return t
    _csv(d, edit)


def _duplicate_file_row(d: Path) -> None:
    """A file column whose first row's file a second row names too."""
    _with_file_column(d, "volumes/P0001.dcm")
    _csv(d, lambda t: pd.concat([t, t.iloc[:1]]))


def _dicom(d: Path, name: str, change) -> None:
    path = d / "volumes" / name
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():  # invalid values on purpose
        warnings.simplefilter("ignore")
        change(ds)
    ds.save_as(path)


def _patch(d: Path, name: str, tag: int, value: bytes | None = None, vr: bytes | None = None) -> None:
    """Overwrite a top-level element's bytes (explicit VR little endian, 2-byte length): values pydicom won't write."""
    path = d / "volumes" / name
    data = path.read_bytes()
    i = data.index(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
    n = struct.unpack("<H", data[i + 6:i + 8])[0]
    if value is None:
        value = data[i + 8:i + 8 + n]
    value += b" " * (len(value) % 2)
    path.write_bytes(data[:i + 4] + (vr or data[i + 4:i + 6]) + struct.pack("<H", len(value)) + value
                     + data[i + 8 + n:])


def _volume(d: Path, name: str, volume) -> None:
    """Replace a patient's file by another gated volume (a .npy when the name says so)."""
    (d / "volumes" / "P0001.dcm").unlink()
    if name.endswith(".npy"):
        np.save(d / "volumes" / name, volume, allow_pickle=True)
    else:
        write_gated_dicom(d / "volumes" / name, volume)


def _not_gated(ds) -> None:
    """A reconstructed but non-gated volume (RECON TOMO): the frames are slices, indexed by the Slice Vector only."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.FrameIncrementPointer = [0x00540080]
    ds.SliceVector = list(range(1, int(ds.NumberOfFrames) + 1))
    ds.NumberOfSlices = int(ds.NumberOfFrames)
    for keyword in ("TimeSlotVector", "RRIntervalVector", "NumberOfTimeSlots", "NumberOfRRIntervals"):
        delattr(ds, keyword)


def _nan_volume():
    volume = make_phantom(1, slices=16, size=32).volume.astype(np.float32)
    volume[0, 3, 10, 10] = np.nan
    return volume


PHANTOM = make_phantom(1, slices=16, size=32).volume

# (id, corrupt(cohort folder), what the one error line must name)
CASES = [
    # paths named in the clinical CSV
    ("file-parent", lambda d: _with_file_column(d, "../elsewhere/P0001.dcm"), "outside the cohort folder"),
    ("file-absolute", lambda d: _with_file_column(d, "/etc/hostname"), "outside the cohort folder"),
    ("file-missing", lambda d: _with_file_column(d, "volumes/gone.dcm"), "clinical.csv"),
    # damaged DICOM files
    ("dicom-300-bytes", lambda d: (d / "volumes" / "P0002.dcm").write_bytes((d / "volumes" / "P0002.dcm")
                                                                          .read_bytes()[:300]), "truncated"),
    ("dicom-cut-in-pixels", lambda d: (d / "volumes" / "P0002.dcm").write_bytes((d / "volumes" / "P0002.dcm")
                                                                              .read_bytes()[:60000]), "P0002.dcm"),
    ("dicom-empty", lambda d: (d / "volumes" / "P0002.dcm").write_bytes(b""), "P0002.dcm"),
    ("dicom-not-dicom", lambda d: (d / "volumes" / "P0006.dcm").write_text("hello"), "P0006.dcm"),
    ("dicom-unknown-vr", lambda d: _patch(d, "P0002.dcm", 0x00180088, vr=b"\x44\xef"), "damaged or truncated"),
    ("dicom-frames-0", lambda d: _dicom(d, "P0003.dcm", lambda ds: setattr(ds, "NumberOfFrames", 0)),
     "NumberOfFrames"),
    ("dicom-frames-text", lambda d: _patch(d, "P0003.dcm", 0x00280008, b"abc"), "NumberOfFrames"),
    ("dicom-frames-too-few", lambda d: _dicom(d, "P0003.dcm", lambda ds: setattr(ds, "NumberOfFrames", 7)),
     "P0003.dcm"),
    ("dicom-no-pixels", lambda d: _dicom(d, "P0004.dcm", lambda ds: delattr(ds, "PixelData")), "no pixel data"),
    ("dicom-zero-counts", lambda d: _dicom(d, "P0004.dcm", lambda ds: setattr(ds, "PixelData", bytes(
        len(ds.PixelData)))), "P0004.dcm"),
    ("dicom-pixel-spacing-text", lambda d: _patch(d, "P0004.dcm", 0x00280030, b"a\\b"), "PixelSpacing"),
    ("dicom-pixel-spacing-one-value", lambda d: _patch(d, "P0004.dcm", 0x00280030, b"5"), "PixelSpacing"),
    ("dicom-rescale-nan", lambda d: _dicom(d, "P0004.dcm", lambda ds: setattr(ds, "RescaleSlope", "NaN")),
     "RescaleSlope"),
    ("dicom-frame-pointer-not-a-vector", lambda d: _dicom(d, "P0004.dcm", lambda ds: setattr(
        ds, "FrameIncrementPointer", [0x00100010])), "Frame Increment Pointer"),
    ("dicom-ct", lambda d: _dicom(d, "P0005.dcm", lambda ds: setattr(ds, "Modality", "CT")), "must be NM"),
    # not a gated short-axis volume, or the wrong gates
    ("dicom-not-gated", lambda d: _dicom(d, "P0005.dcm", _not_gated), "not gated"),
    ("dicom-one-time-slot", lambda d: _dicom(d, "P0005.dcm", lambda ds: setattr(ds, "NumberOfTimeSlots", 1)),
     "P0005.dcm"),
    ("dicom-3-gates", lambda d: _volume(d, "P0001.dcm", PHANTOM[:3]), "at least 8 gates"),
    ("npy-one-gate", lambda d: _volume(d, "P0001.npy", PHANTOM[:1]), "one gate"),
    ("npy-nan", lambda d: _volume(d, "P0001.npy", _nan_volume()), "NaN"),
    ("npy-object", lambda d: _volume(d, "P0001.npy", np.array([PHANTOM, "x"], dtype=object)), "P0001.npy"),
    ("npy-3d", lambda d: _volume(d, "P0001.npy", PHANTOM[0]), "P0001.npy"),
    ("polar-map-nan", lambda d: _volume(d, "P0001.npy", np.full((16, 32), np.nan)), "NaN"),
    ("polar-map-other-grid", lambda d: _volume(d, "P0001.npy", np.ones((8, 8))), "P0001.npy"),
    # the clinical CSV
    ("label-2", lambda d: _csv(d, lambda t: _first(t, "responder", 2)), "must be 0/1"),
    ("label-text", lambda d: _csv(d, lambda t: _first(t, "responder", "maybe")), "must be 0/1"),
    ("sex-letter", lambda d: _csv(d, lambda t: _first(t, "sex", "M")), "'sex': must be 0/1"),
    # the label and what derives it by the papers' rule (cardio_response.volumetric: the ESV reduction, the
    # follow-up ESV)
    ("label-missing", lambda d: _csv(d, lambda t: t.drop(columns=["responder", "lvesv_reduction_pct",
                                                                    "esv_followup"], errors="ignore")), "responder"),
    ("covariate-missing", lambda d: _csv(d, lambda t: t.drop(columns=["lvef"])), "lvef"),
    ("covariate-text", lambda d: _csv(d, lambda t: _first(t, "age", "old")), "age"),
    ("patient-id-empty", lambda d: _csv(d, lambda t: _first(t, "patient_id", None)), "patient_id"),
    ("patient-without-volume", lambda d: (d / "volumes" / "P0007.dcm").unlink(), "line 8, column 'file'"),
    ("csv-header-only", lambda d: _csv(d, lambda t: t.iloc[:0]), "no rows"),
    ("csv-empty-file", lambda d: (d / "clinical.csv").write_text(""), "clinical.csv"),
    ("csv-binary", lambda d: (d / "clinical.csv").write_bytes(b"\xff\xfe\x00\x01garbage"), "clinical.csv"),
    ("csv-missing", lambda d: (d / "clinical.csv").unlink(), "clinical.csv"),
    # a repeated row is a second scan of that patient (record P0001#2), whose file is not there
    ("csv-duplicate-patient", lambda d: _csv(d, lambda t: pd.concat([t, t.iloc[:1]])), "P0001#2"),
    ("csv-duplicate-file", _duplicate_file_row, "another row names too"),
    # a cohort too one-sided for the response models of a training fold (was a StatsError traceback)
    ("two-responders", lambda d: _csv(d, lambda t: t.assign(responder=[1, 1] + [0] * (len(t) - 2)).drop(
        columns=["lvesv_reduction_pct", "esv_followup"], errors="ignore")), "cv.folds"),
]


@pytest.mark.parametrize("case_id,corrupt,names", CASES, ids=[c[0] for c in CASES])
def test_bad_spect_input_is_one_line_and_changes_nothing(good_cohort, tmp_path, case_id, corrupt, names):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    corrupt(d)
    before = checksums(d)
    with warnings.catch_warnings(record=True) as caught:  # a Python warning would reach a user's stderr
        warnings.simplefilter("always")
        result = invoke("run", "--plugin", "spect_polar", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}",
                        "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2",
                        "--set", "spect_polar.phase.rings=16", "--set", "spect_polar.phase.sectors=32",
                        "--set", "spect_polar.autoencoder.iterations=2")
    check_refused(result, names)
    # ResourceWarning is silent by default (and the core's failed run leaves its run.log handler open)
    assert not [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]
    assert checksums(d) == before


def test_outside_paths_only_with_the_switch(good_cohort, tmp_path, caplog):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    shutil.copytree(d / "volumes", tmp_path / "elsewhere")
    _with_file_column(d, "../elsewhere/P0001.dcm")
    with pytest.raises(CohortProblems, match="outside the cohort folder; set cohort.allow_outside_paths") as err:
        load_cohort(d)
    assert [(p.line, p.column) for p in err.value.problems] == [(2, "file")]  # the rest of the table is fine
    with caplog.at_level(logging.WARNING, logger="cardio.test"):
        table = load_cohort(d, allow_outside=True, log=logging.getLogger("cardio.test"))
    assert table.loc[0, "file"] == str(tmp_path / "elsewhere" / "P0001.dcm") and len(table) == 12
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [  # each outside file read is a warning, nothing else is (the file-content count is info)
        f"reading a file outside the cohort folder: {tmp_path / 'elsewhere' / 'P0001.dcm'}"]


def test_a_symlink_out_of_the_folder_is_an_outside_path(good_cohort, tmp_path):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    shutil.copytree(d / "volumes", tmp_path / "elsewhere")
    (d / "volumes" / "P0003.dcm").unlink()
    (d / "volumes" / "P0003.dcm").symlink_to(tmp_path / "elsewhere" / "P0003.dcm")
    with pytest.raises(CohortProblems, match="line 4, column 'file': names .*outside the cohort folder"):
        load_cohort(d)


@pytest.mark.parametrize("outside", ["../elsewhere/P0001.dcm", "ABSOLUTE"], ids=["parent", "absolute"])
def test_outside_paths_refused_by_default_accepted_with_the_set_switch(good_cohort, tmp_path, caplog, outside):
    """What `--set cohort.allow_outside_paths=true` does: the config a run resolves, given to the plugin's loader."""
    from cardio_spect_polar.cohort import load
    from cardio_testing.harness import context, plugin_config

    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    shutil.copytree(d / "volumes", tmp_path / "elsewhere")
    outside = str(tmp_path / "elsewhere" / "P0001.dcm") if outside == "ABSOLUTE" else outside
    _with_file_column(d, outside)
    before = checksums(d)
    sets = [f"cohort.dir={d}"]
    ctx = context(tmp_path / "run")
    with pytest.raises(CardioError, match="outside the cohort folder; set cohort.allow_outside_paths: true"):
        load(plugin_config("spect_polar", sets), ctx)
    with caplog.at_level(logging.WARNING, logger=ctx.log.name):
        cohort = load(plugin_config("spect_polar", [*sets, "cohort.allow_outside_paths=true"]), ctx)
    assert len(cohort) == 12 and cohort.table.loc[0, "file"] == str(tmp_path / "elsewhere" / "P0001.dcm")
    assert cohort.array(cohort.table.loc[0, "record_id"]) is not None
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"reading a file outside the cohort folder: {tmp_path / 'elsewhere' / 'P0001.dcm'}"]
    assert checksums(d) == before
