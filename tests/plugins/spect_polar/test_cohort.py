"""The embedded CRT cohort (written as DICOM, read back) and loading a user's cohort."""
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import Cache, CardioError
from cardio.context import map_processes
from cardio.data.cohort import CohortProblems
from cardio_spect_polar import cohort
from cardio_spect_polar.dicom_io import GatedVolume
from cardio_spect_polar.phantom import make_phantom

quiet = lambda it, **kw: it  # noqa: E731  (no progress bars in tests)


def cohort_dir(root, n_patients, seed):
    """Where the cache keeps the default cohort of these parameters."""
    return Cache(root).path(cohort.CACHE_NAMESPACE, cohort.cohort_params(n_patients, seed),
                            version=cohort.GENERATOR_VERSION)


def test_clinical_table_has_the_paper_columns_and_distributions():
    clin, truth = cohort.simulate_clinical(3000, seed=5)
    assert tuple(clin.columns) == (*cohort.CLINICAL_COLUMNS, "esv_followup", "crt_date", "followup_date")
    again, _ = cohort.simulate_clinical(3000, seed=5)
    pd.testing.assert_frame_equal(clin, again)
    assert clin["patient_id"].is_unique
    assert 0.36 < clin["responder"].mean() < 0.52
    assert clin["age"].mean() == pytest.approx(61.3, abs=1.5)
    assert clin["sex"].mean() == pytest.approx(0.725, abs=0.03)
    assert clin["qrs_ms"].mean() == pytest.approx(157, abs=3) and clin["qrs_ms"].min() >= 120
    assert clin["edv"].mean() == pytest.approx(291, abs=10) and clin["lvef"].max() <= 35
    assert (clin["esv"] < clin["edv"]).all()
    assert set(clin["nyha"]) == {2, 3, 4}
    for col, p in {"cad": 0.245, "ckd": 0.049, "acei_arb": 0.863, "ischemia": 0.235, "smoking": 0.363}.items():
        assert clin[col].mean() == pytest.approx(p, abs=0.04), col


def test_response_depends_on_the_late_zone_site_and_on_the_configured_dyssynchrony_effect():
    from sklearn.metrics import roc_auc_score

    clin, truth = cohort.simulate_clinical(20000, seed=1)
    y = clin["responder"].to_numpy()
    lateral = np.cos(np.radians(truth["late_angle"] - 345.0))
    assert np.corrcoef(lateral, y)[0, 1] > 0.25  # the spatial pattern predicts response ...
    # ... and so does the global magnitude (what PSD sees): spect_polar.synthetic.truth.dyssynchrony_per_sd 0.5
    assert roc_auc_score(y, truth["dyssynchrony"]) > 0.55
    assert np.corrcoef(clin["qrs_ms"], y)[0, 1] > 0.1  # plus clinical effects
    # the outcome-defining column: LVESV reduction >= 15% exactly for responders
    assert ((clin["lvesv_reduction_pct"] >= 15) == (clin["responder"] == 1)).all()
    clin0, truth0 = cohort.simulate_clinical(20000, seed=1, truth={"dyssynchrony_per_sd": 0.0})
    assert roc_auc_score(clin0["responder"], truth0["dyssynchrony"]) == pytest.approx(0.5, abs=0.015)


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("spect_cache")
    return root, cohort.default_cohort(Cache(root), n_patients=10, seed=3, progress=quiet)


def test_default_cohort_is_written_as_dicom_and_read_back(small_cohort):
    root, table = small_cohort
    assert len(table) == 10 and (table["kind"] == "volume").all()
    assert list(table.columns[:3]) == ["patient_id", "study_id", "record_id"]
    assert (table["record_id"] == table["patient_id"]).all()  # one scan per patient
    assert set(cohort.CLINICAL_COLUMNS) <= set(table.columns) and {"file", "kind"} <= set(table.columns)
    vol = cohort.load_record(table["file"][0])
    assert isinstance(vol, GatedVolume) and vol.gated and vol.data.shape == (8, 24, 48, 48)
    assert np.load(table["true_phase_path"][0]).shape == (32, 64)
    folder = cohort_dir(root, 10, 3)
    assert folder.parent.name == "spect_polar" and table["file"][0] == str(folder / "volumes" / "P0001.dcm")
    assert {"clinical.csv", "truth.csv", "params.json"} <= {p.name for p in folder.iterdir()}
    assert not [p for p in root.rglob("*") if ".tmp" in p.name]  # built in a temporary folder, renamed whole
    truth = pd.read_csv(folder / "truth.csv")
    assert "late_angle" in truth and "late_angle" not in table  # the hidden truth stays out of the CSV


def test_default_cohort_is_reused_and_seeded(small_cohort, tmp_path):
    root, table = small_cohort
    before = {p: p.stat().st_mtime_ns for p in cohort_dir(root, 10, 3).rglob("*")}
    again = cohort.default_cohort(Cache(root), n_patients=10, seed=3, progress=quiet)
    pd.testing.assert_frame_equal(table, again)
    after = {p: p.stat().st_mtime_ns for p in cohort_dir(root, 10, 3).rglob("*")}
    assert before == after  # nothing rewritten
    assert cohort_dir(root, 10, 4) != cohort_dir(root, 10, 3)
    with pytest.raises(CardioError, match="8 or 16"):
        cohort.write_default_cohort(Cache(tmp_path), n_patients=10, gates=12)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_phase_analysis_of_the_cohort_recovers_the_true_maps(small_cohort):
    _, table = small_cohort
    results = cohort.analyze_records(table, progress=quiet)
    from cardio_spect_polar.phase import circular_abs_error
    errs = [circular_abs_error(r.phase_map, np.load(p)) for r, p in zip(results, table["true_phase_path"])]
    assert np.median([np.median(e) for e in errs]) < 15  # scarred, low-count walls included
    # featurize's ctx.map: the chunks (of 3 here) read and analysed in worker processes, the same results
    forked = cohort.analyze_records(table, chunk=3, map_items=lambda fn, jobs, desc="": map_processes(
        fn, jobs, quiet, desc, workers=2))
    assert len(forked) == len(results)
    for a, b in zip(results, forked):
        np.testing.assert_array_equal(a.phase_map, b.phase_map)
        assert (a.psd, a.pbw, a.source) == (b.psd, b.pbw, b.source)


@pytest.fixture()
def user_folder(tmp_path):
    """A cohort folder: clinical.csv and volumes/<patient id>.<ext> (two .npy volumes, one .csv polar map)."""
    root = tmp_path / "study"
    (root / "volumes").mkdir(parents=True)
    np.save(root / "volumes" / "A1.npy", make_phantom(1).volume)
    np.save(root / "volumes" / "A2.npy", make_phantom(2).volume)
    np.savetxt(root / "volumes" / "A3.csv", make_phantom(3, noise=False).true_phase, delimiter=",")
    pd.DataFrame({"patient_id": ["A1", "A2", "A3"], "responder": [1, 0, 1], "qrs_ms": [150, 160, 170],
                  "lvef": [25, 30, 20]}).to_csv(root / "clinical.csv", index=False)
    return root


def test_user_cohort_of_npy_volumes_and_polar_maps(user_folder):
    table = cohort.load_cohort(user_folder, cohort.run_schema("responder", ["qrs_ms", "lvef"]))
    assert table["kind"].tolist() == ["volume", "volume", "polar"]
    assert table["qrs_ms"].tolist() == [150.0, 160.0, 170.0] and table["responder"].tolist() == [1.0, 0.0, 1.0]
    results = cohort.analyze_records(table, progress=quiet)
    assert all(r.phase_map.shape == (32, 64) for r in results)
    assert np.isnan(results[2].amplitude_map).all() and results[0].perfusion_map is not None


def test_user_cohort_with_a_file_column_and_two_scans_of_one_patient(user_folder):
    pd.DataFrame({"patient_id": ["x", "x", "y"], "study_id": ["x-base", "x-follow", "y"],
                  "file": ["volumes/A1.npy", "volumes/A2.npy", "volumes/A3.csv"], "responder": [0, 0, None]}
                 ).to_csv(user_folder / "listed.csv", index=False)
    table = cohort.load_cohort(user_folder, table="listed.csv")
    assert table["patient_id"].tolist() == ["x", "x", "y"] and table["kind"].tolist() == ["volume", "volume", "polar"]
    assert table["record_id"].tolist() == ["x-base", "x-follow", "y"]  # a record per scan, one patient
    assert table["file"].tolist() == [str(user_folder / "volumes" / f) for f in ("A1.npy", "A2.npy", "A3.csv")]
    assert table["responder"].isna().tolist() == [False, False, True]  # an empty label is missing, not a problem
    assert cohort.SCHEMA.level == "patient" and cohort.SCHEMA.aggregate == "mean"
    pd.DataFrame({"patient_id": ["x"], "file": ["gone.npy"], "responder": [0]}).to_csv(user_folder / "listed.csv",
                                                                                        index=False)
    with pytest.raises(CohortProblems, match=r"listed\.csv: line 2, column 'file': names gone\.npy"):
        cohort.load_cohort(user_folder, table="listed.csv")


def test_every_problem_of_the_table_is_listed_at_once(user_folder):
    """Each bad cell is one problem naming the line and the column: a label 2, sex M (sex is 1/0), a text
    covariate, an empty covariate the config names, a text file in place of a DICOM, a scan without a file."""
    (user_folder / "volumes" / "A4.dcm").write_text("not a DICOM file")
    pd.DataFrame({"patient_id": ["A1", "A2", "A3", "A4", "A5"], "responder": [2, 0, 1, 1, 0],
                  "sex": ["1", "M", "0", "1", "0"], "qrs_ms": ["150", "160", "wide", "170", None],
                  "lvef": [25, 30, 20, 22, 28]}).to_csv(user_folder / "clinical.csv", index=False)
    with pytest.raises(CohortProblems) as err:
        cohort.load_cohort(user_folder, cohort.run_schema("responder", ["sex", "qrs_ms", "lvef"]))
    found = {(p.line, p.column) for p in err.value.problems}
    assert found == {(2, "responder"), (3, "sex"), (4, "qrs_ms"), (6, "qrs_ms"), (6, "file"), (5, "file")}, \
        [str(p) for p in err.value.problems]
    text = {(p.line, p.column): p.message for p in err.value.problems}
    assert "'M'" in text[(3, "sex")] and "not a DICOM file" in text[(5, "file")] and "A4.dcm" in text[(5, "file")]
    assert "\n" not in str(err.value) and "(and 5 more problem(s)" in str(err.value)


def test_missing_columns_and_folders_are_one_line(user_folder, tmp_path):
    with pytest.raises(CohortProblems, match=r"clinical\.csv: lacks column\(s\) \['nyha'\]"):
        cohort.load_cohort(user_folder, cohort.run_schema("responder", ["qrs_ms", "nyha"]))
    # a label column the table lacks reads as unlabelled (a cohort to predict); a run's checks then name it
    assert cohort.load_cohort(user_folder, cohort.run_schema("crt_response", []))["crt_response"].isna().all()
    with pytest.raises(CardioError, match="does not exist"):
        cohort.load_cohort(tmp_path / "nowhere")


def test_run_schema_follows_the_config():
    schema = cohort.run_schema("crt_response", ["age", "bnp"], need_esv=True)
    assert schema.targets == ("crt_response",) and "responder" not in {c.name for c in schema.columns}
    assert schema.column("bnp").kind == "number" and schema.column("bnp").required
    assert schema.column("age").required and schema.column("esv").required and not schema.column("lvef").required
    assert schema.column("sex").kind == "binary" and schema.column("file").default == "volumes/{record_id}"
    described = cohort.SCHEMA.describe().set_index("column")
    assert described["description"].str.len().gt(0).all()  # every column documented


def test_esv_outlier_is_planted_and_the_papers_exclusion_removes_it_alone():
    """He et al. excluded one of 103 patients for an ESV of 16 ml; spect_polar.synthetic.esv_outliers plants such
    a reading and spect_polar.min_esv_ml excludes it, leaving every other patient (and the cohort without
    outliers) unchanged."""
    clean, _ = cohort.simulate_clinical(103, seed=0)
    planted, _ = cohort.simulate_clinical(103, seed=0, esv_outliers=1)
    changed = np.flatnonzero(clean["esv"].to_numpy() != planted["esv"].to_numpy())
    assert len(changed) == 1 and 12 <= planted["esv"].iloc[changed[0]] <= 18
    pd.testing.assert_frame_equal(clean.drop(index=changed), planted.drop(index=changed))
    assert "esv_outliers" not in cohort.cohort_params(103, 0)  # cached cohorts without outliers keep their key

    kept, excluded = cohort.exclude_small_esv(planted, 20)
    assert excluded == [planted["patient_id"].iloc[changed[0]]] and len(kept) == 102
    assert cohort.exclude_small_esv(planted, None) == (planted, [])
    with pytest.raises(CardioError, match="out of range"):
        cohort.simulate_clinical(20, seed=0, esv_outliers=5)
    bads: tuple[Any, ...] = ("abc", -3, True)  # a config's wrong types, as YAML or --set give them
    for bad in bads:
        with pytest.raises(CardioError, match=r"spect_polar\.min_esv_ml = .* is out of range"):
            cohort.exclude_small_esv(planted, bad)
    # a patient whose follow-up scan reads small is excluded whole
    two = pd.concat([planted.iloc[:3], planted.iloc[:1].assign(esv=15.0)], ignore_index=True)
    kept, excluded = cohort.exclude_small_esv(two, 20)
    assert excluded == [planted["patient_id"].iloc[0]] and len(kept) == 2


def test_paper_profile_load_excludes_the_planted_outlier_and_keeps_its_id(tmp_path):
    """--set profile=paper: load plants one artefactual ESV and excludes it; the cohort's meta names the patient
    (the report states it) and nobody else is dropped."""
    from cardio_testing.harness import cpu_context, plugin_config

    config = plugin_config("spect_polar", sets=["profile=paper", "spect_polar.synthetic.n_patients=12",
                                                "spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32"])
    assert config["spect_polar"]["synthetic"]["esv_outliers"] == 1 and config["spect_polar"]["min_esv_ml"] == 20
    ctx = cpu_context(tmp_path)  # without a terminal its progress is a log line per tenth, no bar
    loaded = cohort.load(config, ctx)
    assert len(loaded) == 11 and len(loaded.stage.esv_excluded) == 1
    assert loaded.stage.esv_excluded[0] not in set(loaded.table["patient_id"])
    assert (loaded.table["esv"] >= 20).all()


def test_each_npy_header_is_read_once_and_the_maps_grid_is_checked(user_folder, monkeypatch):
    """check_grid takes check_records' shapes: with the phase grid named, a .npy's header is read once, and a
    map off the cohort's grid (volumes present: the phase grid) is still a problem naming it."""
    for seed, name in enumerate(("B1", "B2"), start=4):
        np.save(user_folder / "volumes" / f"{name}.npy", make_phantom(seed, noise=False).true_phase)
    pd.DataFrame({"patient_id": ["A1", "A2", "A3", "B1", "B2"], "responder": [1, 0, 1, 0, 1]}
                 ).to_csv(user_folder / "clinical.csv", index=False)
    reads: list[str] = []
    real = cohort.npy_header

    def counted(path: Any) -> Any:  # the header read, counted
        reads.append(str(path))
        return real(path)
    monkeypatch.setattr(cohort, "npy_header", counted)
    table = cohort.load_cohort(user_folder, grid=(32, 64))
    assert table["kind"].tolist() == ["volume", "volume", "polar", "polar", "polar"]
    assert sorted(reads) == sorted(str(user_folder / "volumes" / f"{n}.npy") for n in ("A1", "A2", "B1", "B2"))
    np.save(user_folder / "volumes" / "B2.npy", np.ones((8, 8)))
    with pytest.raises(CohortProblems, match=r"B2\.npy: phase polar map of shape \(8, 8\).*\(32, 64\)"):
        cohort.load_cohort(user_folder, grid=(32, 64))


def test_a_synthetic_reduction_stays_below_100_percent_and_no_followup_volume_is_negative():
    """The latent LVESV reduction is unbounded above: default settings at seed 10 (143 patients) drew 101% and wrote a
    follow-up ESV of -1.7 ml, which the cohort's own schema (esv_followup >= 0) refused. Above 85% it is now
    compressed below 95%; what lay at or below 85% is unchanged, so the default cohort is the one it was."""
    raw = np.array([-40.0, 14.99, 15.0, 60.0, 85.0, 90.0, 101.1, 130.0, 1e6, np.nan])
    bounded = cohort.bounded_reduction(raw)
    assert np.array_equal(bounded[:5], raw[:5]) and np.isnan(bounded[-1])
    assert (np.diff(bounded[4:-2]) > 0).all() and (bounded[5:-2] < cohort.REDUCTION_CEILING).all()
    assert bounded[-2] <= cohort.REDUCTION_CEILING  # however far out the latent draw lies
    clin, _ = cohort.simulate_clinical(143, seed=10)
    assert clin["lvesv_reduction_pct"].max() < 95 and (clin["esv_followup"] > 0).all()
    assert ((clin["lvesv_reduction_pct"] >= 15) == (clin["responder"] == 1)).all()
