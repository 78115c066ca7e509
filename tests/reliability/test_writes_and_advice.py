"""Round five (issue 58): advice that is true, refusals that come first, and writes that survive a full disk.
Predict's resume advice named an option predict does not have, and following it trained a model in the prediction's
folder (case 16); a full disk hid the write that failed behind the failed marker's, and keygen left an empty key
(case 22); `sweep --permutation-of` refused the run under test only after its permutations had run (case 24).

The full disk is a fault injected at the write call (ENOSPC raised where the file's bytes are written), not a small
file system: a test may not mount one."""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from cardio.data import cache
from cardio_testing.harness import check_refused, checksums, invoke

FAST = ["--set", "train.epochs=1", "--set", "cv.folds=2", "--set", "explain=false", "--set", "report.figures=false"]


@pytest.fixture(scope="module")
def finished(toy_env):
    """A finished toy run with its bundle, and a prediction of it on its own cohort folder."""
    from cardio_toy.plugin import synthetic_table

    (toy_env / "site").mkdir()
    synthetic_table({"n_patients": 20, "n_features": 16, "records_per_patient": 1, "signal": 1.5}, 3).to_csv(
        toy_env / "site" / "cohort.csv", index=False)
    for args in (("run", "--plugin", "toy", "--out", "run", *FAST),
                 ("predict", "--model", "run", "--cohort", "site", "--out", "pred")):
        res = invoke(*args, cwd=toy_env)
        assert res.exit_code == 0, res.stderr[-2000:]
    return toy_env


def test_a_stopped_prediction_is_not_advised_a_resume(finished):
    """Case 16: an interrupted `cardio predict` said "continue it with --resume"; predict has none, and `cardio run
    --resume` on the folder then trained a cross-validated model in it, exit 0, its run.json still of kind predict."""
    meta = json.loads((finished / "pred" / "run.json").read_text())
    (finished / "pred" / "run.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    before = checksums(finished / "pred")
    res = invoke("predict", "--model", "run", "--cohort", "site", "--out", "pred", cwd=finished)
    check_refused(res, "output directory pred holds a prediction that stopped before its end (cardio predict has no "
                       "resume")
    assert "--resume" not in res.stderr
    check_refused(invoke("run", "--resume", "pred", cwd=finished), "pred is a prediction (cardio predict), not a run")
    check_refused(invoke("run", "--plugin", "toy", "--out", "pred", *FAST, cwd=finished), "holds a prediction")
    assert checksums(finished / "pred") == before and not (finished / "pred" / "tasks").exists()


@contextmanager
def _full_disk_from(name: str):
    """From the first atomic write of a file named `name` on, every atomic write fails with ENOSPC (the disk is full:
    a write of new blocks fails, a rewrite inside a file's own block does not)."""
    real, full = cache.atomic_path, []

    @contextmanager
    def filling(path):
        with real(path) as tmp:
            if Path(path).name == name:
                full.append(path)
            if full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
            yield tmp

    with pytest.MonkeyPatch.context() as m:
        m.setattr(cache, "atomic_path", filling)
        yield


def test_a_full_disk_names_the_first_write_that_failed(cardio_cli, tmp_path):
    """Case 22: "no space left on device while writing .../failed.json" hid the write that failed first, and no
    failed marker was left."""
    with _full_disk_from("metrics.json"):
        res = cardio_cli("run", "--plugin", "toy", "--out", "r", *FAST)
    check_refused(res, "no space left on device while writing r/metrics.json")
    failed = json.loads((tmp_path / "r" / "tasks" / "evaluate" / "failed.json").read_text())
    assert "while writing r/metrics.json" in failed["error"]
    assert not (tmp_path / "r" / "tasks" / "evaluate" / "running.json").exists()
    assert "while writing r/metrics.json" in json.loads((tmp_path / "r" / "run.json").read_text())["error"]


def test_keygen_on_a_full_disk_leaves_no_empty_key(cardio_cli, tmp_path, monkeypatch):
    """Case 22: keygen on a full disk left a 0-byte private key, and a retry said "already exists"."""
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    key = tmp_path / "keys" / "signing_key"
    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", lambda fd, *a, **k: Full(real(fd, *a, **k)))
        res = cardio_cli("keygen", "--out", str(key))
    check_refused(res, f"no space left on device while writing {key}")
    assert not key.exists() and not list(key.parent.iterdir())
    res = cardio_cli("keygen", "--out", str(key))  # the disk has room again: the retry makes the pair
    assert res.returncode == 0, res.stderr
    assert key.stat().st_size > 0 and key.stat().st_mode & 0o777 == 0o600 and key.with_suffix(".pub").exists()


@pytest.mark.parametrize("damage,must_name", [
    (lambda run: (run / "metrics.json").write_text("{"), "metrics.json cannot be read"),
    (lambda run: None, "the run reports no pooled mae"),
], ids=["damaged-metrics", "metric-not-reported"])
def test_permutation_of_is_refused_before_the_permutations_run(finished, damage, must_name):
    """Case 24: refused correctly, but only after the permutations had run (114 s)."""
    import shutil

    shutil.rmtree(finished / "tested", ignore_errors=True)
    shutil.copytree(finished / "run", finished / "tested")
    damage(finished / "tested")
    extra = ["--select-metric", "mae"] if "mae" in must_name else []
    res = invoke("sweep", "--plugin", "toy", *FAST, "--grid", "cohort.permute_labels=true", "--seeds", "1",
               "--seeds", "2", "--permutation-of", "tested", "--out", "perm", *extra, cwd=finished)
    check_refused(res, must_name)
    assert not (finished / "perm").exists()  # no permuted run was made
