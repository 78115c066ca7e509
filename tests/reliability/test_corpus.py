"""The bad-input corpus: every case is exit code 2, one line on stderr naming the file or key, no
traceback, and nothing already written changes (checksums of a finished run and the cache before
and after). Plugin-specific cases (WFDB, DICOM, cohort CSVs) live beside the plugins' tests and use the same
`cardio_testing.harness.check_refused` and `checksums`.
"""
from __future__ import annotations

import json
import pickle
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from cardio_testing.harness import check_refused, checksums


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, toy_site):
    """A finished toy run, made once; each case gets a copy."""
    import sys

    from cardio_testing.harness import invoke

    where = tmp_path_factory.mktemp("finished")
    sys.path.insert(0, str(toy_site))
    try:  # the cache through the environment, as a user's: a resume takes it from the user, never the run's config
        with pytest.MonkeyPatch.context() as m:
            m.setenv("CARDIO_CACHE", str(where / "cache"))
            res = invoke("run", "--plugin", "toy", "--out", str(where / "prev"), "--set", "train.epochs=1",
                         "--set", "train.keep_checkpoints=true")  # to poison
    finally:
        sys.path.remove(str(toy_site))
    assert res.exit_code == 0, res.stderr
    return where / "prev"


def _write(tmp: Path, name: str, content: str | bytes) -> None:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _tamper_run_json(tmp: Path, text: str) -> None:
    (tmp / "prev" / "run.json").write_text(text)


def _unfinish_and_poison_checkpoint(tmp: Path) -> None:
    meta = json.loads((tmp / "prev" / "run.json").read_text())
    (tmp / "prev" / "run.json").write_text(json.dumps({**meta, "status": "failed"}))
    for ck in (tmp / "prev" / "checkpoints").glob("*.pt"):
        ck.write_bytes(pickle.dumps({"model": Fraction(1, 3)}))  # any object weights_only must refuse
    for done in (tmp / "prev" / "tasks").glob("fit-*/done.json"):
        done.unlink()  # the fits are not done: the resume loads their checkpoints


# (id, setup(tmp) or None, args, what the one line must name); a resumed run that then fails may
# update its own run.json and run.log (that is how it records the failure), nothing else.
CASES = [
    ("config-missing", None, ["run", "--plugin", "toy", "--config", "nope.yaml"], "nope.yaml"),
    ("config-bad-yaml", lambda t: _write(t, "c.yaml", "a: [1, 2\n"), ["run", "--plugin", "toy", "--config", "c.yaml"],
     "c.yaml"),
    ("config-tag", lambda t: _write(t, "c.yaml", "seed: !!python/object/apply:os.system [id]\n"),
     ["run", "--plugin", "toy", "--config", "c.yaml"], "tags are not allowed"),
    ("config-not-mapping", lambda t: _write(t, "c.yaml", "- 1\n"), ["run", "--plugin", "toy", "--config", "c.yaml"],
     "c.yaml"),
    ("config-binary", lambda t: _write(t, "c.yaml", b"\xff\xfe\x00garbage"), ["run", "--plugin", "toy",
                                                                             "--config", "c.yaml"], "c.yaml"),
    ("config-unknown-key", lambda t: _write(t, "c.yaml", "trian: {epochs: 2}\n"),
     ["run", "--plugin", "toy", "--config", "c.yaml"], "trian"),
    ("set-wrong-type", None, ["run", "--plugin", "toy", "--set", "train.epochs=lots"], "train.epochs"),
    ("set-no-equals", None, ["run", "--plugin", "toy", "--set", "train.epochs"], "key=value"),
    ("set-unknown-key", None, ["run", "--plugin", "toy", "--set", "train.lrr=1"], "train.lrr"),
    ("set-tag", None, ["run", "--plugin", "toy", "--set", "seed=!!python/name:os.system"], "seed"),
    ("folds-1", None, ["run", "--plugin", "toy", "--set", "cv.folds=1"], "cv.folds"),
    ("folds-negative", None, ["run", "--plugin", "toy", "--set", "cv.folds=-2"], "cv.folds"),
    ("folds-too-many", None, ["run", "--plugin", "toy", "--set", "cv.folds=500"], "cv.folds=500"),
    ("seed-negative", None, ["run", "--plugin", "toy", "--seed", "-1"], "seed"),
    ("device-tpu", None, ["run", "--plugin", "toy", "--device", "tpu"], "device"),
    ("batch-size-0", None, ["run", "--plugin", "toy", "--set", "train.batch_size=0"], "train.batch_size"),
    ("level-1.5", None, ["run", "--plugin", "toy", "--set", "stats.level=1.5"], "stats.level"),
    ("resamples-5", None, ["run", "--plugin", "toy", "--set", "stats.n_resamples=5"], "stats.n_resamples"),
    ("cv-method", None, ["run", "--plugin", "toy", "--set", "cv.method=loo"], "cv.method"),
    ("holdout-ratios", None, ["run", "--plugin", "toy", "--set", "cv.method=holdout", "--set", "cv.ratios=[1, 1]"],
     "cv.ratios"),
    ("profile-unknown", None, ["run", "--plugin", "toy", "--set", "profile=fast"], "profile"),
    ("optimizer-unknown", None, ["run", "--plugin", "toy", "--set", "train.optimizer=adamx"], "train.optimizer"),
    ("plugin-unknown", None, ["run", "--plugin", "nope"], "nope"),
    ("plugin-broken", None, ["run", "--plugin", "broken"], "broken"),
    ("plugin-incomplete", None, ["run", "--plugin", "incomplete"], "incomplete"),
    ("plugin-addon", None, ["run", "--plugin", "toy_addon"], "toy_addon"),
    ("out-exists", None, ["run", "--plugin", "toy", "--out", "prev"], "prev"),
    ("resume-with-set", None, ["run", "--plugin", "toy", "--resume", "prev", "--set", "seed=2"], "--resume"),
    ("resume-not-a-run", lambda t: (t / "empty").mkdir(), ["run", "--plugin", "toy", "--resume", "empty"], "empty"),
    ("resume-bad-run-json", lambda t: _tamper_run_json(t, "{not json"), ["run", "--plugin", "toy", "--resume", "prev"],
     "run.json"),
    ("resume-foreign-run-json", lambda t: _tamper_run_json(t, "[1, 2]"), ["run", "--plugin", "toy", "--resume", "prev"],
     "run.json"),
    ("resume-other-plugin", lambda t: _tamper_run_json(t, '{"plugin": "ecg_transfer"}'),
     ["run", "--plugin", "toy", "--resume", "prev"], "ecg_transfer"),
    ("resume-pickled-checkpoint", _unfinish_and_poison_checkpoint, ["run", "--plugin", "toy", "--resume", "prev"],
     "not a readable cardio checkpoint"),
    ("report-no-json", lambda t: (t / "empty").mkdir(), ["report", "empty"], "report.json"),
    ("report-bad-json", lambda t: (t / "prev" / "report.json").write_text("{"), ["report", "prev"], "report.json"),
    ("report-incomplete", lambda t: (t / "prev" / "report.json").write_text('{"meta": {}, "sections": []}'),
     ["report", "prev"], "report.json"),
    ("new-plugin-caps", None, ["new-plugin", "My-Plugin"], "My-Plugin"),
    ("new-plugin-keyword", None, ["new-plugin", "class"], "keyword"),
    ("new-plugin-stdlib", None, ["new-plugin", "json"], "standard-library"),
    ("new-plugin-installed", None, ["new-plugin", "toy"], "installed plugin"),
    ("new-plugin-unwritable", lambda t: _write(t, "afile", "x"), ["new-plugin", "fresh", "--dir", "afile/sub"],
     "afile"),
    ("data-unknown", None, ["data", "fetch", "nope", "--dir", "d"], "nope"),
]


@pytest.mark.parametrize("case_id,setup,args,names", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(cardio_cli, finished_run, tmp_path, case_id, setup, args,
                                                         names):
    shutil.copytree(finished_run, tmp_path / "prev")
    shutil.copytree(finished_run.parent / "cache", tmp_path / "cache", dirs_exist_ok=True)
    if setup is not None:
        setup(tmp_path)
    before = checksums(tmp_path)
    proc = cardio_cli(*args)
    check_refused(proc, names)
    after = checksums(tmp_path)
    resumed = case_id.startswith("resume-")
    # a resumed run records its progress: run.json, run.log and its tasks' markers and logs
    markers = [str(p) for p in (tmp_path / "prev" / "tasks").glob("*/*") if p.name in
               ("done.json", "running.json", "failed.json", "task.log")] if resumed else []
    may_change = {str(tmp_path / "prev" / n) for n in ("run.json", "run.log")} | set(markers) if resumed else set()
    changed = [f for f, digest in before.items() if after.get(f) != digest and f not in may_change]
    assert not changed, f"a refused command changed files that were already written: {changed}"


def test_report_html_carries_no_markup_from_the_run_and_no_file_from_outside(cardio_cli, finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "prev")
    doc = json.loads((tmp_path / "prev" / "report.json").read_text())
    doc["sections"][0]["text"] = "<script>alert(1)</script>"
    doc["sections"][0]["title"] = "<img src=x onerror=alert(2)>"
    next(iter(doc["sections"][0]["tables"].values()))["data"][0][0] = "<script>alert(3)</script>"
    doc["sections"][0]["figures"] = ["/etc/hostname", "../../outside.png", doc["sections"][0]["figures"][0]]
    (tmp_path / "prev" / "report.json").write_text(json.dumps(doc))
    cardio_cli("report", "prev", check=True)
    html = (tmp_path / "prev" / "report.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html and "&lt;script&gt;alert(1)" in html
    hostname = Path("/etc/hostname")
    if hostname.exists():
        import base64

        # as an embedded file it would be a data URI of its own (a short name's base64, "dm0K" for "vm", also turns
        # up by chance inside the figures' own base64)
        assert f"base64,{base64.b64encode(hostname.read_bytes()).decode()}\"" not in html
    assert "not embedded: it does not lie in the run directory" in html
    # every figure that belongs to the run, and neither of the two from outside it
    assert html.count("data:image/") == sum(len(s["figures"]) for s in doc["sections"]) - 2
