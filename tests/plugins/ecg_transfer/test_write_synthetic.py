"""ecg_transfer's part of a multimodal synthetic cohort (hook cardio_write_synthetic, issue 30): called through the
plugin manager, it writes a cohort that cardio validate passes, keeps the patients' ids and responder, plants the
drive in the waveform's mid-QRS notch (monotone, and visible in the written signal), draws nothing else from
response, and writes the same bytes for the same call."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import pandas as pd
import wfdb
from scipy.signal import butter, sosfiltfilt
from scipy.stats import spearmanr

from cardio import CardioError, plugins
from cardio_ecg_transfer.settings import EcgSettings
from cardio_testing.harness import checksums, invoke, plugin_config

N = 30
SETS = ("ecg_transfer.synthetic.seconds=4",)


def _patients(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drive = rng.normal(size=N)
    return pd.DataFrame({"patient_id": [f"p{i + 1:04d}" for i in range(N)],
                         "responder": (drive + 0.5 * rng.normal(size=N) > 0).astype(int), "drive": drive})


@pytest.fixture(scope="module")
def write():
    pm = plugins.select(plugins.get_plugin_manager(), "ecg_transfer")
    config = plugin_config("ecg_transfer", SETS)

    def call(patients: pd.DataFrame, dest: Path, seed: int = 3) -> Path:
        return pm.hook.cardio_write_synthetic(patients=patients, dest=dest, seed=seed, config=config,
                                              settings=EcgSettings.of(config))
    return call


def _notch_band(path: Path) -> float:
    """The share of the signal in 20-60 Hz, where the notch's sharp edges put their energy."""
    rec = wfdb.rdrecord(str(path))
    x = rec.p_signal[:, 0] - np.median(rec.p_signal[:, 0])
    y = sosfiltfilt(butter(4, [20, 60], "bandpass", fs=rec.fs, output="sos"), x)
    return float(np.percentile(np.abs(y), 99) / np.percentile(np.abs(x), 99))


def test_cohort_validates_and_carries_the_drive(write, tmp_path):
    patients = _patients()
    csv = write(patients, tmp_path / "a")
    assert csv == tmp_path / "a" / "cohort.csv"
    result = invoke("validate", "--plugin", "ecg_transfer", "--set", f"cohort.dir={tmp_path / 'a'}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", *(a for s in SETS for a in ("--set", s)))
    assert result.exit_code == 0, result.stdout + result.stderr
    table = pd.read_csv(csv, dtype={"patient_id": str})
    assert table["patient_id"].tolist() == patients["patient_id"].tolist()
    assert table["responder"].tolist() == patients["responder"].tolist()
    assert spearmanr(table["_notch"], patients["drive"]).statistic == pytest.approx(1.0)
    assert table["_notch"].between(0, 1).all()
    # the planted depth reaches the written waveform
    band = [_notch_band(tmp_path / "a" / e) for e in table["ecg"]]
    assert spearmanr(band, patients["drive"]).statistic > 0.8


def test_same_call_same_bytes_and_nothing_else_from_response(write, tmp_path):
    patients = _patients()
    write(patients, tmp_path / "a")
    write(patients.copy(), tmp_path / "b")
    a, b = checksums(tmp_path / "a"), checksums(tmp_path / "b")
    assert len(a) == 2 * N + 2 and list(a.values()) == list(b.values())  # .hea/.dat per patient, table, manifest
    # other responders and drives change the notch, the responder and its LVESV reduction, no covariate
    flipped = patients.assign(responder=1 - patients["responder"], drive=-patients["drive"])
    other = pd.read_csv(write(flipped, tmp_path / "c"))
    first = pd.read_csv(tmp_path / "a" / "cohort.csv")
    response = ["responder", "lvesv_reduction_pct", "_notch"]
    pd.testing.assert_frame_equal(first.drop(columns=response), other.drop(columns=response))
    assert (other["responder"] == 1 - first["responder"]).all()
    # another seed draws other covariates
    assert not pd.read_csv(write(patients, tmp_path / "d", seed=4))["qrs_ms"].equals(first["qrs_ms"])


def test_bad_patients_are_one_line(write, tmp_path):
    with pytest.raises(CardioError, match="lack column"):
        write(_patients().drop(columns="drive"), tmp_path / "a")
    with pytest.raises(CardioError, match="drive must be a finite number"):
        write(_patients().assign(drive=np.nan), tmp_path / "a")
    with pytest.raises(CardioError, match="responder must be 0, 1 or missing"):
        write(_patients().assign(responder=2), tmp_path / "a")
