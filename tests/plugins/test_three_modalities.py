"""Issue 41 end to end, at the smallest settings that run: a three-modality synthetic CRT cohort (ecg_transfer,
spect_polar, echo_cmr) from `cardio synthetic-crt`, each plugin's run with inner folds and its fold models in the
bundle, `cardio fuse`; then an external site (the plugins' writers with another seed, ids of its own) predicted by
each run's fold ensemble against its final model, echo's T2 target holding one class there; and echo clips of the
training cohort copied under other names, caught by content.

One module-scoped study (40 patients: at 30, spect_polar's logistic models separate on inner folds; 2 folds x 2 inner
folds, one echo view at 16 x 16 px and 4 frames on the narrow R(2+1)D, the ECG ResNet from scratch, 20 autoencoder
iterations); its runs are what the tests read. The numbers say that the sequence runs and what it reports, not what it
can find: 40 patients carry no power (benchmarks/crt_fusion.py does).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")
pytest.importorskip("cardio_spect_polar")
pytest.importorskip("cardio_echo_cmr")

import pandas as pd

from cardio.data import SYNTHETIC_CRT
from cardio_fusion.truth import stated_truth
from cardio_testing.harness import drive_patients, invoke, write_modality

pytestmark = pytest.mark.slow  # three plugins' runs, a fusion and four predictions: an end-to-end run

PLUGINS = ("ecg_transfer", "spect_polar", "echo_cmr")
N, N_B = 40, 16
WRITE = {"ecg_transfer": ["ecg_transfer.fs=250", "ecg_transfer.synthetic.seconds=5"],
         "spect_polar": ["spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32"],
         "echo_cmr": ["echo_cmr.synthetic.n_frames=16", "echo_cmr.synthetic.height=48", "echo_cmr.synthetic.width=64",
                      "echo_cmr.views=[A4C]"]}
# echo learns the CRT response and two CMR findings: WMA (what its clips show) and T2 abnormal at 53 ms (the
# synthetic mean, so that every training fold has both classes)
ECHO_TARGETS = ("[{target: responder, kind: binary, level: study, title: CRT response}, "
                "{target: wma, kind: binary, level: study, label: wma_global}, "
                "{target: t2_abnormal, kind: binary, level: study, label: t2_ms}]")
# ECG: the fast profile's ResNet trained from scratch (no MIT-BIH pretraining: no data needed), fused as the reference
RUN = {"ecg_transfer": ["profile=fast", "ecg_transfer.pretrain.enabled=false", "ecg_transfer.finetune.scratch=true",
                        "stats.reference=resnet18-scratch"],
       "spect_polar": ["spect_polar.autoencoder.iterations=20", "spect_polar.phase.rings=16",
                       "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
                       "spect_polar.autoencoder.features=8"],
       "echo_cmr": ["label=responder", f"echo_cmr.targets={ECHO_TARGETS}", "echo_cmr.thresholds.t2_ms=53",
                    "echo_cmr.views=[A4C]", "echo_cmr.arch=r2plus1d_10_narrow", "echo_cmr.clip.size=16",
                    "echo_cmr.clip.frames=4",
                    "echo_cmr.train.epochs=2", "echo_cmr.train.batch_size=4", "echo_cmr.workers=1",
                    "train.val_fraction=0"]}
COMMON = ["cv.folds=2", "cv.inner_folds=2", "explain=false", "report.figures=false", "stats.n_resamples=100",
          "final_model=true", "fold_models=true"]  # each run's bundle, echo_cmr's too (opt-in there), is applied


def _cli(*args: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr[-3000:]


def _sets(items) -> list[str]:
    return [a for s in items for a in ("--set", s)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        m.setenv("CARDIO_CACHE", str(root / "cache"))
        _cli("synthetic-crt", "--out", "crt", "--plugins", ",".join(PLUGINS), "--patients", str(N),
             *_sets(f"{p}:{s}" for p, items in WRITE.items() for s in items))
        for p in PLUGINS:
            _cli("run", "--plugin", p, "--out", p, *_sets([f"cohort.dir=crt/{p}", "cv.patients=crt/patients.csv",
                                                          *COMMON, *RUN[p]]))
        _cli("fuse", *PLUGINS, "--out", "fused", "--clinical", "crt/ecg_transfer/cohort.csv")
        site_b = drive_patients(N_B, 7).assign(patient_id=lambda t: "b" + t["patient_id"])
        for p in PLUGINS:
            write_modality(p, site_b, root / "site_b" / p, seed=11, sets=WRITE[p])
        labels = pd.read_csv(root / "site_b" / "echo_cmr" / "labels.csv")
        labels.assign(t2_ms=45.0).to_csv(root / "site_b" / "echo_cmr" / "labels.csv", index=False)  # all normal
        ecg = pd.read_csv(root / "site_b" / "ecg_transfer" / "cohort.csv", dtype=str, keep_default_na=False)
        ecg.assign(record_id="b" + ecg["record_id"]).to_csv(root / "site_b" / "ecg_transfer" / "cohort.csv",
                                                             index=False)  # the writer names records crt0001...
        for p in PLUGINS:
            _cli("predict", "--model", p, "--cohort", f"site_b/{p}", "--out", f"b_{p}", "--ensemble", "folds")
        yield root


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_three_modalities_are_fused(study):
    truth = (study / "crt" / "TRUTH.md").read_text()
    assert "Planted by echo_cmr: WMA" in truth
    metrics = _metrics(study / "fused")
    auc = {e["model"]: e for e in metrics["estimates"] if e["metric"] == "auc" and e["method"] == "delong"
           and e["fold"] == "pooled" and e.get("section") == "Performance"}
    assert set(auc) == {*PLUGINS, "fused"} and all(e["n"] == N for e in auc.values())
    report = (study / "fused" / "report.md").read_text()
    print("\n" + "\n".join(line for line in report.splitlines() if line.startswith("| ") and "responder" in line))
    assert "ecg_transfer+spect_polar+echo_cmr" in report


def test_every_report_on_the_synthetic_crt_cohort_states_its_truth_and_the_external_site_none(study):
    """Each plugin's run and the fusion state the cohort's truth.json in their Cohort part, and the plugins' own
    sections point there instead of stating their own synthetic settings; site B (the writers alone, no truth.json)
    is reported as a user's cohort."""
    stated = stated_truth(study / "crt" / "ecg_transfer")
    assert stated is not None
    for run in (*PLUGINS, "fused"):
        report = (study / run / "report.md").read_text()
        assert stated in report.split("\n## Cohort")[1].split("\n## ")[0], run
        assert ("Synthetic truth" not in report and "Cohort: synthetic; synthetic truth" not in report
                and (SYNTHETIC_CRT in report) == (run != "fused")), run
    for p in PLUGINS:
        meta = _metrics(study / f"b_{p}")
        assert (meta["synthetic"], meta["truth"]) == (False, None), p
        report = (study / f"b_{p}" / "report.md").read_text()
        assert "synthetic-crt" not in report and "Synthetic truth" not in report, p


def test_each_plugins_fold_ensemble_against_its_final_model_on_the_external_site(study):
    for p in PLUGINS:
        info = json.loads((study / p / "model" / "bundle.json").read_text())
        assert info["folds"] == ["fold0", "fold1"], p
        size = sum(f.stat().st_size for f in (study / p / "model").rglob("*") if f.is_file())
        print(f"\n{p}: bundle {size / 1e6:.2f} MB, of which fold models {info['folds_bytes'] / 1e6:.2f} MB")
        metrics = _metrics(study / f"b_{p}")
        assert metrics["kind"] == "external validation" and metrics["ensemble"] == "folds", p
        reference = {"ecg_transfer": "resnet18-scratch", "spect_polar": "clinical+ae", "echo_cmr": "fused"}[p]
        [compared] = [t for t in metrics["tests"] if t["section"] == "Fold ensemble against the final model"
                      and t["model_b"] == f"{reference} (final model)" and t["extra"]["task"] != "wma"]
        assert compared["extra"]["diff_ci_low"] <= compared["extra"]["diff"] <= compared["extra"]["diff_ci_high"]
        pred = pd.read_csv(study / f"b_{p}" / "predictions.csv")
        assert pred["patient_id"].nunique() == N_B and (pred["n_fold_models"] == 2).all()
        report = (study / f"b_{p}" / "report.md").read_text()
        table = report.split("## Fold ensemble against the final model")[1]
        print("\n".join(line for line in table.splitlines() if line.startswith("| ")))


def test_the_external_echo_report_writes_every_target_it_can(study):
    metrics = _metrics(study / "b_echo_cmr")
    [skipped] = metrics["not_evaluated"]
    assert skipped["task"] == "t2_abnormal" and skipped["why"].startswith(f"one class: all {N_B} labelled studies")
    evaluated = {e["task"] for e in metrics["estimates"] if e["metric"] == "auc" and e["section"] == "Performance"}
    assert evaluated == {"responder", "wma"}
    report = (study / "b_echo_cmr" / "report.md").read_text()
    section = report.split("## Targets not evaluated on this cohort")[1].split("\n## ")[0]
    print("\n" + section.strip())
    assert "t2_abnormal" in section and "## Performance" in report


def test_echo_clips_copied_under_other_names_are_found_by_content(study):
    source = study / "crt" / "echo_cmr"
    labels = pd.read_csv(source / "labels.csv").head(5)
    copy = study / "copied"
    (copy / "videos").mkdir(parents=True)
    for i, row in labels.iterrows():
        shutil.copy(source / row["file"], copy / "videos" / f"new{i}.dcm")
    labels.assign(patient_id=[f"x{i}" for i in range(5)], study_id=[f"x{i}" for i in range(5)],
                  file=[f"videos/new{i}.dcm" for i in range(5)]).to_csv(copy / "labels.csv", index=False)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(study)
        m.setenv("CARDIO_CACHE", str(study / "cache"))
        _cli("predict", "--model", "echo_cmr", "--cohort", "copied", "--out", "c")
    metrics = _metrics(study / "c")
    assert metrics["overlap_with_training"] == {"records": 5, "same_id": 0, "same_content": 5}
    assert metrics["kind"] == "validation on records the model was trained on"
    assert "Not an external validation" in (study / "c" / "report.md").read_text()
