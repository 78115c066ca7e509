"""cardio_write_synthetic (issue 41): the echo of a multimodal CRT cohort, written for given patients from their latent
drive through the plugin manager, read back by the plugin's reader with a responder target, the planted effect
stated; the same call writes the same bytes and responder reaches the clips only through the drive."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cardio_echo_cmr")

import numpy as np
import pandas as pd

from cardio import CardioError
from cardio_echo_cmr import cohort
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.synthetic import planted_wma
from cardio_imaging.cine import read_cine
from cardio_testing.harness import checksums, drive_patients, plugin_config, write_modality

N = 12
SMALL = ["echo_cmr.synthetic.n_frames=8", "echo_cmr.synthetic.height=32", "echo_cmr.synthetic.width=40",
         "echo_cmr.views=[A4C, PLAX]"]
RESPONDER = ["label=responder", "echo_cmr.targets=[{target: responder, kind: binary, level: study}]",
             "echo_cmr.views=[A4C, PLAX]"]


def _write(patients: pd.DataFrame, dest: Path, seed: int = 3) -> Path:
    return write_modality("echo_cmr", patients, dest, seed, SMALL)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    patients = drive_patients(N, 0)
    return patients, _write(patients, tmp_path_factory.mktemp("crt") / "echo")


def test_reads_back_with_responder_as_given_and_the_cmr_targets_still_read(written):
    patients, path = written
    assert path.name == "labels.csv"
    cfg = EchoSettings.of(plugin_config("echo_cmr", RESPONDER))
    table = cohort.read_cohort(path.parent, cfg.thresholds, s=cfg)
    assert list(table["patient_id"]) == list(patients["patient_id"])
    assert table["responder"].tolist() == patients["responder"].tolist()
    assert all(len(v) == 1 for v in table["video_A4C"]) and all(len(v) == 1 for v in table["video_PLAX"])
    frames = read_cine(table["video_A4C"].iloc[0][0]).frames
    assert frames.shape == (8, 32, 40)
    default = EchoSettings.of(plugin_config("echo_cmr", ["echo_cmr.views=[A4C, PLAX]"]))
    assert cohort.read_cohort(path.parent, default.thresholds, s=default)["wma"].notna().all()


def test_wma_is_planted_from_the_drive_alone_and_stated(written):
    patients, path = written
    table = pd.read_csv(path).drop_duplicates("patient_id")
    drive = patients["drive"].to_numpy()
    wma = table["wma_global"].to_numpy()[np.argsort(drive)]
    assert 0 < wma.sum() < N and (np.diff(wma) <= 0).all()  # WMA below a drive, none above it: monotone
    truth = plugin_config("echo_cmr")["echo_cmr"]["synthetic"]["truth"]
    assert planted_wma(np.random.default_rng(1).normal(size=20000), truth).mean() == \
        pytest.approx(truth["wma_fraction"], abs=0.015)  # the embedded cohort's WMA share
    stated = json.loads((path.parent / "truth.json").read_text())
    assert stated["wma_patients"] == wma.sum() and "drive lies below" in stated["planted"]


def test_same_call_same_bytes_and_responder_reaches_the_clips_only_through_the_drive(written, tmp_path):
    patients, path = written
    files = checksums(path.parent, relative=True)
    assert checksums(_write(patients, tmp_path / "again").parent, relative=True) == files
    other = checksums(_write(patients, tmp_path / "seed4", seed=4).parent, relative=True)
    assert other["videos/p0001_A4C.dcm"] != files["videos/p0001_A4C.dcm"]
    flipped = patients.assign(responder=1 - patients["responder"])  # same drive, other outcomes
    clips = checksums(_write(flipped, tmp_path / "flipped").parent, relative=True)
    assert {k: v for k, v in clips.items() if k != "labels.csv"} == {k: v for k, v in files.items()
                                                                    if k != "labels.csv"}
    with pytest.raises(CardioError, match="not plain file names"):
        _write(patients.assign(patient_id=["../x", *patients["patient_id"][1:]]), tmp_path / "bad")
