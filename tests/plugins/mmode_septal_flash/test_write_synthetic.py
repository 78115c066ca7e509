"""cardio_write_synthetic (issue 30): the echo of a multimodal CRT cohort, written for given patients from their
latent drive, read back by the plugin's reader, and run with label=responder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd

from cardio import CardioError
from cardio.data import SYNTHETIC_CRT
from cardio_fusion.synthetic import latent
from cardio_fusion.truth import TRUTH, stated_truth
from cardio_mmode_septal_flash import cohort
from cardio_mmode_septal_flash.settings import SeptalFlashSettings
from cardio_mmode_septal_flash.synthetic import planted_flash
from cardio_testing.harness import (
    checksums,
    drive_patients,
    plugin_config,
    pooled,
    read_metrics,
    run_plugin,
    write_modality,
)

N = 20
SMALL = ["mmode_septal_flash.synthetic.size=48"]
# One holdout fit of the reference model on the unshifted line, 32 x 32 input, one epoch, nothing after the folds.
RUN = ["label=responder", "mmode_septal_flash.model.variants=[cropped]", "mmode_septal_flash.mmode.offsets=0",
       "mmode_septal_flash.mmode.size=[128,128]", "mmode_septal_flash.model.input_size=32",
       "train.cpu_threads=1", "explain=false", "final_model=false", "stats.n_resamples=100",
       "report.figures=false"]  # the estimates, predictions and report text are read


def _patients(seed: int = 0) -> pd.DataFrame:
    return drive_patients(N, seed)


def _write(patients: pd.DataFrame, dest: Path, seed: int = 3) -> Path:
    return write_modality("mmode_septal_flash", patients, dest, seed, SMALL)


def _files(root: Path) -> dict[str, str]:
    return checksums(root, relative=True)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    patients = _patients()
    return patients, _write(patients, tmp_path_factory.mktemp("crt") / "echo")


def test_the_table_reads_back_with_responder_as_given(written):
    patients, path = written
    assert path.name == "labels.csv" and path.is_file()
    table = cohort.read_labels(path.parent, label="responder")
    assert list(table["patient_id"]) == list(patients["patient_id"])
    assert table["responder"].tolist() == patients["responder"].tolist()
    assert {p.name for p in (path.parent / "sequences").iterdir()} == {f"{p}.npy" for p in patients["patient_id"]}
    assert np.load(table["sequence"].iloc[0]).shape[1:] == (48, 48)
    # the default outcome still reads: septal_flash is then the target, responder an ordinary column
    assert cohort.read_labels(path.parent)["septal_flash"].notna().all()


def test_the_flash_is_monotone_in_the_drive(written):
    patients, path = written
    table = pd.read_csv(path)
    sf = table["septal_flash"].to_numpy()[np.argsort(patients["drive"].to_numpy())]
    assert 0 < sf.sum() < N and (np.diff(sf) >= 0).all()  # no flash below a drive, a flash above it
    assert table["sf_start_ms"].notna().tolist() == (table["septal_flash"] == 1).tolist()
    syn = SeptalFlashSettings.of(plugin_config("mmode_septal_flash")).synthetic
    amplitude = planted_flash(np.linspace(-4, 4, 2001), syn)
    assert (np.diff(amplitude) >= 0).all()  # presence and amplitude rise with the drive
    share = (planted_flash(np.random.default_rng(1).normal(size=20000), syn) > 0).mean()
    assert share == pytest.approx(syn.n_sf / syn.n_patients, abs=0.015)  # the embedded cohort's SF share
    flashed = amplitude[amplitude > 0] / syn.flash_amplitude
    assert flashed.min() >= 1 - syn.flash_spread and flashed.max() <= 1 + syn.flash_spread + 1e-9


def test_same_call_same_bytes_and_responder_reaches_the_echo_only_through_drive(written, tmp_path):
    patients, path = written
    assert _files(_write(patients, tmp_path / "again").parent) == _files(path.parent)
    assert _files(_write(patients, tmp_path / "seed4", seed=4).parent)["sequences/p0001.npy"] != \
        _files(path.parent)["sequences/p0001.npy"]
    flipped = patients.assign(responder=1 - patients["responder"])  # same drive, other outcomes
    other = _files(_write(flipped, tmp_path / "flipped").parent)
    assert {k: v for k, v in other.items() if k != "labels.csv"} == \
        {k: v for k, v in _files(path.parent).items() if k != "labels.csv"}
    with pytest.raises(CardioError, match="not plain file names"):
        _write(patients.assign(patient_id=["../x", *patients["patient_id"][1:]]), tmp_path / "bad")


def test_a_run_with_label_responder_reports_task_responder(written, tmp_path):
    """... and, with the truth.json `cardio synthetic-crt` writes beside the folder, reports the cohort as that
    synthetic cohort: the Cohort part states its truth, Table 1's text points there instead of stating the plugin's
    own synthetic settings (which did not make these sequences)."""
    _, path = written
    folder = shutil.copytree(path.parent, tmp_path / "crt" / "mmode_septal_flash")
    _, truth = latent(N, 0, ["mmode_septal_flash", "other"])
    (folder.parent / TRUTH).write_text(json.dumps({**truth, "missing": {"mmode_septal_flash": 0, "other": 0}}))
    out = run_plugin("mmode_septal_flash", tmp_path / "run", sets=[*RUN, f"cohort.dir={folder}"],
                     cache_dir=tmp_path / "cache")
    metrics = read_metrics(out)
    [auc] = pooled(metrics, "auc")
    assert auc["task"] == "responder" and auc["model"] == "densenet121-cropped" and 0 <= auc["estimate"] <= 1
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["task"]) == {"responder"} and len(pred) == auc["n"]
    assert set(pred["y_true"]) == {0, 1} and pred["y_score"].between(0, 1).all()
    report = (out / "report.md").read_text()
    table1 = report.split("## Septal flash: Table 1")[1].split("\n## ")[0]
    assert SYNTHETIC_CRT in table1 and "Synthetic truth:" not in report
    stated = stated_truth(folder)
    assert stated is not None and stated in report.split("## Cohort")[1].split("\n## ")[0]
