"""mmode_septal_flash on cardio's plugin contract suite (cardio_testing.contract), at its smallest run: 32
synthetic sequences of 64 x 64 px (14 with septal flash), 128 x 128 M-modes, 32 x 32 inputs, one epoch, one thread,
Grad-CAM++ on (its attention tables and figures are searched for identifiers), the sequences given as DICOM cine;
and what only this plugin's reader checks (septum tracings, cycles, valve events) and its holdout's size."""
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd

from cardio_imaging.cine import write_dicom_cine
from cardio_mmode_septal_flash.cohort import LABEL
from cardio_testing.contract import Contract, contract_suite
from cardio_testing.harness import check_refused, headline, invoke, read_metrics, second_intervals

# A holdout test part of 35%: with a third of the labels missing, 20% would hold too few patients of each class.
RUN = ("profile=fast", "mmode_septal_flash.synthetic.n_patients=32", "mmode_septal_flash.synthetic.n_sf=14",
       "mmode_septal_flash.synthetic.size=64", "mmode_septal_flash.mmode.size=[128, 128]",
       "mmode_septal_flash.model.input_size=32", "train.cpu_threads=1", "cv.ratios=[50, 15, 35]",
       "stats.n_resamples=200")


def as_dicom(root: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Each sequence as the DICOM cine an echo cart exports (the suite then plants its header)."""
    for i, cell in enumerate(table["sequence"]):
        npy = root / cell
        dcm = write_dicom_cine(npy.with_suffix(".dcm"), np.load(npy), float(table["frame_time_ms"].iloc[i]))
        npy.unlink()
        table.loc[i, "sequence"] = str(dcm.relative_to(root))
    return table


# the suite's class is made at run time (contract_suite): mypy takes a base it cannot see as Any
Suite: Any = contract_suite(Contract("mmode_septal_flash", run=RUN, plant_files=as_dicom))


class TestContract(Suite):
    def test_both_networks_predict_and_explain(self, finished):
        """Both DenseNets (full and cropped M-mode) reach predictions.csv; Grad-CAM++ wrote the attention tables the
        PHI check searched and each network's overlay; Table 1 shows the full model's row and the paired test full vs
        cropped, which is the performance section's (the control tests in test_plugin.py train the cropped one)."""
        models = {"densenet121-full", "densenet121-cropped"}
        assert set(pd.read_csv(finished.run / "predictions.csv")["model"]) == models
        assert list((finished.run / "attention").iterdir())
        figures = {p.name for p in (finished.run / "figures").glob("*.png")}
        assert {"mmode_line_example.png", "mmode_gradcampp_full.png", "mmode_gradcampp_cropped.png"} <= figures
        metrics = read_metrics(finished.run)
        assert second_intervals(metrics) == [] and all(t["section"] == "Performance" for t in metrics["tests"])
        assert any({t.get("model_a"), t.get("model_b")} == models for t in metrics["tests"]), metrics["tests"]
        full = headline(metrics, "auc", model="densenet121-full")  # Table 1 shows the performance table's headline
        report = (finished.run / "report.md").read_text()
        assert f"| {full['estimate']:.2f} | [{full['ci_low']:.2f}, {full['ci_high']:.2f}] |" in report
        assert "mmode_gradcampp_full.png" in report
        # the paper's Figure 3 at this size (one epoch: every network misses flashes): the wrong calls in one row,
        # each titled with its call and its truth (pred, gt), as the paper's
        assert {"mmode_misclassified_full.png", "mmode_misclassified_cropped.png"} <= figures
        assert report.count("each title gives the call (pred) and the truth (gt)") == 2

    def test_validate_lists_ten_damages_at_once_and_a_clean_cohort_passes(self, synthetic, tmp_path):
        """Issue 26: one validate lists every damage (file, line, column); the run refuses the same cohort before any
        work; the undamaged cohort passes validate."""
        d = _with_record_ids(synthetic, tmp_path / "cohort")
        expected = _damage(d)
        result = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={d}")
        assert result.exit_code == 2
        problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
        where = [m for p in problems if (m := re.search(r"line (\d+), column '(\w+)'", p)) is not None]
        assert len(where) == len(problems), problems  # each problem names its line and column
        assert sorted((int(m[1]), m[2]) for m in where) == sorted(expected), "\n".join(problems)
        for (line, column), text in expected.items():
            [found] = [p for p in problems if f"line {line}, column '{column}'" in p]
            assert text in found, (line, column, text, found)
        run = invoke("run", "--plugin", "mmode_septal_flash", "--out", str(tmp_path / "run"), "--set",
                     f"cohort.dir={d}")
        check_refused(run, f"and {len(expected) - 1} more")  # the first problem and the count
        ok = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={synthetic}")
        assert ok.exit_code == 0 and "cohort OK" in ok.stdout, ok.stderr[-2000:]

    def test_validate_finds_a_cohort_too_small_for_the_holdout(self, synthetic, tmp_path):
        """Ten patients: the default holdout's test part holds two, too few for a DeLong interval (issue 26)."""
        d = shutil.copytree(synthetic, tmp_path / "cohort")
        t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
        t[t["patient_id"].isin(t["patient_id"].unique()[:10])].to_csv(d / "labels.csv", index=False)
        result = invoke("validate", "--plugin", "mmode_septal_flash", "--set", f"cohort.dir={d}")
        assert result.exit_code == 2
        [problem] = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
        # the core names the part that falls short, or scikit-learn's refusal to stratify so few patients
        assert "the test part of holdout would hold" in problem or "holdout cannot be made on 10 patients" in problem


def _with_record_ids(synthetic: Path, dest: Path) -> Path:
    """The synthetic cohort with its record ids written out (the patient names the record)."""
    d = shutil.copytree(synthetic, dest)
    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    if "record_id" not in t.columns:
        t.insert(1, "record_id", t["patient_id"])
    t.to_csv(d / "labels.csv", index=False)
    return d


def _damage(d: Path) -> dict[tuple[int, str], str]:
    """Ten damages of the cohort at d; {(CSV line, column): text its problem must hold}."""
    t = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    rid = t["record_id"]
    septum = lambda i: d / "septum" / f"{rid[i]}.csv"  # noqa: E731
    pd.read_csv(septum(2)).iloc[:61].to_csv(septum(2), index=False)
    n = len(np.load(d / "sequences" / f"{rid[3]}.npy", mmap_mode="r"))
    t.loc[3, "cycle_end"] = str(n + 4)
    (d / "sequences" / f"{rid[4]}.npy").unlink()
    dcm = write_dicom_cine(d / "sequences" / f"{rid[5]}.dcm", np.load(d / "sequences" / f"{rid[5]}.npy"), 20.0)
    (d / "sequences" / f"{rid[5]}.npy").unlink()
    dcm.write_bytes(dcm.read_bytes()[: dcm.stat().st_size // 2])
    t.loc[6, "mvc_ms"] = "early"
    t.loc[9, "septum"] = "../elsewhere/tracing.csv"
    points = pd.read_csv(septum(10))
    points.loc[30, "y"] = None
    points.to_csv(septum(10), index=False)
    pd.read_csv(septum(11)).assign(x=lambda p: p["x"] + 60.0).to_csv(septum(11), index=False)  # 64 px frames
    t.loc[12, LABEL] = "2"
    pasted = len(t) + 2  # a row pasted twice: one record on CSV lines 2 and this one
    t = pd.concat([t, t.iloc[[0]]])
    t.to_csv(d / "labels.csv", index=False)
    return {(4, "septum"): "61 septum points", (5, "cycle_end"): f"cycle_end {n + 4} lies past the clip's last frame",
            (6, "sequence"): "sequences/", (7, "sequence"): "truncated", (8, "mvc_ms"): "'early'",
            (2, "record_id"): "more than one row", (pasted, "record_id"): "more than one row",
            (11, "septum"): "'../elsewhere/tracing.csv'", (12, "septum"): "non-finite",
            (13, "septum"): "outside the 64 x 64 image", (14, LABEL): "'2'"}
