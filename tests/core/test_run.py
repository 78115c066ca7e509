"""The orchestrator: stage order, one train/predict per fold, no patient on both sides, run directory."""
import json

import numpy as np
import pandas as pd
import pytest

from cardio.data import CardioError, make_folds

STAGES = ["cardio_load", "cardio_preprocess", "cardio_featurize", "cardio_prepare"]


def _spy(cardio_cli, tmp_path, *sets):
    log = tmp_path / "spy.jsonl"
    args = ["run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "report.figures=false"]
    for s in sets:
        args += ["--set", s]
    cardio_cli(*args, env={"CARDIO_SPY_LOG": str(log)}, check=True)
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("cv,n_folds", [("cv.method=kfold", 5), ("cv.repeats=2", 10), ("cv.method=holdout", 1),
                                        ("cv.method=predefined", 1)])
def test_stage_order_folds_and_no_patient_leak(cardio_cli, tmp_path, cv, n_folds):
    calls = _spy(cardio_cli, tmp_path, cv, "fold_models=true")
    hooks = [c["hook"] for c in calls]
    assert hooks[:4] == STAGES
    trains = [c for c in calls if c["hook"] == "cardio_train" and c["fold"] != "final"]
    # after the folds, one final fit on every patient, exported before evaluate
    final = [c for c in calls if c["hook"] == "cardio_train" and c["fold"] == "final"]
    assert len(final) == 1 and len(final[0]["patients"]) == 60
    last_predict = max(i for i, h in enumerate(hooks) if h == "cardio_predict")
    exports = [(i, c["fold"]) for i, c in enumerate(calls) if c["hook"] == "cardio_export_model"]
    # each outer fold's model for the bundle (fold_models), in its fit task, then the final model
    assert [f for _, f in exports] == [*(c["fold"] for c in calls if c["hook"] == "cardio_train"
                                         and c["fold"] != "final" and "inner" not in c["fold"]), "final"]
    # the last fold's task explains its model (the explanation waits in its task folder for evaluate)
    assert last_predict < hooks.index("cardio_explain") < exports[-1][0]
    # prepare ran once; its result reached every train and the evaluate hook
    assert hooks.count("cardio_prepare") == 1 and all(c["prepared"] == {"n_features": 16} for c in trains)
    assert calls[-1]["prepared"] == {"n_features": 16} and calls[-1]["n_features"] > 0
    predicts = [c for c in calls if c["hook"] == "cardio_predict"]
    assert len(trains) == len(predicts) == n_folds
    assert len({c["fold"] for c in trains}) == n_folds
    for tr, te in zip(trains, predicts):
        assert tr["fold"] == te["fold"]
        assert not set(tr["patients"]) & set(te["patients"]), f"patient leak in {tr['fold']}"
    # the add-on's hookwrapper runs around every train, and evaluate comes last
    assert hooks.count("wrap_before_train") == hooks.count("wrap_after_train") == n_folds + 1
    assert hooks[-1] == "cardio_evaluate" and hooks.count("cardio_explain") == 1


def test_run_directory_is_complete(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=2", "--set", "subgroups=[sex]",
               check=True)
    run = tmp_path / "r"
    for name in ("config.yaml", "metrics.json", "predictions.csv", "report.md", "report.html", "report.json",
                 "run.log"):
        assert (run / name).is_file(), name
    assert not list((run / "checkpoints").iterdir())  # a finished run keeps no checkpoint (train.keep_checkpoints)
    assert {p.name for p in (run / "figures").glob("*.png")} >= {"roc_label.png", "calibration_mlp_label.png",
                                                                  "subgroups_auc_sex.png"}  # the subgroups' figure
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["schema"] == "cardio-metrics/1" and metrics["n_patients"] == 60
    for e in metrics["estimates"]:
        assert {"metric", "estimate", "ci_low", "ci_high", "level", "method", "n", "seed", "model", "task",
                "fold"} <= set(e)
    pooled_auc = [e for e in metrics["estimates"] if e["metric"] == "auc" and e["fold"] == "pooled"
                  and e["subgroup"] is None and e["method"] == "delong"]
    assert len(pooled_auc) == 1 and pooled_auc[0]["ci_low"] < pooled_auc[0]["estimate"] < pooled_auc[0]["ci_high"]
    assert {e["subgroup"] for e in metrics["estimates"]} >= {"sex=F", "sex=M"}
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Toy add-on" in html
    preds = pd.read_csv(run / "predictions.csv")
    assert set(preds.columns) >= {"record_id", "patient_id", "fold", "y_true", "y_score"}
    assert preds["patient_id"].str.fullmatch(r"P[0-9A-F]{12}").all()  # pseudonyms, never the input's identifiers
    assert "p1" not in (run / "run.log").read_text()


def test_existing_output_directory_is_never_overwritten(cardio_cli, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text("previous run")
    proc = cardio_cli("run", "--plugin", "toy", "--out", "r")
    assert proc.returncode == 2 and "already holds files" in proc.stderr
    assert (tmp_path / "r" / "metrics.json").read_text() == "previous run"


def test_resume_refuses_a_run_of_another_plugin(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "report.figures=false",
               check=True)
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    (tmp_path / "r" / "run.json").write_text(json.dumps({**meta, "plugin": "other"}))
    before = (tmp_path / "r" / "metrics.json").read_text()
    proc = cardio_cli("run", "--plugin", "toy", "--resume", "r")
    assert proc.returncode == 2 and "is a run of plugin 'other'" in proc.stderr
    assert (tmp_path / "r" / "metrics.json").read_text() == before


def test_report_command_rerenders(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", check=True)
    (tmp_path / "r" / "report.md").unlink()
    out = cardio_cli("report", "r", check=True).stdout
    assert "## Performance" in out and (tmp_path / "r" / "report.md").exists()


def _table(n_patients=40, per=3, seed=0):
    rows = []
    for p in range(n_patients):
        for r in range(per):
            rows.append({"record_id": f"{p}-{r}", "patient_id": f"p{p}", "label": int(p % 3 == 0),
                         "site": f"s{p % 4}", "split": ["train", "train", "val", "test"][p % 4]})
    return pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)


def _patients(t, idx):
    return set(t["patient_id"].iloc[idx])


@pytest.mark.parametrize("cv", [
    {"method": "kfold", "folds": 5, "repeats": 2},
    {"method": "holdout", "ratios": [8, 1, 1]},
    {"method": "external", "test_sites": ["s3"]},
    {"method": "predefined", "column": "split"},
])
def test_every_split_is_grouped_by_patient(cv):
    t = _table()
    folds = make_folds(t, cv, "label", seed=1)
    for f in folds:
        parts = [_patients(t, f.train), _patients(t, f.test), _patients(t, f.val)]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    if cv["method"] == "kfold":
        assert len(folds) == 10
        for r in range(2):  # each patient is tested exactly once per repeat
            tested = np.concatenate([f.test for f in folds[5 * r:5 * r + 5]])
            assert sorted(tested) == list(range(len(t)))
            for f in folds[5 * r:5 * r + 5]:  # stratified: positive share within 0.1 of the cohort's
                assert abs(t["label"].iloc[f.test].mean() - t["label"].mean()) < 0.1
    if cv["method"] == "holdout":
        assert abs(len(folds[0].test) / len(t) - 0.1) < 0.05 and len(folds[0].val)
    if cv["method"] == "external":
        assert set(t["site"].iloc[folds[0].test]) == {"s3"}


@pytest.mark.parametrize("cv,message", [
    ({"method": "kfold", "folds": 50}, "only 40 patients"),
    ({"method": "external", "test_sites": ["nowhere"]}, "must name sites"),
    ({"method": "holdout", "ratios": [1, 1]}, "three numbers"),
    ({"method": "magic"}, "unknown cv.method"),
])
def test_split_errors(cv, message):
    with pytest.raises(CardioError, match=message):
        make_folds(_table(), cv, "label", seed=0)


def test_run_log_history_and_status_let_a_batch_job_be_watched(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=2", "--set", "report.figures=false",
               check=True)
    run = tmp_path / "r"
    log = (run / "run.log").read_text()
    assert "fold0-mlp epoch 1/2: train_loss" in log and "fold0-mlp epoch 2/2" in log
    history = pd.read_csv(run / "history" / "fold0-mlp.csv")
    assert list(history["epoch"]) == [1, 2] and {"train_loss", "lr"} <= set(history.columns)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["ended"] >= meta["started"]
    assert meta["versions"]["torch"] and meta["device_name"].startswith("CPU")


def test_resume_of_a_finished_run_writes_nothing(cardio_cli, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", check=True)
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    proc = cardio_cli("run", "--plugin", "toy", "--resume", "r")
    assert proc.returncode == 0 and "finished run" in proc.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == before


def test_a_failed_run_is_marked_and_can_be_resumed(cardio_cli, tmp_path):
    proc = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "subgroups=[nope]")
    assert proc.returncode == 2 and "subgroups" in proc.stderr
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and "nope" in meta["error"]
    again = cardio_cli("run", "--plugin", "toy", "--out", "r")
    assert again.returncode == 2 and "--resume r" in again.stderr


def test_a_resume_with_another_cache_names_the_runs_key_and_writes_nothing(cardio_cli, tmp_path):
    """run.json names the key of the run's pseudonyms (pseudonyms.key_id). A resume whose cache holds another key, or
    none, stops in one line: the folds done so far are read back through the run's key. Under another one the resume
    made a new key there, then stopped on the first fold it read back ("another cohort, or another pseudonym key"),
    advising to delete that fold. With the run's cache the same resume finishes."""
    from cardio.data.pseudonyms import key_id, pseudonym_key

    proc = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "subgroups=[nope]",
                      "--set", "report.figures=false")
    assert proc.returncode == 2
    recorded = json.loads((tmp_path / "r" / "run.json").read_text())["pseudonym_key"]
    assert recorded == key_id(pseudonym_key(tmp_path / "cache"))
    (tmp_path / "r" / "config.yaml").write_text((tmp_path / "r" / "config.yaml").read_text().replace("- nope", "- sex"))
    other = key_id(pseudonym_key(tmp_path / "other"))
    for cache, says in (("elsewhere", "does not exist"), ("other", f"holds key {other}")):
        res = cardio_cli("run", "--resume", "r", env={"CARDIO_CACHE": str(tmp_path / cache)})
        line = res.stderr.strip()
        assert res.returncode == 2 and line.count("\n") == 0, res.stderr
        assert f"r was pseudonymized with key {recorded} and {tmp_path / cache / 'pseudonym.key'} {says}" in line
    assert not (tmp_path / "elsewhere" / "pseudonym.key").exists()
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"
    cardio_cli("run", "--resume", "r", check=True)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "finished"


def test_command_line_for_people(cardio_cli, tmp_path):
    """run --help names the plugins, their profiles and an example; --device is checked; --resume needs no --plugin;
    the log says which fold of how many, and the time left."""
    help_text = cardio_cli("run", "--help", check=True).stdout
    assert "Installed plugins:" in help_text and "toy" in help_text and "Examples:" in help_text
    bad = cardio_cli("run", "--plugin", "toy", "--device", "gpu")
    assert bad.returncode == 2 and "--device 'gpu' is not a device" in bad.stderr and "\n" not in bad.stderr.strip()
    proc = cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "subgroups=[nope]",
                      "--set", "report.figures=false")  # its log is read
    assert proc.returncode == 2
    (tmp_path / "r" / "config.yaml").write_text((tmp_path / "r" / "config.yaml").read_text().replace("- nope", "- sex"))
    cardio_cli("run", "--resume", "r", check=True)
    log = (tmp_path / "r" / "run.log").read_text()
    assert "fold 1 of 5 (fold0)" in log and "fold 5 of 5 (fold4)" in log and " left" in log
    # a resumed run's time is its continuation's: the report says so, and validate's estimates never scale from it
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["first_started"] <= meta["started"] and meta["continuations"] == 1
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["resumed"] is True
    assert " s since the run was last resumed." in (tmp_path / "r" / "report.md").read_text().splitlines()[2]
    assert "is not kept for `cardio validate`'s estimates" in log and not (tmp_path / "cache" / "timings").exists()


def test_one_context_builder_resolves_a_device_name_to_a_torch_device(tmp_path):
    """new_context is the one place a RunContext is made (run, its tasks, validate, predict, fuse, tests): a device
    name becomes a torch.device there (fuse used to pass the string "cpu"), the cache folder is made."""
    import logging

    import torch

    from cardio.context import new_context

    ctx = new_context({"seed": 3, "cache_dir": str(tmp_path / "cache"), "device": "cuda"}, tmp_path,
                      logging.getLogger("test.context"), device="cpu")
    assert isinstance(ctx.device, torch.device) and ctx.device.type == "cpu"
    assert (ctx.seed, ctx.rank, ctx.world_size) == (3, 0, 1) and (tmp_path / "cache").is_dir()


def test_a_finished_run_keeps_no_checkpoints_unless_asked_and_counts_their_cost(cardio_cli, tmp_path):
    """Each fit task's checkpoints go once it is done (its done marker lists them, with the seconds, count and bytes
    its fits spent writing them), the rest at the run's end; run.json sums them. keep_checkpoints keeps them all."""
    sets = ["--set", "train.epochs=2", "--set", "cv.folds=2", "--set", "report.figures=false"]
    cardio_cli("run", "--plugin", "toy", "--out", "gone", *sets, check=True)
    cardio_cli("run", "--plugin", "toy", "--out", "kept", *sets, "--set", "train.keep_checkpoints=true", check=True)
    for name, kept in (("gone", False), ("kept", True)):
        run = tmp_path / name
        done = json.loads((run / "tasks" / "fit-fold0" / "done.json").read_text())["checkpoints"]
        # written by the engine's writer thread (background_s); what training waited is counted apart (seconds).
        # No comparison with fit_s: a 2-epoch fit is shorter than one write on a loaded machine (the overhead is
        # measured on the default runs, in the note)
        assert done["written"] >= 1 and done["bytes"] > 0 and done["seconds"] >= 0 and done["fit_s"] > 0
        assert done["background_s"] > 0
        assert set(done["files"]) == {"fold0-mlp.pt"}
        totals = json.loads((run / "run.json").read_text())["checkpoints"]
        # two folds and the final model, a checkpoint each at its end (checkpoint_every_s: 60 s)
        assert totals["files"] == 3 and totals["written"] >= 3 and totals["kept"] is kept
        assert totals["disk_bytes"] == 3 * done["files"]["fold0-mlp.pt"]
        left = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert left == (["final-mlp.pt", "fold0-mlp.pt", "fold1-mlp.pt"] if kept else []), left
    assert "checkpoints removed: " not in (tmp_path / "gone" / "run.log").read_text()  # each went with its task


def test_a_done_tasks_checkpoints_go_with_what_a_plugin_keeps_beside_them(tmp_path):
    """remove_checkpoints: a fit's <tag>.pt, <tag>.best.pt and a plugin's <tag>.<suffix> beside them (echo_cmr's
    <tag>.heads/) go; another fit's files, a spared task's, and a plugin's own outputs stay."""
    from cardio import tasks

    folder = tmp_path / "checkpoints"
    (folder / "fold0-net.heads").mkdir(parents=True)
    (folder / "fold0-net.heads" / "e1.pt").write_bytes(b"x" * 10)
    for name in ("fold0-net.pt", "fold0-net.best.pt", "fold0-net2.pt", "pretrain.pt", "pretrained-resnet18.pt"):
        (folder / name).write_bytes(b"x" * 100)
    cfg = {"cv": {"method": "holdout"}}
    for name, files in (("fit-fold0", ["fold0-net.pt", "fold0-net.best.pt", "pretrain.pt"]),
                        ("prepare", ["pretrain.pt"])):
        tasks.mark_done(tmp_path, name, cfg, 0.0, checkpoints={"fit_s": 1.0, "seconds": 0.1, "written": 1,
                                                               "bytes": 100, "files": dict.fromkeys(files, 100)})
    assert tasks.remove_checkpoints(tmp_path, ["fit-fold0"], spare=["prepare"]) == (3, 210)
    assert sorted(p.name for p in folder.iterdir()) == ["fold0-net2.pt", "pretrain.pt", "pretrained-resnet18.pt"]
    assert tasks.checkpoint_totals(tmp_path, ["prepare", "fit-fold0"])["files"] == 3  # as the markers say
