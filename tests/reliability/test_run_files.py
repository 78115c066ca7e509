"""Run files family: what `cardio report` and `cardio sweep` read from a finished run is read defensively. A damaged
or wrongly typed report.json, run.json, config.yaml or metrics.json is one line naming the file and what to do; a
run whose config.yaml was edited after it finished is not tested against permutations of another config; and the
advice for a damaged tested run never tells the user to remove their own run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cardio.testing import check_refused, checksums, invoke

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
