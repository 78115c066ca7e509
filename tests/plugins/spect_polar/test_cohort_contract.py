"""The cohort contract (issue 22) on a generated cohort: the plugin's synthetic writer (30 patients, 16 slices of
32 x 32 px), a follow-up scan for 5 patients (35 scans), the label missing for 11 patients (13 scans, 37%), and
one `../` path.

One small run (20 AE iterations, 3 folds, 50 permutations, no explain figures) serves the tests that need it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_spect_polar")

import pandas as pd

from cardio import Cache
from cardio.cohort import CohortProblems
from cardio.testing import (
    check_refused,
    cpu_context,
    invoke,
    plugin_config,
    pooled,
    read_metrics,
    run_plugin,
    split_overlaps,
    target_counts,
)
from cardio_spect_polar import cohort
from cardio_spect_polar.dicom_io import write_gated_dicom
from cardio_spect_polar.phantom import make_phantom

LABEL = cohort.LABEL
N_PATIENTS, FOLLOW_UP, SLICES, SIZE = 30, 5, 16, 32
# Patients without a known response: 2 of them with a follow-up scan, so 13 of 35 scans (37%) lack the label.
MISSING = ("P0002", "P0004", "P0007", "P0009", "P0012", "P0015", "P0018", "P0021", "P0024", "P0027", "P0030")
BAD_ROW = 3  # the follow-up scan of P0002: CSV line 5
RUN = ["spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
       "spect_polar.autoencoder.iterations=20", "spect_polar.autoencoder.batch_size=null",
       "spect_polar.analysis.permutations=50", "spect_polar.in_sample_analysis=true",
       "cv.folds=3", "stats.n_resamples=200", "explain=false"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The cohort folder, its table well formed: patients P0001-P0005 have a baseline and a follow-up scan."""
    tmp = tmp_path_factory.mktemp("contract")
    src = cohort.write_default_cohort(Cache(tmp / "cache"), n_patients=N_PATIENTS, seed=2, slices=SLICES, size=SIZE,
                                      progress=lambda it, **kw: it)
    root = shutil.copytree(src, tmp / "cohort")
    base = pd.read_csv(root / "clinical.csv", dtype=str, keep_default_na=False)
    base.insert(1, "study_id", base["patient_id"])
    base.insert(2, "record_id", base["patient_id"])
    follow = base.iloc[:FOLLOW_UP].copy()
    follow["study_id"] = follow["record_id"] = follow["patient_id"] + "-fu"
    for i, row in enumerate(follow.itertuples()):
        ph = make_phantom(100 + i, pattern="focal", slices=SLICES, size=SIZE, pixel_mm=240 / SIZE,
                          slice_mm=144 / SLICES, edv_ml=float(row.edv), lvef=float(row.lvef))
        write_gated_dicom(root / "volumes" / f"{row.record_id}.dcm", ph.volume, pixel_spacing_mm=240 / SIZE,
                          slice_spacing_mm=144 / SLICES)
    # each follow-up row after its baseline row
    table = pd.concat([base, follow]).sort_values(["patient_id", "record_id"], kind="stable").reset_index(drop=True)
    table.loc[table["patient_id"].isin(MISSING), [LABEL, "lvesv_reduction_pct"]] = ""  # response not known
    table["file"] = ""  # empty: the default, volumes/<record_id>.dcm
    table.to_csv(root / "clinical.csv", index=False)
    return root


@pytest.fixture(scope="module")
def run(generated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contract-run")
    return run_plugin("spect_polar", out / "run", sets=[*RUN, f"cohort.dir={generated}"], cache_dir=out / "cache")


def _load(folder: Path, tmp_path: Path) -> pd.DataFrame:
    """The cohort as a run loads it (its config, cardio_load's code)."""
    config = plugin_config("spect_polar", [*RUN, f"cohort.dir={folder}"])
    return cohort.load(config, cpu_context(tmp_path / "ctx")).table


def test_a_path_out_of_the_folder_is_one_listed_problem(generated, tmp_path):
    d = shutil.copytree(generated, tmp_path / "cohort")
    t = pd.read_csv(d / "clinical.csv", dtype=str, keep_default_na=False)
    assert t.loc[BAD_ROW, "record_id"] == "P0002-fu"
    t.loc[BAD_ROW, "file"] = "../x.dcm"
    t.to_csv(d / "clinical.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        _load(d, tmp_path)
    [problem] = e.value.problems  # the rest of the table (missing labels, two scans a patient) is fine
    assert (problem.line, problem.column) == (BAD_ROW + 2, "file"), problem
    assert "'../x.dcm'" in str(problem) and "cohort.allow_outside_paths" in str(problem)
    t.loc[BAD_ROW, "file"] = "volumes/P0002-fu.dcm"  # the row fixed
    t.to_csv(d / "clinical.csv", index=False)
    assert _load(d, tmp_path)["file"].iloc[BAD_ROW] == str(d / "volumes" / "P0002-fu.dcm")


def test_the_table_holds_scans_of_patients_and_missing_labels(generated, tmp_path):
    table = _load(generated, tmp_path)
    assert len(table) == N_PATIENTS + FOLLOW_UP and table["patient_id"].nunique() == N_PATIENTS
    assert table.groupby("patient_id")["study_id"].nunique().max() == 2  # baseline and follow-up: two studies
    missing = table[LABEL].isna()
    assert 0.30 <= missing.mean() <= 0.40 and set(table[LABEL].dropna()) == {0.0, 1.0}
    assert set(table.loc[missing, "patient_id"]) == set(MISSING)
    assert table["file"].map(lambda p: Path(p).is_relative_to(generated)).all()


def test_the_run_finishes_and_reports_each_target_on_its_labelled_patients(run):
    labelled = N_PATIENTS - len(MISSING)
    predicted = pd.read_csv(run / "predictions.csv")
    for _, part in predicted.groupby("model"):  # level "patient": one prediction per patient, its scans averaged
        assert len(part) == N_PATIENTS and part["patient_id"].is_unique
        assert part["y_true"].notna().sum() == labelled
    metrics = read_metrics(run)
    aucs = pooled(metrics, "auc", task=LABEL)
    assert {e["model"] for e in aucs} == {"clinical+ae", "clinical+psd", "clinical+pbw"}
    # The core computes each task's metrics on its non-missing rows, at the plugin's level (patients).
    assert [e["n"] for e in aucs] == [labelled] * 3, aucs
    assert target_counts(metrics) == {LABEL: labelled}
    # out of fold per labelled patient (the core's, above), the plugin's in-sample per labelled scan (19 + 3 follow-ups)
    own = {e["metric"]: e["n"] for e in metrics["estimates"] if "sample AUC" in e["metric"]}
    assert own["in-sample AUC clinical+ae"] == labelled + 3
    report = (run / "report.md").read_text()
    assert "35 scans of 30 patients were phase-analysed; 11 patient(s) without a known response" in report


def test_no_patient_is_in_two_parts_of_the_split(generated, tmp_path):
    table = _load(generated, tmp_path)
    cv = plugin_config("spect_polar", RUN)["cv"]
    assert cv["method"] == "kfold" and cv["folds"] == 3
    assert split_overlaps(table, cv, LABEL, seeds=range(20)) == []


@pytest.mark.parametrize("old,new", [("data.dir=/somewhere", "use cohort.dir"),
                                     ("data.allow_outside_paths=true", "use cohort.allow_outside_paths"),
                                     ("data.n_patients=30", "use spect_polar.synthetic.n_patients"),
                                     ("autoencoder.iterations=5", "use spect_polar.autoencoder.iterations")])
def test_an_old_key_is_one_line_naming_the_new_one(tmp_path, old, new):
    result = invoke("run", "--plugin", "spect_polar", "--set", old, "--out", str(tmp_path / "run"))
    check_refused(result, new)
    assert not (tmp_path / "run").exists()


def test_an_old_key_in_a_config_file_is_one_line(tmp_path):
    config = tmp_path / "old.yaml"
    config.write_text("data:\n  clinical_csv: my.csv\nphase:\n  rings: 16\n")
    result = invoke("run", "--plugin", "spect_polar", "--config", str(config), "--out", str(tmp_path / "run"))
    check_refused(result, "has moved: use spect_polar.")
    assert str(config) in result.stderr.strip().splitlines()[-1]
