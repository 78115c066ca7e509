"""Run files family: what `cardio status`, `cardio report` and `cardio sweep` read from a run is read defensively.
A damaged or wrongly typed task marker, report.json, run.json, config.yaml or metrics.json is one line naming the file
and what to do; a run whose config.yaml was edited after it finished is not tested against permutations of another
config; and the advice for a damaged tested run never tells the user to remove their own run."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from cardio_testing.harness import check_refused, checksums, invoke

QUICK = ("--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "report.figures=false", "--set",
         "final_model=false", "--set", "stats.n_resamples=100", "--set", "explain=false")
SWEEP = ("sweep", "--plugin", "toy", *QUICK, "--grid", "cohort.permute_labels=true", "--seeds", "1")


@pytest.fixture(scope="module")
def finished(toy_env):
    res = invoke("run", "--plugin", "toy", *QUICK, "--out", "run")
    assert res.exit_code == 0, res.stderr[-2000:]
    return toy_env


def _copy(root: Path, name: str) -> Path:
    shutil.rmtree(root / name, ignore_errors=True)
    return Path(shutil.copytree(root / "run", root / name))


@pytest.mark.parametrize("edit,must_name", [
    (lambda d: d["sections"][0].update(figures=5), "section 1 ('Performance'): figures is 5, not a list"),
    (lambda d: d["sections"][0].update(tables={"t": {"columns": ["a"], "data": [[1, 2]]}}),
     "section 1 ('Performance'): table 't'"),
    (lambda d: d["meta"].pop("plugin"), "meta lacks plugin"),
    (lambda d: d.update(sections={}), "not a mapping with meta"),
])
def test_report_names_a_wrongly_typed_report_json(finished, edit, must_name):
    run = _copy(finished, "report_edit")
    doc = json.loads((run / "report.json").read_text())
    edit(doc)
    (run / "report.json").write_text(json.dumps(doc))
    before = checksums(run)
    res = invoke("report", str(run))
    check_refused(res, "report_edit/report.json: " + must_name)
    assert "restore it, or make the run again" in res.stderr and checksums(run) == before


def test_permutation_of_a_run_whose_config_was_edited_after_it_finished(finished):
    run = _copy(finished, "edited")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "seed": cfg["seed"] + 5}, sort_keys=False))  # a free key
    res = invoke(*SWEEP, "--permutation-of", "edited", "--out", "edited-null")
    check_refused(res, "edited/config.yaml was edited after the run finished")
    assert not (finished / "edited-null").exists()
    (run / "run.json").write_text("[1]")
    check_refused(invoke(*SWEEP, "--permutation-of", "edited", "--out", "edited-null"), "run.json holds a list")


def test_damaged_metrics_advice_spares_the_users_run(finished):
    run = _copy(finished, "tested")
    (run / "metrics.json").write_text('{"estimates": 3}')
    res = invoke(*SWEEP, "--permutation-of", "tested", "--out", "null")
    check_refused(res, "tested/metrics.json holds no list of estimates")
    assert "run under test" in res.stderr and "remove that run" not in res.stderr
    shutil.copy(finished / "run" / "metrics.json", run / "metrics.json")
    res = invoke(*SWEEP, "--permutation-of", "tested", "--out", "null")
    assert res.exit_code == 0, res.stderr[-2000:]
    # one of the sweep's own runs damaged: that one the same command remakes once removed
    (own,) = (finished / "null").glob("*/seed1/metrics.json")
    own.write_text("not json")
    res = invoke(*SWEEP, "--permutation-of", "tested", "--out", "null")
    check_refused(res, "seed1/metrics.json cannot be read")
    assert "remove that run's folder" in res.stderr
    (own.parent / "run.json").write_text("{")
    res = invoke(*SWEEP, "--permutation-of", "tested", "--out", "null")
    check_refused(res, "seed1/run.json is not valid JSON")
    assert "one of this sweep's runs: remove" in res.stderr


def test_status_names_each_damaged_run_file_and_what_to_do(cardio_cli, tmp_path):
    """issue 43: done.json holding a list, running.json with pid "abc", done.json damaged, tasks/ replaced by a file:
    each named in one line, never a traceback and never a silent "missing"."""
    cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "cv.folds=2",
               "--set", "final_model=false", "--set", "report.figures=false", check=True)
    run, tasks_dir = tmp_path / "r", tmp_path / "r" / "tasks"

    def row(task: str) -> str:
        proc = cardio_cli("status", "r")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        return next(line for line in proc.stdout.splitlines() if line.startswith(task + " "))

    (tasks_dir / "fit-fold0" / "done.json").write_text("[1, 2]")
    line = row("fit-fold0")
    assert line.split()[1] == "damaged" and "results stand" in line
    assert f"{Path('r', 'tasks', 'fit-fold0', 'done.json')} holds a JSON list" in line
    (tasks_dir / "fit-fold0" / "done.json").write_text('{"config_hash": ')
    assert "done.json is not valid JSON" in row("fit-fold0")
    (tasks_dir / "fit-fold1" / "done.json").unlink()
    (tasks_dir / "fit-fold1" / "running.json").write_text('{"pid": "abc", "host": "x"}')
    assert "running.json has pid 'abc', not a process id" in row("fit-fold1")
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "failed"}))
    assert f"`cardio run --resume {Path('r')}` runs fit-fold1 again" in row("fit-fold1")
    shutil.rmtree(tasks_dir)
    tasks_dir.write_text("")
    proc = cardio_cli("status", "r")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"{Path('r', 'tasks')} is a file, not the run's task folder" in proc.stderr


def test_status_says_which_tasks_a_cancelled_one_held_back(tmp_path):
    from cardio.execution.run import _explained
    from cardio.study import tasks

    cfg = {"cv": {"method": "kfold", "folds": 2}, "final_model": False}
    run = tmp_path / "r"
    for name in ("prepare", "fit-fold0"):
        tasks.mark_done(run, name, cfg, time.perf_counter())
    tasks.mark_cancelled(run, "fit-fold1", "SIGTERM")
    rows = _explained([(n, *tasks.state(run, n, cfg)) for n in tasks.task_names(cfg)], run, "submitted")
    assert [r[1] for r in rows] == ["done", "done", "cancelled", "missing"]
    assert rows[2][2].startswith("stopped by SIGTERM") and rows[3][2] == "not run: fit-fold1 cancelled"
    tasks.mark_running(run, "fit-fold1")  # a resume: the cancelled marker goes
    assert tasks.state(run, "fit-fold1", cfg)[0] == "running"
    tasks.mark_requeued(run, "fit-fold1", "USR2")
    assert tasks.state(run, "fit-fold1", cfg)[0] == "requeued"
