"""Any echo target: a generated EchoNet-Dynamic-layout folder (FileList.csv + Videos/<FileName>.avi, EF planted as the
cavity area's fall from end-diastole to end-systole) trains EF regression end to end through
`cardio run --plugin echo_cmr --config echonet.yaml` (the README's recipe), on the file list's TRAIN/VAL/TEST split,
with a study-level binary column added beside it (`responder`); and its problems name FileList.csv and its lines."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr import synthetic
from cardio_testing.harness import invoke, pooled, read_metrics, run_plugin

# 24 videos of 32 x 32 px: 12 TRAIN, 4 VAL, 8 TEST; a CPU-sized network (the narrow R(2+1)D on 16 x 16 clips of 8
# frames, 2 epochs)
SMALL = ["echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.clip.size=16", "echo_cmr.clip.frames=8",
         "echo_cmr.train.epochs=2", "echo_cmr.train.batch_size=4", "echo_cmr.workers=1", "stats.n_resamples=200"]


def _folder(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    """The generated folder and the user's echonet.yaml naming it (as the README shows), plus `extra` YAML."""
    root = synthetic.write_echonet(tmp_path / "EchoNet-Dynamic", 24, seed=5, n_frames=32, size=32,
                                   splits=(0.5, 0.67))
    config = tmp_path / "echonet.yaml"
    config.write_text(f"profile: echonet\ncohort:\n  dir: {root}\n{extra}")
    return root, config


# The recipe's EF plus a study-level binary target: a column the researcher added to FileList.csv (EF < 50 here)
RESPONDER = """echo_cmr:
  targets:
    - {target: EF, kind: continuous, level: study, title: ejection fraction, unit: "%"}
    - {target: responder, kind: binary, level: study, title: responder (EF below 50%)}
"""


def test_echonet_folder_trains_ef_regression_end_to_end(tmp_path):
    root, config = _folder(tmp_path, RESPONDER)
    files = pd.read_csv(root / "FileList.csv")
    files["responder"] = (files["EF"] < 50).astype(int)
    files.to_csv(root / "FileList.csv", index=False)
    (tmp_path / "no_real_clips").mkdir()  # the real-clip masking figure is the default run's (test_plugin.py)
    out = run_plugin("echo_cmr", tmp_path / "run", config_file=config, cache_dir=tmp_path / "cache",
                     sets=[*SMALL, "final_model=true", f"echo_cmr.real_clips={tmp_path / 'no_real_clips'}"])
    metrics = read_metrics(out)
    assert metrics["folds"] == [{"name": "predefined", "n_train": 12, "n_test": 8, "n_val": 4}]
    for model in ("fused", "r2plus1d-A4C"):
        (mae,) = pooled(metrics, "mae", model=model, task="EF", method=None)
        (r2,) = pooled(metrics, "r2", model=model, task="EF", method=None)
        assert mae["n"] == r2["n"] == 8 and 0 < mae["estimate"] < 100 and r2["estimate"] < 1
        assert mae["ci_low"] <= mae["estimate"] <= mae["ci_high"]
    (auc,) = pooled(metrics, "auc", model="fused", task="responder")  # the binary target, fused by the logistic
    assert auc["n"] == 8 and 0 <= auc["estimate"] <= 1
    assert (out / "figures" / "bland_altman_fused_ef.png").is_file()
    pred = pd.read_csv(out / "predictions.csv")
    assert set(zip(pred["task"], pred["kind"])) == {("EF", "regression"), ("responder", "binary")}
    fused = pred[(pred["model"] == "fused") & (pred["task"] == "EF")]
    assert fused["patient_id"].nunique() == 8  # each video is its own patient: 8 test videos, 8 patients
    test_ef = files.loc[files["Split"] == "TEST", "EF"].sort_values().to_numpy()
    assert (fused["y_true"].sort_values().to_numpy() == test_ef).all()
    report = (out / "report.md").read_text()
    assert "ejection fraction (%)" in report and "| responder (EF below 50%) |" in report
    # the final model's bundle carries the configured targets: cardio predict applies it to the folder again
    result = invoke("predict", "--model", str(out), "--cohort", str(root), "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.stderr[-2000:]
    again = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert set(again["task"]) == {"EF", "responder"} and again["record_id"].nunique() == 24


def test_the_recipe_reads_echonets_layout_and_prints_the_published_ef_error_beside_its_own(tmp_path):
    """Issue 56: the README's command on a folder in EchoNet-Dynamic's real layout (FileList.csv, VolumeTracings.csv,
    Videos/*.avi written by OpenCV) reports the TEST videos' EF error beside Ouyang et al.'s published figures."""
    root, config = _folder(tmp_path)
    assert (root / "VolumeTracings.csv").is_file() and len(list((root / "Videos").glob("*.avi"))) == 24
    tracings = pd.read_csv(root / "VolumeTracings.csv")
    assert list(tracings.columns) == ["FileName", "X1", "Y1", "X2", "Y2", "Frame"]
    assert tracings["FileName"].str.endswith(".avi").all()
    assert tracings.groupby("FileName")["Frame"].nunique().eq(2).all()  # end-diastole and end-systole
    (tmp_path / "no_real_clips").mkdir()
    out = run_plugin("echo_cmr", tmp_path / "run", config_file=config, cache_dir=tmp_path / "cache",
                     sets=[*SMALL, f"echo_cmr.real_clips={tmp_path / 'no_real_clips'}", "report.figures=false",
                           "explain=false"])  # the report's text and the estimates are read
    report = (out / "report.md").read_text()
    assert "EF error beside EchoNet-Dynamic's published figure (%)" in report
    published = next(line for line in report.splitlines() if line.startswith("| published: Ouyang et al. 2020"))
    assert published.endswith("| 4.1 | 5.3 | 0.81 |")
    ours = [line for line in report.splitlines() if line.startswith("| this run: the file list's TEST videos")]
    (mae,) = pooled(read_metrics(out), "mae", model="fused", task="EF", method=None)
    assert len(ours) == 2 and f"| fused | {mae['estimate']:.2f} [" in ours[0]
    assert "MAE 4.1%, RMSE 5.3%, R² 0.81 on its test split" in report


def test_problems_name_the_file_list_and_its_lines(tmp_path):
    root, config = _folder(tmp_path)
    files = pd.read_csv(root / "FileList.csv", dtype=str, keep_default_na=False)
    files.loc[2, "EF"] = "120"                   # outside 0-100
    files.loc[5, "FileName"] = "0XNOTTHERE"      # names no video
    files.loc[7, "Split"] = "HOLDOUT"            # not TRAIN/VAL/TEST
    files.to_csv(root / "FileList.csv", index=False)
    result = invoke("validate", "--plugin", "echo_cmr", "--config", str(config),
                    "--set", f"cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 2, result.stderr[-2000:]
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    assert len(problems) == 3, problems
    listed = root / "FileList.csv"
    assert all(f"{listed}: line" in p for p in problems), problems
    assert any("line 4, column 'EF'" in p for p in problems)
    assert any("line 7, column 'file'" in p and "0XNOTTHERE" in p for p in problems)
    assert any("line 9, column 'Split'" in p for p in problems)
