"""echo_cmr on the core's cohort contract, on a generated cohort: clips of one study and studies of one patient,
missing CMR values, and a row naming a file outside the cohort folder.

The cohort: the synthetic writer's 24 studies (16 px clips of 8 frames at 30 fps, every other patient's 16 frames at
60 fps; per-view labels as a 17-segment CMR report), then by hand four patients given a second echo study (20
patients), five studies a second A4C clip, ecv_pct emptied in 8 studies (33%), t1_ms in 5 (21%), echo and CMR dates
with two studies' CMR 45 days away (their labels unused), and one `file` naming ../x.avi. The run (shared by the
tests, `site_a`): 2 folds with a quarter of each training fold held out for per-output selection, 1 epoch of batch
4, one torch thread, and the final model exported for `cardio predict` (test_bundle.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio import aha17
from cardio.cohort import CohortProblems
from cardio.testing import (
    check_refused,
    context,
    invoke,
    plugin_config,
    read_metrics,
    run_plugin,
    second_intervals,
    split_overlaps,
)
from cardio_echo_cmr import cohort, synthetic

N_STUDIES = 24
SECOND_STUDY = (1, 5, 9, 13)            # study i belongs to the patient of study i - 1
SECOND_A4C = (2, 6, 10, 14, 18)         # studies with two A4C clips
FAR = (3, 20)                           # studies whose CMR is 45 days from the echo (over echo_cmr.max_days)
_rng = np.random.default_rng(0)
NO_ECV = tuple(_rng.choice(N_STUDIES, 8, replace=False))   # 33% of ecv_pct missing
NO_T1 = tuple(_rng.choice(N_STUDIES, 5, replace=False))    # 21% of t1_ms missing
# Thresholds near the synthetic means, so each abnormal flag has both classes among the few labelled studies of a
# training fold (the paper's thresholds leave 2-3 positives in 24 studies).
THRESHOLDS = {"t1_ms": 1030, "t2_ms": 53, "ecv_pct": 29}
SMALL = ["echo_cmr.clip.size=16", "echo_cmr.clip.frames=4", "echo_cmr.clip.period=2", "echo_cmr.train.epochs=1",
         "echo_cmr.train.batch_size=4", "echo_cmr.train.cpu_threads=1", "echo_cmr.workers=1",
         "train.val_fraction=0.25", "cv.folds=2", "stats.n_resamples=100",
         *(f"echo_cmr.thresholds.{k}={v}" for k, v in THRESHOLDS.items())]


def _write(root: Path) -> Path:
    synthetic.write_cohort(root, N_STUDIES, seed=11, n_frames=8, height=48, width=64, frame_time_ms=(33.3, 16.65),
                           truth={"wma_fraction": 0.5, "wma_motion_reduction": 1.0}, segments=True)
    rows = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    study = rows["study_id"].str[1:].astype(int)
    for i in SECOND_STUDY:
        rows.loc[study == i, "patient_id"] = f"P{i - 1:04d}"
    extra = []
    for i in SECOND_A4C:
        row = rows[(study == i) & (rows["view"] == "A4C")].iloc[0].copy()
        name = f"videos/P{i:04d}_A4C_2.dcm"
        shutil.copy(root / row["file"], root / name)
        row["file"] = name
        extra.append(row)
    rows = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True).sort_values("study_id", kind="stable")
    study = rows["study_id"].str[1:].astype(int)
    rows.loc[study.isin(NO_ECV), "ecv_pct"] = ""
    rows.loc[study.isin(NO_T1), "t1_ms"] = ""
    rows["echo_date"] = "2021-03-01"
    rows["cmr_date"] = np.where(study.isin(FAR), "2021-04-15", "2021-03-08")
    rows.to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The generated cohort folder (every row fine)."""
    base = tmp_path_factory.mktemp("echo_contract")
    return _write(base / "cohort")


@pytest.fixture(scope="module")
def site_a(generated, tmp_path_factory) -> Path:
    """The run on the generated cohort, final model exported (report.figures=false: the core's figures of the binary
    tasks take ~50 s of CPU here; they are the positive control's to check, test_plugin.py)."""
    base = tmp_path_factory.mktemp("echo_site_a")
    return run_plugin("echo_cmr", base / "run", sets=[f"cohort.dir={generated}", *SMALL, "report.figures=false"],
                      cache_dir=base / "cache")


def _outside(root: Path, tmp: Path) -> tuple[Path, int]:
    """A copy of the cohort whose PLAX row of study S0003 names ../x.avi (a file that is there); its CSV line."""
    bad = tmp / "bad"
    shutil.copytree(root, bad)
    (tmp / "x.avi").write_bytes((root / "videos" / "P0003_PLAX.avi").read_bytes())
    rows = pd.read_csv(bad / "labels.csv", dtype=str, keep_default_na=False)
    (i,) = rows.index[(rows["study_id"] == "S0003") & (rows["view"] == "PLAX")]
    rows.loc[i, "file"] = "../x.avi"
    rows.to_csv(bad / "labels.csv", index=False)
    return bad, int(i) + 2  # header = line 1


def test_a_file_outside_the_folder_is_the_one_problem_listed(generated, tmp_path):
    bad, line = _outside(generated, tmp_path)
    with pytest.raises(CohortProblems) as e:
        cohort.read_cohort(bad, THRESHOLDS)
    (problem,) = e.value.problems
    assert (problem.line, problem.column) == (line, "file") and "outside the cohort folder" in problem.message
    assert "cohort.allow_outside_paths" in problem.message
    # the same table with the switch on reads, and the fixed folder reads without it
    assert len(cohort.read_cohort(bad, THRESHOLDS, allow_outside=True)) == N_STUDIES
    assert len(cohort.read_cohort(generated, THRESHOLDS)) == N_STUDIES


def test_non_numeric_values_and_conflicting_study_values_are_listed_at_once(generated, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(generated, bad)
    rows = pd.read_csv(bad / "labels.csv", dtype=str, keep_default_na=False)
    rows.loc[0, "t1_ms"] = "high"
    rows.loc[4, "wma_global"] = str(1 - int(rows.loc[4, "wma_global"]))   # differs from its study's other rows
    rows.loc[7, "view"] = "PSAX"
    rows.to_csv(bad / "labels.csv", index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_clips(bad)
    found = {(p.column, p.line) for p in e.value.problems}
    assert ("t1_ms", 2) in found and ("view", 9) in found
    first = int(rows.index[rows["study_id"] == rows.loc[4, "study_id"]][0]) + 2  # the study's first line
    (conflict,) = [p for p in e.value.problems if p.column == "wma_global"]  # named once, by both its lines
    assert conflict.line == 6 and f"on line {first} of the same study" in conflict.message


def test_studies_clips_and_missing_values(generated):
    table = cohort.read_cohort(generated, THRESHOLDS)
    assert table["patient_id"].nunique() == N_STUDIES - len(SECOND_STUDY)
    assert (table["record_id"] == table["study_id"]).all()
    clips = table["video_A4C"].map(len)
    assert sorted(table.index[clips == 2]) == list(SECOND_A4C) and (table["video_PLAX"].map(len) == 1).all()
    far = table.index[list(FAR)]
    assert table.loc[far, ["wma", "lge", "t1_ms", "ecv_pct", "wma_A4C", "lge_PLAX"]].isna().all().all()
    assert table["ecv_pct"].isna().sum() == len(set(NO_ECV) | set(FAR))
    assert table["t1_ms"].isna().sum() == len(set(NO_T1) | set(FAR))
    # per-view labels from the segment columns: a view is positive where one of its segments is
    report = pd.read_csv(generated / "labels.csv").groupby("study_id").first()
    for view, segments in aha17.VIEW_SEGMENTS.items():
        shown = report[[f"wma_s{k}" for k in segments]].max(axis=1).to_numpy(float)
        shown[list(FAR)] = np.nan
        assert np.array_equal(table[f"wma_{view}"].to_numpy(float), shown, equal_nan=True), view
    # a derived flag is missing with its value, never "normal"
    assert (table["ecv_abnormal"].isna() == table["ecv_pct"].isna()).all()
    assert (table["t1_abnormal"].isna() == table["t1_ms"].isna()).all()


def test_run_splits_by_patient_and_counts_each_target(generated, site_a):
    out = site_a
    table = cohort.read_cohort(generated, THRESHOLDS)
    cfg = plugin_config("echo_cmr", [f"cohort.dir={generated}", *SMALL])
    assert split_overlaps(table, cfg["cv"], cohort.LABEL, seeds=range(20)) == []

    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred[(pred["model"] == "fused") & (pred["task"] == "wma")]) == N_STUDIES   # one row per study
    # every pooled estimate of a task is on the studies that have its label (the prediction level is the study)
    expected = {task: int(table[task].notna().sum()) for task in set(pred["task"])}
    assert expected["ecv_pct"] == N_STUDIES - len(set(NO_ECV) | set(FAR))
    assert expected["t1_abnormal"] == N_STUDIES - len(set(NO_T1) | set(FAR))
    assert {"lge_A4C", "lge_A2C", "lge_PLAX"} <= set(pred["task"])             # per-view LGE scored as such
    fused = set(pred.loc[pred["model"] == "fused", "task"])
    assert {"t1_ms", "t2_ms", "ecv_pct", "wma", "lge"} <= fused                 # fused regression rows too
    estimates = [e for e in read_metrics(out)["estimates"] if e.get("fold") == "pooled" and not e.get("subgroup")]
    assert {e["task"] for e in estimates} == set(expected)
    wrong = [(e["model"], e["task"], e["metric"], e["n"], expected[e["task"]])
             for e in estimates if int(e["n"]) != expected[e["task"]]]
    assert not wrong, wrong
    assert f"{len(FAR)} of {N_STUDIES} studies have their CMR more than 30 days" in (out / "run.log").read_text()
    assert "Best epoch of each output" in (out / "report.md").read_text()
    assert second_intervals(read_metrics(out)) == []
    # the per-output selection's folders (~50 MB per kept epoch) go when evaluate starts; the engine's stay
    assert not list((out / "checkpoints").glob("*.heads")) and list((out / "checkpoints").glob("fold0-echo-*.pt"))


def test_the_old_cohort_key_names_the_new_one(tmp_path):
    result = invoke("run", "--plugin", "echo_cmr", "--set", f"echo_cmr.dir={tmp_path}", "--out", str(tmp_path / "r"))
    check_refused(result, "echo_cmr.dir")
    assert "use cohort.dir" in result.stderr.splitlines()[-1] and not (tmp_path / "r").exists()


def _site_b(root: Path) -> Path:
    """A second site: another seed of the generator (30 and 60 fps), ids of its own."""
    synthetic.write_cohort(root, 6, seed=99, n_frames=8, height=48, width=64, frame_time_ms=(16.65, 33.3))
    rows = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    rows["patient_id"] = "B" + rows["patient_id"]
    rows["study_id"] = "B" + rows["study_id"]
    rows.to_csv(root / "labels.csv", index=False)
    return root


def test_site_a_bundle_predicts_site_b_as_the_final_model(site_a, tmp_path):
    import torch

    from cardio import bundle as core_bundle
    from cardio_echo_cmr import bundle, model, training

    info, state, cfg = core_bundle.read(site_a)
    assert info["plugin"] == "echo_cmr" and state.params["heads"] == list(model.HEADS)
    again = bundle.export(bundle.load(state), cfg["echo_cmr"])   # nothing lost on the way
    assert set(again.tensors) == set(state.tensors)
    assert all(np.array_equal(torch.as_tensor(v).numpy(), state.tensors[k].numpy()) for k, v in again.tensors.items())

    site_b = _site_b(tmp_path / "site_b")
    result = invoke("predict", "--model", str(site_a), "--cohort", str(site_b), "--out", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr[-2000:]
    got = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert got["patient_id"].nunique() == 6 and {"fused", "r2plus1d-A4C"} <= set(got["model"])

    # the final model's own scores on site B, in process (import, featurize, predict), equal cardio predict's
    cfg = {**cfg, "cohort": {**cfg["cohort"], "dir": str(site_b)}}
    ctx = context(tmp_path / "direct", cache_dir=tmp_path / "cache_b")
    features = cohort.featurize(cohort.load(cfg, ctx), cfg["echo_cmr"], ctx)
    direct = training.predict(bundle.load(state), features, np.arange(len(features.table)), cfg["echo_cmr"], ctx)
    keys = ["model", "task", "y_score"]
    a = got.sort_values(["model", "task", "y_score"])[keys].reset_index(drop=True)
    b = direct.table.sort_values(["model", "task", "y_score"])[keys].reset_index(drop=True)
    assert a[["model", "task"]].equals(b[["model", "task"]])
    assert np.allclose(a["y_score"], b["y_score"], rtol=1e-5, atol=1e-6)


def test_real_clips_through_cardio_predict(site_a, tmp_path, echo_dicom_dir, capsys):
    """The four real echo DICOM clips as an unlabelled cohort (outside the folder, so allowed by the user)."""
    import time

    # views as the clips look (the masking figure): a PLAX, two apical four-chamber loops, and a colour-Doppler
    # loop of no standard view, given as A2C
    views = {"US-MONO2-8-8x-execho.dcm": "PLAX", "US-PAL-8-10x-echo.dcm": "A2C", "color3d_jpeg_baseline.dcm": "A4C",
             "examples_ybr_color.dcm": "A4C"}
    clips = sorted(echo_dicom_dir.glob("*.dcm"))
    table = pd.DataFrame({"patient_id": [f"R{i}" for i in range(len(clips))], "view": [views[p.name] for p in clips],
                          "file": [str(p) for p in clips]})
    (tmp_path / "real").mkdir()
    table.to_csv(tmp_path / "real" / "labels.csv", index=False)
    started = time.perf_counter()
    result = invoke("predict", "--model", str(site_a), "--cohort", str(tmp_path / "real"), "--out",
                    str(tmp_path / "r"), "--set", "cohort.allow_outside_paths=true")
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr[-2000:]
    pred = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert pred["y_true"].isna().all() and pred["patient_id"].nunique() == len(clips)
    fused = pred[pred["model"] == "fused"].pivot(index="record_id", columns="task", values="y_score")
    with capsys.disabled():
        print(f"\nreal clips through cardio predict: {seconds:.1f} s\n{fused.round(3).to_string()}")
    assert np.isfinite(fused.to_numpy()).all()
