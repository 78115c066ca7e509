"""Round five (issue 58), output paths: `--out` is resolved once, to its real path, so that `x/nope/..`, a symlink
and the folder itself get the same answer; a folder that holds files is never written into by a new run, prediction,
sweep or cohort; a dangling symlink is one line; and a command that stops early removes only what it added, never
a folder it did not make (cases 3, 4, 5 and case 23's dangling --out)."""
from __future__ import annotations

import json

import pytest

from cardio_testing.harness import check_refused, checksums, invoke

FAST = ["--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "explain=false", "--set", "report.figures=false"]


@pytest.fixture(scope="module")
def victim(toy_env):
    """A finished toy run with its model bundle, and a user's folder of their own files."""
    res = invoke("run", "--plugin", "toy", "--out", "victim", *FAST, cwd=toy_env)
    assert res.exit_code == 0, res.stderr[-2000:]
    (toy_env / "userdata" / "notes").mkdir(parents=True)
    (toy_env / "userdata" / "thesis.tex").write_text("four years\n")
    (toy_env / "userdata" / "notes" / "a.txt").write_text("mine\n")
    return toy_env


def test_a_dotdot_spelling_never_deletes_the_users_folder(victim):
    """Case 3: `--out userdata/nope/..` with a cohort that does not exist printed the cohort's error, then deleted
    userdata/thesis.tex and userdata/notes/ (the early stop's cleanup removed a folder the run did not make)."""
    before = checksums(victim / "userdata")
    for out in ("userdata/nope/..", "userdata/nope/../nope2/..", "./userdata/notes/.."):
        res = invoke("run", "--plugin", "toy", "--set", "cohort.dir=no_such_cohort", "--out", out, cwd=victim)
        check_refused(res, "output directory userdata already holds files")
        assert checksums(victim / "userdata") == before and not (victim / "userdata" / "nope").exists()
    # a new folder behind a `..` is made, then removed again when the run stops on its input: that one and no other
    res = invoke("run", "--plugin", "toy", "--set", "cohort.dir=no_such_cohort", "--out", "fresh/nope/..", cwd=victim)
    check_refused(res, "cohort folder no_such_cohort does not exist")
    assert not (victim / "fresh").exists()
    # an empty folder of the user's, reached through a symlink: what the run added goes, the folder and link stay
    (victim / "mine_empty").mkdir()
    (victim / "link").symlink_to(victim / "mine_empty")
    res = invoke("run", "--plugin", "toy", "--set", "cohort.dir=no_such_cohort", "--out", "link", cwd=victim)
    check_refused(res, "cohort folder no_such_cohort does not exist")
    assert (victim / "mine_empty").is_dir() and not list((victim / "mine_empty").iterdir())
    assert (victim / "link").is_symlink()


def test_a_dotdot_spelling_onto_a_finished_run_rewrites_nothing(victim):
    """Case 4: `--out victim_run/nope/..` exited 0 and rewrote the run's metrics.json, report, run.json, run.log and
    done markers; with --seed 3 it exited 2 but left config.yaml at seed 3 and run.json "failed"."""
    before = checksums(victim / "victim")
    check_refused(invoke("run", "--plugin", "toy", "--out", "victim/nope/..", *FAST, cwd=victim),
                  "output directory victim already holds files")
    check_refused(invoke("run", "--plugin", "toy", "--out", "victim/nope/..", *FAST, "--seed", "3", cwd=victim),
                  "output directory victim already holds files")
    (victim / "to_victim").symlink_to(victim / "victim")
    check_refused(invoke("run", "--plugin", "toy", "--out", "to_victim", *FAST, cwd=victim), "already holds files")
    check_refused(invoke("predict", "--model", "victim", "--cohort", "userdata", "--out", "victim/nope/..", cwd=victim),
                  "already holds files")
    assert checksums(victim / "victim") == before and not (victim / "victim" / "nope").exists()
    assert json.loads((victim / "victim" / "run.json").read_text())["status"] == "finished"


def test_a_sweep_never_writes_into_a_folder_not_its_own(victim):
    """Case 5: `cardio sweep --out` into a user's folder replaced its summary.csv and rewrote its sweep.json, exit 0."""
    (victim / "mine").mkdir()
    (victim / "mine" / "summary.csv").write_text("my,table\n")
    (victim / "mine" / "sweep.json").write_text('{"plugin": "toy", "grid": ["model.hidden=64"]}')
    (victim / "papers").mkdir()
    (victim / "papers" / "draft.md").write_text("mine\n")
    before = checksums(victim / "mine", victim / "papers")
    sweep = ("sweep", "--plugin", "toy", *FAST, "--grid", "model.hidden=8")
    check_refused(invoke(*sweep, "--out", "mine", cwd=victim), "its sweep.json is of another sweep")
    check_refused(invoke(*sweep, "--out", "papers/x/..", cwd=victim), "it has no sweep.json")
    assert checksums(victim / "mine", victim / "papers") == before
    assert sorted(p.name for p in (victim / "mine").iterdir()) == ["summary.csv", "sweep.json"]


@pytest.mark.parametrize("command", ["run", "predict", "sweep", "synthetic-crt"])
def test_a_dangling_symlink_out_is_one_line(victim, command):
    """Case 23: `--out` a dangling symlink gave a FileExistsError traceback in run and predict."""
    link = victim / f"dangling-{command}"
    link.unlink(missing_ok=True)
    link.symlink_to(victim / "nowhere" / command)
    args = {"run": ("run", "--plugin", "toy", *FAST),
            "predict": ("predict", "--model", "victim", "--cohort", "userdata"),
            "sweep": ("sweep", "--plugin", "toy", *FAST, "--grid", "model.hidden=8"),
            "synthetic-crt": ("synthetic-crt", "--plugins", "toy,ecg_transfer", "--patients", "20")}[command]
    res = invoke(*args, "--out", link.name, cwd=victim)
    check_refused(res, f"--out {link.name}: {link.name} is a symbolic link to {victim / 'nowhere' / command}, which "
                       "does not exist")
    assert not (victim / "nowhere").exists() and link.is_symlink()
