"""The perfusion cohort: AHA segments (cardio_imaging.aha17), the synthetic cohort in the cache, the schema's checks."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import pandas as pd

from cardio import Cache, CardioError
from cardio.data.cohort import CohortProblems
from cardio_imaging import aha17
from cardio_perfusion_polar import cohort, synthetic
from cardio_testing.harness import plugin_config


def test_segment_means_use_the_core_aha17_bullseye():
    """The baseline's 51 inputs are cardio_imaging.aha17's segment means of the bull's-eye image, channel by channel."""
    size = 32
    labels = aha17.image_labels(size)
    values = np.arange(1, 18, dtype=np.float32) * 10.0
    maps = np.stack([np.where(labels > 0, values[np.clip(labels, 1, None) - 1], 0.0)] * 3)[None].astype(np.float32)
    got = cohort.segment_means(maps)
    assert got.shape == (1, 3, 17)
    np.testing.assert_allclose(got[0], np.tile(values, (3, 1)))  # a piecewise-constant map comes back exactly
    # the synthetic maps are painted on the same segments: the apex (17) in the centre, basal anterior (1) on top
    assert labels[size // 2, size // 2] == 17 and labels[1, size // 2] == 1 and labels[size - 2, size // 2] == 4


def test_synthetic_cohort_round_trip_and_known_effects(tmp_path):
    cache = Cache(tmp_path)
    root = synthetic.cached_cohort(cache, 300, 24, seed=3)
    assert (root / "labels.csv").exists() and len(list((root / "maps").glob("*.npy"))) == 300
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert synthetic.cached_cohort(cache, 300, 24, seed=3) == root  # written once, then reused
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == mtimes
    table = cohort.read_cohort(root)
    maps = np.stack([cohort.load_map(p) for p in table["map"]])
    assert maps.shape == (300, 3, 24, 24) and maps.dtype == np.float32
    expect, _ = synthetic.synthesize(300, 24, 3)
    np.testing.assert_allclose(table[synthetic.SEGMENT_TASKS].to_numpy(), expect[synthetic.SEGMENT_TASKS].to_numpy(),
                               atol=1e-4)
    g = table["global_mfr"]
    assert g[table["diabetes"] == 1].mean() < g[table["diabetes"] == 0].mean() - 0.15
    assert ((g < 2.0).astype(int) == table["impaired_mfr"]).all()
    segs = cohort.segment_means(maps)
    # the MFR channel carries the segment MFRs; rest perfusion shows breast attenuation (anterior) in women
    assert np.corrcoef(segs[:, 2].ravel(), table[synthetic.SEGMENT_TASKS].to_numpy().ravel())[0, 1] > 0.9
    anterior_rest = segs[:, 0, 0]
    assert anterior_rest[table["sex_male"] == 0].mean() < anterior_rest[table["sex_male"] == 1].mean()


def test_the_cached_cohort_follows_the_segment_model(tmp_path, monkeypatch):
    """Synthetic maps are painted on cardio_imaging.aha17's segments: other ring levels make another cache entry."""
    cache = Cache(tmp_path)
    standard = synthetic.cached_cohort(cache, 12, 24, seed=1)
    monkeypatch.setattr(aha17, "LEVELS", (0.0, 0.2, 0.45, 0.72))
    other = synthetic.cached_cohort(cache, 12, 24, seed=1)
    assert other != standard and synthetic.cohort_key(12, 24, 1)["aha17_levels"] == [0.0, 0.2, 0.45, 0.72]


def test_featurize_adds_segment_columns_and_declares_outcomes(ctx, tmp_path):
    root = synthetic.cached_cohort(ctx.cache, 20, 24, seed=2)
    loaded = cohort.load(plugin_config("perfusion_polar", [f"cohort.dir={root}"]), ctx)
    assert loaded.label == "impaired_mfr" and len(loaded) == 20 and loaded.level == "record"
    assert loaded.targets == ("impaired_mfr", "sex_male", "smoking", "hypertension", "dyslipidemia", "diabetes",
                              *synthetic.SEGMENT_TASKS)
    assert {"mfr_seg01", "global_mfr", "sex_male", "diabetes"} <= set(loaded.outcomes)
    assert "impaired_mfr" not in loaded.outcomes and "age" not in loaded.outcomes
    feats = cohort.featurize(loaded, ctx)
    assert feats.x["maps"].shape == (20, 3, 24, 24) and feats.x["segments"].shape == (20, 51)
    np.testing.assert_allclose(feats.table["stress_map_seg05"], feats.x["segments"][:, 17 + 4])
    # the labels' segment MFRs stay as they were read (the map's own segment means sit beside them)
    np.testing.assert_allclose(feats.table["mfr_seg03"], loaded.table["mfr_seg03"])
    assert not np.allclose(feats.table["mfr_map_seg03"], feats.table["mfr_seg03"])


def test_bad_maps_and_labels_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 8, 8), dtype=np.float32))
    with pytest.raises(CardioError, match="bad.npy.*shape"):
        cohort.load_map(bad)
    nan = np.zeros((3, 8, 8), dtype=np.float32)
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(CardioError, match="nan.npy.*NaN"):
        cohort.load_map(tmp_path / "nan.npy")
    with pytest.raises(CardioError, match="not found"):
        cohort.load_map(tmp_path / "missing.npy")
    (tmp_path / "c" / "maps").mkdir(parents=True)
    scale = np.array([100, 100, 4], np.float32)[:, None, None]  # rest and stress in %, a flow reserve (plausible)
    np.save(tmp_path / "c" / "maps" / "A.npy", np.random.default_rng(0).random((3, 8, 8), np.float32) * scale)
    (tmp_path / "c" / "labels.csv").write_text("patient_id,age\nA,61\n")
    # targets may be absent (a cohort to predict): read as missing; a run's checks refuse a target with no value
    table = cohort.read_cohort(tmp_path / "c")
    assert table["mfr_seg01"].isna().all() and table["impaired_mfr"].isna().all()


def _cohort(tmp_path) -> pd.DataFrame:
    """12 synthetic patients, about half with a second study, written to tmp_path/c."""
    table, maps = synthetic.synthesize(12, 16, seed=4, second_scans=0.5)
    synthetic.write_cohort(table, maps, tmp_path / "c")
    return table


def test_second_studies_are_records_of_the_same_patient(tmp_path):
    """A second rest/stress study of a patient is its own record (and map); the patient groups both."""
    written = _cohort(tmp_path)
    table = cohort.read_cohort(tmp_path / "c")
    assert len(table) == len(written) > 12 and table["patient_id"].nunique() == 12
    second = table[table["study_id"].str.endswith("-2")]
    assert len(second) and (second["record_id"] == second["study_id"]).all()
    assert all(p.endswith(f"maps/{r}.npy") for p, r in zip(table["map"], table["record_id"]))
    again = table[table["patient_id"] == second["patient_id"].iloc[0]]
    assert len(again) == 2 and again["sex_male"].nunique() == 1  # one patient's risk factors, two studies


def test_impaired_mfr_is_derived_only_from_all_17_segments(tmp_path):
    written = _cohort(tmp_path)
    csv = pd.read_csv(tmp_path / "c" / "labels.csv").drop(columns=["impaired_mfr"])
    csv.loc[0, "mfr_seg05"] = None  # one segment not measured: the label is missing, not guessed
    csv.to_csv(tmp_path / "c" / "labels.csv", index=False)
    table = cohort.read_cohort(tmp_path / "c")
    assert np.isnan(table["impaired_mfr"].iloc[0]) and np.isnan(table["mfr_seg05"].iloc[0])
    np.testing.assert_array_equal(table["impaired_mfr"].iloc[1:], written["impaired_mfr"].iloc[1:])


def test_every_problem_of_labels_csv_at_once(tmp_path):
    """Typing, ranges and the plugin's own check (both classes per task) in one list, each naming its line
    and column; empty targets are missing values, not problems."""
    _cohort(tmp_path)
    csv = pd.read_csv(tmp_path / "c" / "labels.csv", dtype=str)
    csv.loc[1, "smoking"] = "2"
    csv.loc[2, "mfr_seg03"] = "-1"
    csv.loc[3, "hypertension"] = None
    csv["diabetes"] = "0"
    csv.to_csv(tmp_path / "c" / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_cohort(tmp_path / "c")
    found = {(p.line, p.column) for p in e.value.problems}
    assert found == {(None, "diabetes"), (3, "smoking"), (4, "mfr_seg03")}, e.value.problems
    assert "both classes" in str(e.value.problems[-1])  # column-wide problems follow the rows
