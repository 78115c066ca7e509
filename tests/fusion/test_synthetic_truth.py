"""A run on a cohort `cardio synthetic-crt` wrote states what was planted in its report (its truth.json), as the
embedded synthetic cohorts do; a run on the same files without that truth.json (a user's cohort) states nothing."""
from __future__ import annotations

import json
import shutil

from cardio_fusion.truth import stated_truth

RUN = ("--set", "label=responder", "--set", "cv.folds=2", "--set", "train.epochs=2", "--set", "data.n_features=4",
       "--set", "final_model=false", "--set", "explain=false", "--set", "report.figures=false",
       "--set", "stats.n_resamples=100")


def test_a_synthetic_crt_cohort_states_its_truth_and_a_users_cohort_does_not(cardio_cli, tmp_path):
    cardio_cli("synthetic-crt", "--plugins", "toy,ecg_transfer", "--patients", "40", "--out", "crt", check=True)
    stated = stated_truth(tmp_path / "crt" / "toy")
    assert stated is not None and "Weights w: toy 1.2, ecg_transfer 1.2" in stated and "\n" not in stated
    shutil.copytree(tmp_path / "crt" / "toy", tmp_path / "mine" / "toy")  # the same files, no truth.json beside
    assert stated_truth(tmp_path / "mine" / "toy") is None and stated_truth(None) is None
    # another truth.json (a plugin's own synthetic writer states other keys) is not read as synthetic-crt's
    (tmp_path / "mine" / "truth.json").write_text(json.dumps({"planted": "wall motion"}))
    assert stated_truth(tmp_path / "mine" / "toy") is None

    for name, folder in (("synthetic", "crt"), ("user", "mine")):
        cardio_cli("run", "--plugin", "toy", "--out", name, "--set", f"cohort.dir={tmp_path / folder / 'toy'}", *RUN,
                   check=True)
    cardio_cli("run", "--plugin", "toy", "--out", "own", *RUN, "--set", "label=label", check=True)  # toy's own
    synthetic = (tmp_path / "synthetic" / "report.md").read_text()
    assert "Synthetic cohort, written by `cardio synthetic-crt`" in synthetic and "Weights w: toy 1.2" in synthetic
    assert "synthetic-crt" not in (tmp_path / "user" / "report.md").read_text()
    # what the cohort is, in metrics.json (Cohort.synthetic, Cohort.truth) and in the checklist's item 5a
    meta = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("synthetic", "user", "own")}
    assert meta["synthetic"]["synthetic"] and meta["synthetic"]["truth"] == stated_truth(tmp_path / "crt" / "toy")
    assert (meta["user"]["synthetic"], meta["user"]["truth"]) == (False, None)
    assert (meta["own"]["synthetic"], meta["own"]["truth"]) == (True, None)
    assert "A synthetic cohort written by `cardio synthetic-crt`, its planted effects stated" in synthetic
    assert "A synthetic cohort made by the plugin" in (tmp_path / "own" / "report.md").read_text()
    assert "The cohort folder is in config.yaml" in (tmp_path / "user" / "report.md").read_text()
