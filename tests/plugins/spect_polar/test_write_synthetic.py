"""cardio_write_synthetic (issue 30): the gated SPECT of a multimodal CRT cohort, written for given patients from
their latent drive through the plugin manager, read back by the plugin's reader."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_spect_polar")

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cardio import CardioError, plugins
from cardio_imaging.aha17 import polar_grid
from cardio_spect_polar import cohort
from cardio_spect_polar.phantom import LATERAL_DEG
from cardio_spect_polar.settings import SpectSettings
from cardio_testing.harness import checksums, drive_patients, plugin_config, write_modality

N = 20
SMALL = ["spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32"]


def _patients(seed: int = 0) -> pd.DataFrame:
    return drive_patients(N, seed)


def _write(patients: pd.DataFrame, dest: Path, seed: int = 3) -> Path:
    return write_modality("spect_polar", patients, dest, seed, SMALL)


def _files(root: Path) -> dict[str, str]:
    return checksums(root, relative=True)


def _late_offset(phase_map: np.ndarray) -> float:
    """Angular distance (degrees) from the posterolateral wall of where a phase map is later than its median."""
    _, theta = polar_grid(*phase_map.shape)
    late = np.clip(phase_map - np.median(phase_map), 0, None)
    angle = np.angle((late * np.exp(1j * np.radians(theta))[None, :]).sum())
    return float(np.degrees(abs(np.angle(np.exp(1j * (angle - np.radians(LATERAL_DEG)))))))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    patients = _patients()
    return patients, _write(patients, tmp_path_factory.mktemp("crt") / "spect")


def test_the_table_loads_through_the_plugins_reader_with_responder_as_given(written, ctx):
    patients, path = written
    assert path.name == "clinical.csv" and path.is_file()
    pm = plugins.select(plugins.get_plugin_manager(), "spect_polar")
    config = plugin_config("spect_polar", [*SMALL, f"cohort.dir={path.parent}"])
    loaded = pm.hook.cardio_load(config=config, settings=SpectSettings.of(config), ctx=ctx)
    table = loaded.table
    assert table["patient_id"].tolist() == patients["patient_id"].tolist()
    assert table["responder"].tolist() == patients["responder"].tolist()
    assert set(table["kind"]) == {"volume"} and loaded.label == "responder"
    volume = loaded.loader(table["record_id"].iloc[0])
    assert volume.data.shape == (8, 16, 32, 32)  # gates, slices, size, size from spect_polar.synthetic
    # the outcome column agrees with the label it defines
    assert ((table["lvesv_reduction_pct"] >= 15) == (table["responder"] == 1)).all()


def test_the_late_zone_site_is_monotone_in_the_drive_and_the_images_show_it(written):
    patients, path = written
    truth = pd.read_csv(path.parent / "truth.csv")
    assert truth["patient_id"].tolist() == patients["patient_id"].tolist()
    order = np.argsort(patients["drive"].to_numpy())
    assert (np.diff(truth["late_offset"].to_numpy()[order]) < 0).all()  # higher drive: nearer the lateral wall
    drive = np.linspace(-5, 5, 1001)
    offset = cohort.drive_to_late_offset(drive)
    assert (np.diff(offset) < 0).all() and offset[0] < 180 and offset[-1] > 0
    # the phase analysis of the written DICOMs finds the late zone where the drive put it
    table = cohort.load_cohort(path.parent, cohort.run_schema("responder", []))
    results = cohort.analyze_records(table, 1, progress=lambda it, **k: it, rings=16, sectors=32)
    found = [_late_offset(r.phase_map) for r in results]
    assert spearmanr(found, patients["drive"]).statistic < -0.7


def test_same_call_same_bytes_and_response_reaches_the_spect_only_through_drive(written, tmp_path):
    patients, path = written
    first = _files(path.parent)
    assert _files(_write(patients, tmp_path / "again").parent) == first
    flipped = patients.assign(responder=1 - patients["responder"])  # same drive, other outcomes
    other = _files(_write(flipped, tmp_path / "flipped").parent)
    assert {k: v for k, v in other.items() if k != "clinical.csv"} == \
        {k: v for k, v in first.items() if k != "clinical.csv"}
    a, b = pd.read_csv(path), pd.read_csv(tmp_path / "flipped" / "clinical.csv")
    covariates = list(cohort.COVARIATES)
    assert a[covariates].equals(b[covariates]) and (b["responder"] == 1 - a["responder"]).all()
    with pytest.raises(CardioError, match="plain file names"):
        _write(patients.assign(patient_id=["../x", *patients["patient_id"][1:]]), tmp_path / "bad")
