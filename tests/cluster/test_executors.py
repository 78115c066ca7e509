"""A run as tasks on every executor: inline and local (2 workers) give the same metrics.json; a killed fold task
is what a rerun of the same command submits, and it ends with the same metrics; the sbatch scripts submitit
renders for SLURM (array size, cap, dependencies, signal); cardio's GPU throttle never puts two tasks on one GPU."""
from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

from cardio import CardioError  # noqa: E402
from cardio.study import tasks  # noqa: E402
from cardio_cluster import claims, executors  # noqa: E402
from cardio_testing.harness import run_plugin  # noqa: E402

SPECT = ("spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=20", "spect_polar.synthetic.size=40",
         "spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
         "spect_polar.autoencoder.iterations=40", "cv.folds=3", "stats.n_resamples=200", "report.figures=false")
# Pretraining on five MIT-BIH records for one epoch: the prepare task's result is read back by every fit task.
ECG = ("ecg_transfer.synthetic.n_patients=24", "cv.folds=2",
       "ecg_transfer.pretrain.records=['101','106','108','109','112']",
       "ecg_transfer.pretrain.max_beats_per_class=20", "ecg_transfer.pretrain.max_eval_beats=100",
       "ecg_transfer.pretrain.epochs=1", "ecg_transfer.finetune.epochs=1", "ecg_transfer.baselines.rf.n_estimators=20",
       "ecg_transfer.baselines.threshold_cv=2", "ecg_transfer.baselines.svm.enabled=false", "stats.n_resamples=100",
       "report.figures=false", "final_model=false",
       # one torch thread inline as in each local task (2 CPUs / 2 workers): sums over threads round differently
       "train.cpu_threads=1")


def _metrics(run: Path) -> dict:
    out = json.loads((run / "metrics.json").read_text())
    out.pop("elapsed_s")  # how long it took, and whether it was resumed, are the things allowed to differ
    out.pop("resumed")
    return out


def _same_run(a: Path, b: Path) -> None:
    assert _metrics(a) == _metrics(b)
    assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()


@pytest.mark.parametrize("plugin,sets", [("spect_polar", SPECT), ("ecg_transfer", ECG)], ids=["spect", "ecg"])
def test_inline_and_local_give_the_same_metrics(plugin, sets, tmp_path, monkeypatch):
    pytest.importorskip(f"cardio_{plugin}")
    if plugin == "ecg_transfer" and not (Path(os.environ.get("CARDIO_DATA", "")) / "mitdb" / "101.atr").exists():
        pytest.skip("MIT-BIH not found under $CARDIO_DATA/mitdb")
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
    inline = run_plugin(plugin, tmp_path / "inline", sets=sets)
    local = run_plugin(plugin, tmp_path / "local", sets=(*sets, "executor.name=local", "executor.workers=2"))
    _same_run(inline, local)
    names = tasks.task_names(tasks_config(local))
    folds = [n for n in names if n.startswith("fit-")]
    # featurized (spect: its phase analysis) once, by prepare: the worker process reads the stages back once, for
    # its first task, and keeps them for the next; the run's own process fits the explaining fold first, and any
    # other fold it claims, on the stages it built
    log = (local / "run.log").read_text()
    here = sorted((n for n in folds if f"task {n} here" in log), key=lambda n: log.index(f"task {n} here"))
    assert here[0] == folds[-1] and not (local / "tasks" / folds[-1] / "task.log").exists(), log[:3000]
    # the worker's tasks in the order it started them (on CPU slots the final model first, where there is one; with
    # short fits the run's process may have fitted every fold)
    started = {n: json.loads((local / "tasks" / n / "done.json").read_text()) for n in names}
    worker = sorted((n for n in names if n not in (*here, "prepare", "evaluate")),
                    key=lambda n: started[n]["ended_at"] - started[n]["elapsed_s"])
    logs = [(local / "tasks" / n / "task.log").read_text() for n in worker]
    for worker_log in logs:
        assert "stage featurize" not in worker_log
        assert "read from the cache" in worker_log or "as this process read them" in worker_log
    assert not logs or "read from the cache" in logs[0], logs[0][:2000]
    # prepare and evaluate in the run's own process, on the one build of the stages before the folds
    assert log.count("stage featurize") == 1 and "read from the cache" not in log, log[:3000]
    assert "task prepare here" in log and "task evaluate here" in log
    assert not (local / "tasks" / "evaluate" / "task.log").exists()
    assert all((local / "tasks" / n / "done.json").exists() for n in names)
    assert {n for n in names if n.startswith("fit-")} == {p.parent.name for p in
                                                          (local / "tasks").glob("fit-*/predictions.npz")}


def tasks_config(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


# The executors' tests' run: two folds of 8 epochs of a narrow MLP, a checkpoint each epoch. What keeps a fit mid-way
# where a test kills it, or while evaluate starts beside the final model, is the toy's hold ($CARDIO_TOY_HOLD), not its
# length (these tests once fitted 60 epochs of a wide one, then slept ~20 s a fit, for that).
HELD = ["--set", "cv.folds=2", "--set", "data.n_patients=400", "--set", "data.n_features=64", "--set",
        "model.hidden=32", "--set", "train.epochs=8", "--set", "train.batch_size=16", "--set", "final_model=false",
        "--set", "report.figures=false", "--set", "stats.n_resamples=200", "--set", "train.cpu_threads=1",
        "--set", "train.checkpoint_every_s=0"]  # a checkpoint every epoch: a SIGKILL leaves one to resume from


def _cli(tmp_path: Path, toy_site: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
           "CARDIO_CACHE": str(tmp_path / "cache"), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "cardio.cli", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(proc, running: Path, ready, seconds: float = 400) -> int:
    """SIGKILL to the process of the task whose running marker is `running`, once ready() (mid-fit); its pid."""
    deadline = time.time() + seconds
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    pid = json.loads(running.read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the fold's own process, mid-fit, as the OOM killer or a kill -9 would
    return pid


def _kill_twice(proc, run: Path, task: str, checkpoint: str) -> None:
    """kill -9 to `task`'s process at its first checkpoint, then to the process that runs it again, once that one
    has written its own checkpoint."""
    running, ckpt = run / "tasks" / task / "running.json", run / "checkpoints" / checkpoint
    first = _kill_when(proc, running, ckpt.exists)
    killed_at = time.time()

    def refitting() -> bool:
        """the redone task's own checkpoint"""
        try:
            return json.loads(running.read_text())["pid"] != first and ckpt.stat().st_mtime > killed_at
        except (OSError, ValueError, KeyError):
            return False
    _kill_when(proc, running, refitting)


def test_a_lost_worker_is_redone_once_then_a_rerun_submits_only_the_rest(toy_site, tmp_path):
    """kill -9 of a local worker: a log line says it was lost and its task runs again from its checkpoint; lost
    twice, the run stops naming the task, and the same command again runs only the tasks without a done marker.
    The run's own process fits the explaining fold (fold1) on the stages it built; the worker's tasks read them
    back from the cache, on its share of the CPUs."""
    # every fit held at its second epoch (the toy's $CARDIO_TOY_HOLD) until both kills are done: the worker takes
    # fold0 while the run's process still fits fold1, and each kill lands mid-fit, whatever the machine's load; the
    # rerun and the reference fit at full speed
    sets = HELD  # 8 epochs
    local = ["run", "--plugin", "toy", "--out", "r", *sets, "--executor", "local", "--workers", "2"]
    hold = tmp_path / "hold"
    hold.touch()
    proc = _cli(tmp_path, toy_site, *local, env={"CARDIO_TOY_HOLD": str(hold)})
    run = tmp_path / "r"
    try:
        _kill_twice(proc, run, "fit-fold0", "fold0-mlp.pt")
    finally:
        hold.unlink()  # fold1, in the run's process, goes on
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2 and "fit-fold0" in err.strip().splitlines()[-1], err[-2000:]
    assert err.count("task fit-fold0: its worker was lost (process") == 1 and "running the task again" in err, err
    status, why = _cli(tmp_path, toy_site, "status", "r").communicate()
    assert [line.split()[:2] for line in status.splitlines()[1:]] == [
        ["prepare", "done"], ["fit-fold0", "failed"], ["fit-fold1", "done"], ["evaluate", "missing"]], status + why
    assert "not run: fit-fold0 failed" in status.splitlines()[-1]
    kept = {n: (run / "tasks" / n / "done.json").stat().st_mtime_ns for n in ("prepare", "fit-fold1")}
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    log = (run / "tasks" / "fit-fold0" / "task.log").read_text()
    assert log.count("fold0-mlp: resuming after epoch") == 1, log  # the redone task, in a worker of its own
    assert "read from the cache" in log and "stage featurize" not in log, log
    assert f"{threads} CPU thread(s)" in log.splitlines()[0]
    assert not (run / "tasks" / "fit-fold1" / "task.log").exists()
    assert f"task fit-fold1 here, in the run's process, {threads} CPU thread(s)" in (run / "run.log").read_text()

    again = _cli(tmp_path, toy_site, *local)  # the same command: only the tasks without a done marker
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert "2 of 4 task(s) to run (fit-fold0, evaluate)" in err
    assert kept == {n: (run / "tasks" / n / "done.json").stat().st_mtime_ns for n in kept}
    # the rerun leaves the lost fold to a worker (whatever killed two may not reach the run's process), which
    # resumes it from its checkpoint; the run's process evaluates on the stages prepare kept (no hook before it)
    log = (run / "tasks" / "fit-fold0" / "task.log").read_text()
    assert log.count("fold0-mlp: resuming after epoch") == 2, log
    rerun = (run / "run.log").read_text().split("2 of 4 task(s) to run")[1]
    assert "task fit-fold0 here" not in rerun, rerun
    # the run's own process keeps torch's count: OMP_NUM_THREADS where set (each xdist worker's share), else all CPUs
    omp = os.environ.get("OMP_NUM_THREADS", "")
    here = int(omp) if omp.isdigit() else len(os.sched_getaffinity(0))
    assert f"task evaluate here, in the run's process, {here} CPU thread(s)" in rerun
    assert "read from the cache" in rerun and "stage featurize" not in rerun, rerun
    inline = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "inline", *sets)
    _, err = inline.communicate(timeout=600)
    assert inline.returncode == 0, err[-2000:]
    _same_run(run, tmp_path / "inline")


def test_a_fold_failed_in_the_run_process_leaves_the_rest_to_the_worker_and_stops_naming_it(toy_site, tmp_path):
    """The run's own process fits the explaining fold; when that fit fails, the process takes no more folds, the
    worker finishes the list (it does not wait on the failed fold's claim), and the run stops in one line naming
    the failed task."""
    proc = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "r", *HELD, "--set", "fail_fold=fold1",
                "--executor", "local", "--workers", "2")
    _, err = proc.communicate(timeout=600)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and "fit-fold1: CardioError: toy: fold fold1 fails" in last, err[-2000:]
    assert "fit-fold0" not in last
    run = tmp_path / "r"
    assert "task fit-fold1 failed in the run's process: toy: fold fold1 fails" in (run / "run.log").read_text()
    assert "fold 1 of 2 (fold0)" in (run / "tasks" / "fit-fold0" / "task.log").read_text()
    status, why = _cli(tmp_path, toy_site, "status", "r").communicate()
    assert [line.split()[:2] for line in status.splitlines()[1:]] == [
        ["prepare", "done"], ["fit-fold0", "done"], ["fit-fold1", "failed"], ["evaluate", "missing"]], status + why


def test_evaluate_runs_beside_the_final_model(toy_site, tmp_path):
    """The local executor starts evaluate once both folds are done, while a worker still fits the final model (on
    CPU slots the list's second task, on twice a fold's rows: the worker takes it while the run's process fits both
    folds), and waits for it only before the final model's facts and bundle: the two overlap, the report still
    names what the final model was fitted on, and the fold models join its bundle (they were left out without a
    word while evaluate read the bundle before the final model had written it)."""
    sets = ["final_model=true" if a == "final_model=false" else a for a in HELD] + ["--set", "fold_models=true"]
    hold = tmp_path / "hold"
    hold.touch()
    proc = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "r", *sets, "--executor", "local",
                "--workers", "2", env={"CARDIO_TOY_HOLD": str(hold), "CARDIO_TOY_HOLD_FIT": "final"})
    evaluate = tmp_path / "r" / "tasks" / "evaluate"
    try:  # the final model's fit held at its second epoch until evaluate has started
        deadline = time.time() + 400
        while not any((evaluate / f"{m}.json").exists() for m in ("running", "done")) and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
    finally:
        hold.unlink()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    done = {n: json.loads((tmp_path / "r" / "tasks" / n / "done.json").read_text()) for n in ("final", "evaluate")}
    evaluate_started = done["evaluate"]["ended_at"] - done["evaluate"]["elapsed_s"]
    assert evaluate_started < done["final"]["ended_at"], done
    assert "take the task(s) fit-fold1, final, fit-fold0 in turn" in (tmp_path / "r" / "run.log").read_text()
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["final_model"]["n_rows"] == 800
    bundle = json.loads((tmp_path / "r" / "model" / "bundle.json").read_text())
    assert bundle.get("folds") == ["fold0", "fold1"], bundle


def test_a_final_model_lost_while_evaluate_waits_leaves_evaluate_not_run(toy_site, tmp_path):
    """evaluate waits beside the final model; the final model's worker killed twice (kill -9): the run stops naming
    the final model, and status says evaluate was not run because of it (evaluate itself did not fail)."""
    sets = ["final_model=true" if a == "final_model=false" else a for a in HELD]
    hold = tmp_path / "hold"
    hold.touch()
    proc = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "r", *sets, "--executor", "local",
                "--workers", "2", env={"CARDIO_TOY_HOLD": str(hold), "CARDIO_TOY_HOLD_FIT": "final"})
    try:  # the final model's fit held at its second epoch: each kill lands mid-fit
        _kill_twice(proc, tmp_path / "r", "final", "final-mlp.pt")
    finally:
        hold.unlink()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2 and "final: stopped without an error" in err.strip().splitlines()[-1], err[-2000:]
    status, why = _cli(tmp_path, toy_site, "status", "r").communicate()
    rows = {line.split()[0]: line for line in status.splitlines()[1:]}
    assert rows["final"].split()[1] == "failed" and rows["evaluate"].split()[1] == "missing", status + why
    assert "not run: final failed" in rows["evaluate"], status


def test_a_killed_run_process_leaves_its_workers_one_task_each_and_a_resume_never_doubles_a_fit(toy_site, tmp_path):
    """kill -9 of the run's own process while it and its worker fit: the worker finishes the task it runs and takes
    no more; the same command again, at once, leaves that fold to it (its claim is live), resumes the run's
    process's own fold from its checkpoint, fits the third, and ends with the metrics of an uninterrupted run. No
    fold is fitted by two processes."""
    # every fit of the killed run held at its second epoch (the toy's $CARDIO_TOY_HOLD): the kill lands mid-fit, and
    # its worker is still fitting fold0 until the resumed run has gone past fold0's claim to fold1; the resumed run
    # and the reference fit at full speed
    sets = ["cv.folds=3" if a == "cv.folds=2" else a for a in HELD]
    local = ["run", "--plugin", "toy", "--out", "r", *sets, "--executor", "local", "--workers", "2"]
    hold = tmp_path / "hold"
    hold.touch()
    proc = _cli(tmp_path, toy_site, *local, env={"CARDIO_TOY_HOLD": str(hold)})
    run = tmp_path / "r"

    def every_log() -> str:
        return (run / "run.log").read_text() + "".join(p.read_text() for p in (run / "tasks").glob("fit-*/task.log"))
    try:
        ckpts = [run / "checkpoints" / f"fold{i}-mlp.pt" for i in (2, 0)]  # the list's first two tasks
        deadline = time.time() + 400
        while not all(c.exists() for c in ckpts) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        again = _cli(tmp_path, toy_site, *local)
        # fold1 started: whoever took it found fold0's claim live (the list is fold2, fold0, fold1)
        while "fold 2 of 3 (fold1)" not in every_log() and again.poll() is None and time.time() < deadline:
            time.sleep(0.05)
    finally:
        hold.unlink()  # the killed run's worker finishes fold0
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    logs = every_log()
    assert [logs.count(f"fold {i + 1} of 3 (fold{i})") for i in range(3)] == [1, 1, 2], logs[-3000:]
    assert logs.count("fold2-mlp: resuming after epoch") == 1, logs[-3000:]  # the killed process's fold, resumed
    assert "fold0-mlp: resuming" not in logs  # the worker's, finished by it alone
    inline = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "inline", *sets)
    _, err = inline.communicate(timeout=600)
    assert inline.returncode == 0, err[-2000:]
    _same_run(tmp_path / "r", tmp_path / "inline")


class _Job:
    """A fake job: a thread holding its 'GPU' for a while, recording when."""

    def __init__(self, name: str, gpu: int, spans: list, seconds: float):
        self.thread = threading.Thread(target=self._run, args=(name, gpu, spans, seconds))
        self.thread.start()

    @staticmethod
    def _run(name, gpu, spans, seconds):
        begin = time.perf_counter()
        time.sleep(seconds)
        spans.append((gpu, begin, time.perf_counter(), name))

    def done(self) -> bool:
        return not self.thread.is_alive()

    def exception(self):
        return None


def test_throttle_six_tasks_on_two_gpus_never_share_one():
    spans: list = []
    gpus = executors.slots({"device": "cuda", "executor": {"gpus": [7, 9], "workers": 5}}, seen=10)
    assert gpus == [7, 9]  # one slot per GPU, whatever the worker count
    names = [f"fit-fold{i}" for i in range(6)]
    failed = executors.throttle(names, lambda n, g: _Job(n, g, spans, 0.05 + 0.03 * (int(n[-1]) % 3)), gpus,
                                poll_s=0.01)
    assert not failed and sorted(s[3] for s in spans) == names
    for gpu in gpus:
        mine = sorted(s[1:3] for s in spans if s[0] == gpu)
        assert len(mine) >= 2 and all(a_end <= b_begin for (_, a_end), (b_begin, _) in zip(mine, mine[1:])), mine


def test_throttle_starts_nothing_after_a_failure():
    class Failed(_Job):
        def exception(self):
            return RuntimeError("out of memory")

    started: list = []

    def start(name, gpu):
        started.append(name)
        return (Failed if name == "fit-fold0" else _Job)(name, gpu, [], 0.05)

    failed = executors.throttle([f"fit-fold{i}" for i in range(4)], start, [0], poll_s=0.01)
    assert failed == {"fit-fold0": "out of memory"} and started == ["fit-fold0"]


FAKE_SBATCH = """#!/bin/sh
# stands in for sbatch: keeps the script it is given and answers as sbatch does
n=$(ls "{dir}" | wc -l)
cp "$1" "{dir}/$n.sh"
echo "Submitted batch job $((1000 + n))"
"""


def test_sbatch_scripts_array_cap_dependencies_and_signal(toy_site, tmp_path):
    """submitit 1.5.4's rendering (pinned in requirements.lock), checked as text: a job for prepare, an array of
    the fits and the final model after it with the cap, evaluate after the array, the configured signal."""
    assert submitit.__version__ == "1.5.4"
    scripts, bin_dir = tmp_path / "scripts", tmp_path / "bin"
    scripts.mkdir()
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(dir=scripts))
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for it; nothing here runs a job
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(stat.S_IRWXU)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = _cli(tmp_path, toy_site, "run", "--plugin", "toy", "--out", "r", "--executor", "slurm", "--workers", "3",
                "--set", "cv.folds=5", "--set", "executor.signal=USR1", "--set", "executor.slurm.partition=gpu",
                "--set", "executor.slurm.gpus_per_task=1", "--set", "executor.slurm.extra={qos: high}",
                env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    prepare, fits, evaluate = ((scripts / f"{i}.sh").read_text() for i in range(3))
    for text in (prepare, fits, evaluate):
        assert "#SBATCH --signal=USR1@120" in text and "export SUBMITIT_PREEMPT_SIGNAL=USR1" in text
        assert "#SBATCH --partition=gpu" in text and "#SBATCH --qos=high" in text
        assert "#SBATCH --gpus-per-node=1" in text
    assert "--array" not in prepare and "--dependency" not in prepare
    assert "#SBATCH --array=0-5%3" in fits and "#SBATCH --dependency=afterok:1000" in fits  # 5 folds + final
    assert "#SBATCH --dependency=afterok:1001" in evaluate and "--array" not in evaluate
    assert "#SBATCH --kill-on-invalid-dep=yes" in evaluate
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "submitted"
    assert "cardio status" in err


# ------------------------------------------------------------------ true lines: GPUs asked for where there are none

def _asked(device: str, gpus, workers: int = 2) -> dict:
    return {"device": device, "executor": {"gpus": gpus, "workers": workers}}


def test_gpus_asked_for_on_a_machine_without_them_is_one_error():
    # before: every task's line said "started on GPU 3" while it ran on the CPU
    with pytest.raises(CardioError, match=r"executor.gpus = \[0, 1, 2, 3\] asks for GPUs, but torch sees none on "
                                          r"this machine .* set executor.gpus: null to run the tasks on the CPU, 2 at"):
        executors.slots(_asked("auto", [0, 1, 2, 3]), seen=0)
    with pytest.raises(CardioError, match=r"names GPU\(s\) \[2, 3\], but torch sees 2 on this machine \(ids 0 to 1\)"):
        executors.slots(_asked("cuda", [0, 1, 2, 3]), seen=2)
    assert executors.slots(_asked("auto", [0, 1]), seen=2) == [0, 1]
    assert executors.slots(_asked("auto", None, workers=3), seen=0) == [None] * 3  # no GPU asked for: CPU slots
    assert executors.slots(_asked("auto", None), seen=2) == [0, 1]  # every GPU torch sees


def test_device_cpu_sets_the_gpus_aside_with_a_warning_that_says_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="test.slots"):
        where = executors.slots(_asked("cpu", [0, 1, 2, 3], workers=2), seen=4, log=logging.getLogger("test.slots"))
    assert where == [None, None]
    said = "executor.gpus = [0, 1, 2, 3] set aside: device is cpu, so the tasks run on the CPU, 2 at once"
    assert said in caplog.text


def test_a_run_asking_for_gpus_here_stops_in_one_line_and_leaves_no_folder(cardio_cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the case is a machine without one")
    proc = cardio_cli("run", "--plugin", "toy", "--executor", "local", "--set", "executor.gpus=[0,1,2,3]",
                      "--out", str(tmp_path / "r"))
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("cardio: error: executor.gpus = [0, 1, 2, 3] asks for GPUs")
    assert "started on GPU" not in proc.stderr and not (tmp_path / "r").exists()


@pytest.mark.parametrize("names,final_early,order", [
    # the explaining last fold first; the free worker takes the next one; GPU slots: the final model last, its fit
    # beside evaluate's CPU work
    (["fit-fold0", "fit-fold1", "fit-fold2", "final"], False, ["fit-fold2", "fit-fold0", "fit-fold1", "final"]),
    # CPU slots: the final model second, evaluate's workers then alone on the cores after the last fold
    (["fit-fold0", "fit-fold1", "fit-fold2", "final"], True, ["fit-fold2", "final", "fit-fold0", "fit-fold1"]),
    (["fit-fold0", "fit-fold1"], True, ["fit-fold1", "fit-fold0"]),
    (["final"], True, ["final"]),
])
def test_the_local_workers_take_the_longest_task_first(names, final_early, order):
    assert claims.pull_order(names, final_early) == order


def test_each_task_is_claimed_by_one_worker_only(tmp_path):
    """Workers pulling from one list: one claim per task; a done task is never claimed; the run's process clears
    the claims."""
    script = ("import sys\nfrom pathlib import Path\nfrom cardio_cluster import claims\n"
              "print(sum(claims.claim(Path(sys.argv[1]), f'fit-fold{i}') for i in range(40)))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    taken = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(taken) == 40
    assert len({claims.claimed_by(tmp_path, f"fit-fold{i}") for i in range(40)}) == sum(1 for t in taken if t)
    assert not claims.claim(tmp_path, "fit-fold0")
    claims.unclaim(tmp_path, ["fit-fold0"])
    (tasks.task_dir(tmp_path, "fit-fold0") / "done.json").write_text("{}")
    assert not claims.claim(tmp_path, "fit-fold0") and claims.claimed_by(tmp_path, "fit-fold0") is None
    claims.unclaim(tmp_path, ["fit-fold1"])
    assert claims.claim(tmp_path, "fit-fold1") and claims.claimed_by(tmp_path, "fit-fold1") == os.getpid()
