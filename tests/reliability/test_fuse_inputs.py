"""Fuse inputs family: fuse joins different runs of one cohort. A run fused with itself, with a copy of itself
(patient ids edited or not), or with a run whose patients are not the cohort's is refused in one line; damaged run
files (run.json, config.yaml, a fold's predictions.npz) are named with what to do; a good fusion says how many
patients it fused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cardio_testing.harness import check_refused, checksums, invoke

N = 80
RUN = ("--set", "label=responder", "--set", "cv.folds=3", "--set", "cv.inner_folds=2", "--set", "train.epochs=2",
       "--set", "data.n_features=4", "--set", "final_model=false", "--set", "explain=false",
       "--set", "report.figures=false", "--set", "stats.n_resamples=100")


@pytest.fixture(scope="module")
def two_runs(toy_env):
    """Runs of two modalities (the toy plugin on two cohort folders) of one 80-patient cohort."""
    from cardio import plugins
    from cardio.config import plugin_settings, resolve
    from cardio_fusion.synthetic import latent

    table, _ = latent(N, 5, ["ecg", "echo"], "planted")
    pm = plugins.select(plugins.get_plugin_manager(), "toy")
    cfg = resolve(plugins.info(pm, "toy").default_config, None, ("data.n_features=4", "data.signal=2.5"))
    for i, m in enumerate(["ecg", "echo"]):
        part = table[["patient_id", "responder", f"drive_{m}"]].rename(columns={f"drive_{m}": "drive"})
        pm.hook.cardio_write_synthetic(patients=part, dest=toy_env / "cohort" / m, seed=i, config=cfg,
                                       settings=plugin_settings(plugins.info(pm, "toy"), cfg))
        table[["patient_id", "responder"]].to_csv(toy_env / "cohort" / "patients.csv", index=False)
        res = invoke("run", "--plugin", "toy", "--out", m, "--set", f"cohort.dir={toy_env / 'cohort' / m}",
                     "--set", f"cv.patients={toy_env / 'cohort' / 'patients.csv'}", *RUN)
        assert res.exit_code == 0, res.stderr[-2000:]
    return toy_env


def _copy(root: Path, run: str, name: str) -> Path:
    shutil.rmtree(root / name, ignore_errors=True)
    return Path(shutil.copytree(root / run, root / name))


def _edit_npz(path: Path, edit) -> None:
    """Rewrite a kept predictions file with `edit(columns, arrays)` applied, as someone editing it would."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    columns = json.loads(str(arrays["columns"]))
    edit(columns, arrays)
    arrays["columns"] = np.array(json.dumps(columns))
    np.savez(path, **arrays)


def _fuse(root: Path, *runs: str, out: str = "fused"):
    shutil.rmtree(root / out, ignore_errors=True)
    before = checksums(*(root / r for r in runs))
    names = [a for r in dict.fromkeys(runs) for a in ("--name", f"{r}={r}")]
    res = invoke("fuse", *runs, *names, "--out", out)
    assert checksums(*(root / r for r in runs)) == before  # fuse never writes into its input runs
    return res


def test_a_good_fusion_says_how_many_patients_it_fused(two_runs):
    res = _fuse(two_runs, "ecg", "echo")
    assert res.exit_code == 0, res.stderr[-2000:]
    assert f"{N} patients fused, {N} with every modality (patients per run: ecg {N}, echo {N})" in res.stderr
    meta = json.loads((two_runs / "fused" / "metrics.json").read_text())
    assert meta["n_patients"] == N and meta["n_records"] == N


def test_a_run_fused_with_itself_or_a_copy_is_refused(two_runs):
    check_refused(_fuse(two_runs, "ecg", "ecg"), "given twice")
    _copy(two_runs, "ecg", "ecg_copy")
    check_refused(_fuse(two_runs, "ecg", "ecg_copy"), "a copy of one run")
    assert not (two_runs / "fused").exists()


def test_a_copy_with_edited_patient_ids_is_refused(two_runs):
    copy = _copy(two_runs, "ecg", "ecg_edited")

    def rename(columns, arrays):
        i = next(k for k, c in enumerate(columns) if c["name"] == "patient_id")
        arrays[f"c{i}"] = np.array([f"X{v}" for v in arrays[f"c{i}"]])

    for npz in copy.glob("tasks/fit-*/*.npz"):
        _edit_npz(npz, rename)
    check_refused(_fuse(two_runs, "ecg", "ecg_edited"), "a copy of one run")
    check_refused(_fuse(two_runs, "echo", "ecg_edited"), f"ecg_edited: {N} of its {N} patients are not in cv.patients")


def test_damaged_run_files_are_named(two_runs):
    copy = _copy(two_runs, "echo", "echo_damaged")
    (copy / "run.json").write_text('{"plugin": "toy", "stat')
    check_refused(_fuse(two_runs, "ecg", "echo_damaged"), "echo_damaged/run.json is not valid JSON")
    (copy / "run.json").write_text("[1, 2]")
    check_refused(_fuse(two_runs, "ecg", "echo_damaged"), "echo_damaged/run.json holds a list")
    shutil.copy(two_runs / "echo" / "run.json", copy / "run.json")
    (copy / "config.yaml").write_text("cv: 5\n")
    check_refused(_fuse(two_runs, "ecg", "echo_damaged"), "echo_damaged/config.yaml lacks")


def test_a_wrongly_typed_predictions_file_is_named(two_runs):
    copy = _copy(two_runs, "echo", "echo_bogus")
    npz = copy / "tasks" / "fit-fold0" / "predictions.npz"

    def bogus(columns, arrays):
        next(c for c in columns if c["name"] == "y_score")["dtype"] = "bogus"

    _edit_npz(npz, bogus)
    res = _fuse(two_runs, "ecg", "echo_bogus")
    check_refused(res, "echo_bogus/tasks/fit-fold0/predictions.npz")
    assert "make it again with its config.yaml" in res.stderr
