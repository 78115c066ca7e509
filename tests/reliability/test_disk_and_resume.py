"""Round three of the bad-input corpus for the core (issue 27): full disks and file-size limits whatever the library's
exception, a resumed run's edited config, half-made run folders, damaged cines."""
from __future__ import annotations

import json
import resource
import traceback

import numpy as np
import pytest

from cardio import CardioError
from cardio.data import cache
from cardio_imaging.cine import read_cine, write_dicom_cine
from cardio_testing.harness import check_refused


def test_a_full_disk_is_recognised_whatever_the_library_raises(tmp_path, monkeypatch):
    """pydicom re-raises without errno, NumPy says "N requested and M written": the disk is named all the same."""
    class Usage:
        free = 1000

    monkeypatch.setattr(cache.shutil, "disk_usage", lambda _: Usage)

    def build(tmp):
        raise OSError("204800 requested and 24448 written")

    with pytest.raises(CardioError, match=r"no space left on device while writing .*spect_polar/"):
        cache.Cache(tmp_path).get("spect_polar", {"a": 1}, build, suffix=".npy")
    assert not list((tmp_path / "spect_polar").glob("*.tmp*"))  # nothing half-written is left


def test_file_size_limit_names_the_file(tmp_path, cardio_subprocess):
    """ulimit -f: torch.save's RuntimeError and a figure's write are one line naming the file; run.json says failed."""
    def small():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    # the first write over 100 kB is a figure of evaluate's: two folds and no final model get there sooner
    proc = cardio_subprocess("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "cv.folds=2",
                             "--set", "final_model=false", preexec_fn=small)
    check_refused(proc, "file-size limit")
    assert "while writing r/" in proc.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"
    # torch.save under the limit in this process (Python ignores SIGXFSZ: the write fails with EFBIG), then the
    # limit back as it was; the error as a user sees it uncaught: one line, none of torch's own text
    import torch

    from cardio.engine import save_atomic

    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, limits[1]))
    try:
        with pytest.raises(CardioError) as caught:
            save_atomic({"w": torch.zeros(100_000)}, tmp_path / "ckpt.pt")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    shown = "".join(traceback.format_exception(caught.value))
    assert f"file-size limit reached (ulimit -f: 50000 bytes) while writing {tmp_path / 'ckpt.pt'}" in shown
    assert "inline_container" not in shown
    assert not (tmp_path / "ckpt.pt").exists()


def test_resume_rechecks_an_edited_config(cardio_cli, tmp_path):
    proc = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "subgroups=[nope]")
    assert proc.returncode == 2
    text = (tmp_path / "r" / "config.yaml").read_text().replace("folds: 5", "folds: 1")
    (tmp_path / "r" / "config.yaml").write_text(text)
    check_refused(cardio_cli("run", "--plugin", "toy", "--resume", "r"), "cv.folds = 1 is out of range")


def test_a_run_stopped_by_its_input_leaves_no_half_made_folder(cardio_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", f"cohort.dir={tmp_path / 'empty'}")
    check_refused(proc, "cohort table not found")
    assert not (tmp_path / "r").exists()  # the next run with the same --out is not told to --resume
    again = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", f"cohort.dir={tmp_path / 'empty'}")
    assert "--resume" not in again.stderr


def test_damaged_cines_are_one_line(tmp_path):
    frames = np.random.default_rng(0).random((6, 16, 16)).astype(np.float32)
    frames[3, 2, 2] = np.nan
    np.save(tmp_path / "nan.npy", frames)
    with pytest.raises(CardioError, match=r"nan.npy: 1 frame\(s\) hold NaN or infinite values \(frames \[3\]\)"):
        read_cine(tmp_path / "nan.npy")
    path = write_dicom_cine(tmp_path / "zero.dcm", np.zeros((3, 8, 8), np.uint8), 20.0)
    import pydicom

    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 0
    ds.save_as(path)
    with pytest.raises(CardioError, match="NumberOfFrames is 0: the file declares no frame"):
        read_cine(path)
