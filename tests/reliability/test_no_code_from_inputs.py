"""Round five (issue 58), code execution from inputs: nothing a user or another process can write is unpickled. A
handed-over run folder whose config.yaml points the cache inside it and asks for the local executor, with a pickle
planted at the cache entry its tasks read (case 1), and a pickle planted in the shared cache (case 2), run no code:
a resume takes the cache and the executor from the user's command, and the stages kept in the cache are read only
when sealed by the cache's own key (an HMAC under a key in the user's config folder, outside the cache)."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from cardio.data.cache import Cache
from cardio.study.stages import STUDY_VERSION
from cardio_testing.harness import check_refused, invoke

pytest.importorskip("submitit")

SETS = ["--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "explain=false", "--set", "report.figures=false",
        "--set", "final_model=false"]
LOCAL = ["--executor", "local", "--workers", "2"]


class Planted:
    """Unpickled, it touches a file: code that runs the moment pickle.load reads it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def plant(run: Path, cache: Path, marker: Path) -> Path:
    """A pickle at the cache entry the tasks of `run` read their stages from, its size record rewritten to match."""
    key = json.loads((run / "tasks" / "prepare" / "study.json").read_text())
    entry = Cache(cache).path("studies", key, ".pkl", version=STUDY_VERSION)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(pickle.dumps(Planted(marker)))
    entry.with_name(entry.name + ".entry.json").write_text(json.dumps({"bytes": entry.stat().st_size}))
    return entry


@pytest.fixture(scope="module")
def handed(toy_env):
    """A run made on the local executor with its cache inside its folder (`cache_dir: h/cache`), as its author
    would hand it over, and a run of the same config on the module's shared cache."""
    res = invoke("run", "--plugin", "toy", "--out", "h", *SETS, "--set", "cache_dir=h/cache", *LOCAL, cwd=toy_env)
    assert res.exit_code == 0, res.stderr[-3000:]
    res = invoke("run", "--plugin", "toy", "--out", "shared", *SETS, *LOCAL, cwd=toy_env)
    assert res.exit_code == 0, res.stderr[-3000:]
    return toy_env


def _handed_over(root: Path, name: str) -> Path:
    """A copy of the run, as its author hands it over (<name>/h, stopped after prepare), with a pickle planted at
    the entry of its own cache (h/cache, as its config.yaml says) that its fit tasks read their stages from."""
    where = root / name
    shutil.rmtree(where, ignore_errors=True)
    run = Path(shutil.copytree(root / "h", where / "h", ignore=shutil.ignore_patterns("submitit")))
    for task in (run / "tasks").iterdir():
        if task.name != "prepare":
            shutil.rmtree(task)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "failed"}))
    plant(run, run / "cache", where / "planted")
    return where


def test_a_handed_over_run_folder_runs_no_code_on_resume(handed):
    """Case 1: `--resume` took cache_dir and the executor from the folder's config and unpickled the planted file
    (it appeared, then `fit-fold1: AttributeError: 'int' object has no attribute 'cohort'`)."""
    where = _handed_over(handed, "x1")
    res = invoke("run", "--resume", "h", cwd=where)
    check_refused(res, "h/config.yaml sets cache_dir: h/cache; a resumed run takes its cache from your command")
    assert not (where / "planted").exists()
    # the user names that cache on the command line: the planted entry is not sealed by its key, so it is rebuilt
    res = invoke("run", "--resume", "h", "--set", "cache_dir=h/cache", *LOCAL, cwd=where)
    assert res.exit_code == 0, res.stderr[-3000:]
    assert not (where / "planted").exists()
    assert "not sealed by this cache's key" in res.stderr
    # the folder asked for the local executor; without --executor a resume runs inline, the default
    where = _handed_over(handed, "x2")
    res = invoke("run", "--resume", "h", "--set", "cache_dir=h/cache", cwd=where)
    assert res.exit_code == 0, res.stderr[-3000:]
    assert json.loads((where / "h" / "run.json").read_text())["executor"] == "inline"
    assert not (where / "planted").exists()


def test_a_pickle_planted_in_the_shared_cache_runs_no_code(handed, monkeypatch):
    """Case 2: a local-executor run of the same config read the planted entry (`studies/*.pkl`, its size record
    rewritten) and ran it."""
    marker = handed / "shared.planted"
    entry = plant(handed / "shared", handed / "cache", marker)
    monkeypatch.chdir(handed)
    res = invoke("run", "--plugin", "toy", "--out", "victim", *SETS, *LOCAL)
    assert res.exit_code == 0, res.stderr[-3000:]
    assert not marker.exists()
    assert f"cache entry {entry} is damaged, or not written by cardio" in res.stderr
    from cardio.data.cache import sealed

    key = Cache(handed / "cache").secret()
    assert key is not None and sealed(entry, key)  # rebuilt, sealed by the cache's own key


def test_the_cache_key_lives_outside_the_cache_and_seals_what_it_keeps(tmp_path, monkeypatch):
    """The family: a per-cache key in the user's config folder (mode 0600), one per cache; a seal made with another
    key, or an edited byte, does not unseal."""
    from cardio.data.cache import seal, unseal

    monkeypatch.setenv("CARDIO_CONFIG_DIR", str(tmp_path / "config"))
    a, b = Cache(tmp_path / "a"), Cache(tmp_path / "b")
    key = a.secret()
    assert key is not None and len(key) == 32 and a.secret() == key and b.secret() != key
    (file,) = [p for p in (tmp_path / "config" / "cache-keys").iterdir() if p.read_bytes() == key]
    assert file.stat().st_mode & 0o777 == 0o600 and not (tmp_path / "a").exists()
    blob = seal(b"stages", key)
    other = b.secret()
    assert other is not None and unseal(blob, key) == b"stages" and unseal(blob, other) is None
    assert unseal(blob[:-1] + b"x", key) is None and unseal(pickle.dumps(1), key) is None
    file.chmod(0o644)  # a key others can read is no longer the user's alone: nothing is kept sealed with it
    assert a.secret() is None


def test_each_executor_command_gets_a_job_folder_of_its_own(tmp_path):
    """submitit passes a job's call and result as pickles in its folder: each command's jobs go to a folder it made
    (mode 0700), never one a handed-over run folder already holds."""
    from cardio_cluster.executors import job_folder

    base = tmp_path / "tasks" / "submitit"
    (base / "4242").mkdir(parents=True)  # a planted job folder, named as a pid would name one
    cfg = {"executor": {"folder": None}}
    first, second = job_folder(cfg, base), job_folder(cfg, base)
    assert first.name == "%j" and first.parent != second.parent
    assert first.parent.parent == base and first.parent.stat().st_mode & 0o777 == 0o700
    assert not list(first.parent.iterdir())
