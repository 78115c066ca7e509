"""echo_cmr on cardio's plugin contract suite (cardio_testing.contract), at its smallest run: 24 synthetic
studies of 8 frames (48 x 64 px), 16 px clips of 4 frames on the narrow R(2+1)D, one epoch of batch 4, one thread, 2
folds with a quarter of each training fold held out for the per-output selection, Grad-CAM on; and what only
echo_cmr's reader derives (per-view labels from the 17 segments, CMR dates, thresholds), its per-output selection, a
second site at other frame rates and the real clips through `cardio predict`."""
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cardio_echo_cmr")

import numpy as np
import pandas as pd

from cardio.data.cohort import CohortProblems
from cardio_deploy import bundle as deploy_bundle
from cardio_echo_cmr import cohort, model, synthetic
from cardio_imaging import aha17
from cardio_testing.contract import Contract, contract_suite
from cardio_testing.harness import context, invoke, plugin_config

# Thresholds near the synthetic means, so each abnormal flag has both classes among the few labelled studies of a
# training fold (the paper's thresholds leave 2-3 positives in 24 studies).
THRESHOLDS = {"t1_ms": 1030, "t2_ms": 53, "ecv_pct": 29}
RUN = ("echo_cmr.synthetic.n_patients=24", "echo_cmr.synthetic.n_frames=8", "echo_cmr.synthetic.height=48",
       "echo_cmr.synthetic.width=64", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.clip.size=16",
       "echo_cmr.clip.frames=4", "echo_cmr.clip.period=2",
       "echo_cmr.train.epochs=1", "echo_cmr.train.batch_size=4", "echo_cmr.workers=1", "train.val_fraction=0.25",
       "cv.folds=2", "stats.n_resamples=100", "report.figures=false",
       *(f"echo_cmr.thresholds.{k}={v}" for k, v in THRESHOLDS.items()))


# the suite's class is made at run time (contract_suite): mypy takes a base it cannot see as Any
Suite: Any = contract_suite(Contract("echo_cmr", run=RUN))


class TestContract(Suite):
    def test_each_output_keeps_its_best_epoch(self, finished):
        """The per-output selection is reported; its folders (~50 MB per kept epoch at r2plus1d_10) went with the
        engine's checkpoints of their fits when each task was done (fit-fold0's done marker listed them)."""
        assert "Best epoch of each output" in (finished.run / "report.md").read_text()
        listed = json.loads((finished.run / "tasks" / "fit-fold0" / "done.json").read_text())["checkpoints"]["files"]
        assert any(f.startswith("fold0-echo-") for f in listed)
        assert not list((finished.run / "checkpoints").iterdir())

    def test_a_second_site_at_other_frame_rates(self, finished, tmp_path):
        """The bundle names every head; `cardio predict` scores a second site (another seed, 60 and 30 fps)."""
        _, state, _ = deploy_bundle.read(finished.run)
        assert state.params["heads"] == list(model.HEADS)
        site_b = _site_b(tmp_path / "site_b")
        result = invoke("predict", "--model", str(finished.run), "--cohort", str(site_b), "--out", str(tmp_path / "b"))
        assert result.exit_code == 0, result.stderr[-2000:]
        got = pd.read_csv(tmp_path / "b" / "predictions.csv")
        assert got["patient_id"].nunique() == 6 and {"fused", "r2plus1d-A4C"} <= set(got["model"])

    def test_real_clips_through_cardio_predict(self, finished, tmp_path, echo_dicom_dir, capsys):
        """The four real echo DICOM clips as an unlabelled cohort (outside the folder, so allowed by the user)."""
        # views as the clips look (the masking figure): a PLAX, two apical four-chamber loops, and a colour-Doppler
        # loop of no standard view, given as A2C
        views = {"US-MONO2-8-8x-execho.dcm": "PLAX", "US-PAL-8-10x-echo.dcm": "A2C",
                 "color3d_jpeg_baseline.dcm": "A4C", "examples_ybr_color.dcm": "A4C"}
        clips = sorted(echo_dicom_dir.glob("*.dcm"))
        table = pd.DataFrame({"patient_id": [f"R{i}" for i in range(len(clips))],
                              "view": [views[p.name] for p in clips], "file": [str(p) for p in clips]})
        (tmp_path / "real").mkdir()
        table.to_csv(tmp_path / "real" / "labels.csv", index=False)
        started = time.perf_counter()
        result = invoke("predict", "--model", str(finished.run), "--cohort", str(tmp_path / "real"), "--out",
                        str(tmp_path / "r"), "--set", "cohort.allow_outside_paths=true")
        seconds = time.perf_counter() - started
        assert result.exit_code == 0, result.stderr[-2000:]
        pred = pd.read_csv(tmp_path / "r" / "predictions.csv")
        assert pred["y_true"].isna().all() and pred["patient_id"].nunique() == len(clips)
        fused = pred[pred["model"] == "fused"].pivot(index="record_id", columns="task", values="y_score")
        with capsys.disabled():
            print(f"\nreal clips through cardio predict: {seconds:.1f} s\n{fused.round(3).to_string()}")
        assert np.isfinite(fused.to_numpy()).all()

    def test_non_numeric_values_and_conflicting_study_values_are_listed_at_once(self, synthetic, tmp_path):
        bad = shutil.copytree(synthetic, tmp_path / "bad")
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


# The reader's own derivations, on a cohort written for them: 24 studies, four patients with a second study, five
# studies with a second A4C clip, ecv_pct and t1_ms missing in some, two studies' CMR 45 days from the echo.
N_STUDIES = 24
SECOND_STUDY = (1, 5, 9, 13)            # study i belongs to the patient of study i - 1
SECOND_A4C = (2, 6, 10, 14, 18)         # studies with two A4C clips
FAR = (3, 20)                           # studies whose CMR is 45 days from the echo (over echo_cmr.max_days)
_rng = np.random.default_rng(0)
NO_ECV = tuple(_rng.choice(N_STUDIES, 8, replace=False))   # 33% of ecv_pct missing
NO_T1 = tuple(_rng.choice(N_STUDIES, 5, replace=False))    # 21% of t1_ms missing


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


def test_studies_clips_and_missing_values(tmp_path, caplog):
    generated = _write(tmp_path / "cohort")
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
    # the run says how many studies lose their CMR labels to the date rule
    config = plugin_config("echo_cmr", [f"cohort.dir={generated}", *RUN])
    with caplog.at_level(logging.WARNING, logger="cardio.run"):
        cohort.load(config, context(tmp_path / "ctx"))
    assert f"{len(FAR)} of {N_STUDIES} studies have their CMR more than 30 days" in caplog.text


def _site_b(root: Path) -> Path:
    """A second site: another seed of the generator (60 and 30 fps), ids of its own."""
    synthetic.write_cohort(root, 6, seed=99, n_frames=8, height=48, width=64, frame_time_ms=(16.65, 33.3))
    rows = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    rows["patient_id"] = "B" + rows["patient_id"]
    rows["study_id"] = "B" + rows["study_id"]
    rows.to_csv(root / "labels.csv", index=False)
    return root
