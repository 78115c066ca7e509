"""Where a run's tasks run when not inline: processes on this machine, or SLURM jobs, through submitit.

local: prepare and evaluate run in the run's own process, and submitit's LocalExecutor starts one worker process
per slot as prepare begins: each imports what a fit needs while prepare runs, then takes the fits and the final
model one at a time from one list, the first free worker the next task (cardio's throttle keeps at most
`executor.workers`; with GPUs, one per GPU through CUDA_VISIBLE_DEVICES: submitit's local executor does not share
GPUs out). On CPU slots the run's own process is one of them: it fits the folds it claims, beside one worker
fewer. slurm: one job for prepare, a job array for the fits and the
final model (after prepare, at most `executor.workers` at once), one job for evaluate (after the array). In both, a
task is submitit's Checkpointable: on the preemption signal or at its time limit it is requeued, and the engine
resumes its fit from the last checkpoint; on SIGTERM (scancel) it stops as cancelled. The local executor gives each
process its share of the CPUs as torch threads and runs the task of a lost worker (kill -9) once more. The run
directory is the only state; rerunning the command submits only the tasks without a done marker.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import submitit

from cardio.data import CardioError
from cardio.execution.task import TaskSpec
from cardio.study import tasks
from cardio_cluster import claims
from cardio_cluster.worker import run_task, warm_up


def _cancel(signum: int, frame: Any) -> None:
    if tasks.requeued_here():  # SLURM's own TERM to a job it requeues: submitit is already exiting for it
        return
    name = signal.Signals(signum).name
    tasks.stopped_by(name)
    raise tasks.Cancelled(f"stopped by {name}")


class TaskCall(submitit.helpers.Checkpointable):
    """Tasks of a run in a process of their own, one after the other (a SLURM job runs one). On SIGTERM (scancel,
    the end of its time, a preemption: submitit itself ignores it) the running task stops as cancelled; `cardio run
    --resume` continues it. On the preemption signal (executor.signal) of a requeueable job, submitit calls
    checkpoint(), which marks the task requeued and resubmits the same call. The engine's checkpoints are what
    either resumes from."""

    def __call__(self, *specs: TaskSpec) -> str:
        previous = signal.signal(signal.SIGTERM, _cancel)
        try:
            return ", ".join(run_task(spec) for spec in specs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def checkpoint(self, *specs: TaskSpec) -> Any:
        signame = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "the preemption signal")
        spec = self.running(specs)
        tasks.requeued_here(spec.name)
        tasks.mark_requeued(Path(spec.run_dir), spec.name, signame)
        return super().checkpoint(*specs)

    @staticmethod
    def running(specs: Sequence[TaskSpec]) -> TaskSpec:
        """The task this process runs: the first without a done marker."""
        return next((s for s in specs if not tasks.is_done(Path(s.run_dir), s.name)), specs[-1])


class Worker(TaskCall):
    """A local executor's process. It starts as the run's process begins prepare and imports what a fit needs
    meanwhile (worker.warm_up); once prepare is done (`after`) it takes the tasks of `specs` one at a time, each it
    can claim (tasks.claim: one worker per task), until none is left. Dealt out in advance instead, the workers'
    shares differed by a fit (spect_polar's default: 31 s against 24 s), and the run waited on the longer one."""

    def __init__(self, owner: int, after: str | None) -> None:
        self.owner, self.after = owner, after

    def __call__(self, *specs: TaskSpec) -> str:
        run_dir = Path(specs[0].run_dir)
        previous = signal.signal(signal.SIGTERM, _cancel)
        try:
            warm_up(specs[0])
            if self.after and not claims.wait_for(run_dir, self.after, self.owner, specs[0].submitted):
                return ""  # prepare failed, or the run's process is gone: the run reports it
            ready = time.time()  # a task's start_s: the wait for prepare is not the worker's start
            return ", ".join(self._take(run_dir, [dataclasses.replace(s, submitted=ready) for s in specs], run_task))
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _take(self, run_dir: Path, specs: list[TaskSpec], run_task: Callable[[TaskSpec], str]) -> list[str]:
        """Run each task it can claim, while the run's process lives (killed, its workers finish the task they run
        and take no more, so a resumed run's workers never fit a task beside them). A task another live process
        holds is waited for: it is done, or, its process lost, the run's own process lets it be taken again."""
        ran: list[str] = []
        while tasks.alive(self.owner):
            for spec in specs:
                if not tasks.alive(self.owner):
                    break
                if claims.claim(run_dir, spec.name):
                    ran.append(run_task(spec))
            left = [s.name for s in specs if not tasks.is_done(run_dir, s.name)]
            if not any(claims.held(run_dir, n) for n in left):
                break
            time.sleep(0.5)
        return ran

    @staticmethod
    def running(specs: Sequence[TaskSpec]) -> TaskSpec:
        """The task this process claimed and has not finished."""
        mine = [s for s in specs if claims.claimed_by(Path(s.run_dir), s.name) == os.getpid()]
        return TaskCall.running(mine or specs)

    def checkpoint(self, *specs: TaskSpec) -> Any:
        """Requeued (the local executor's time limit): the task goes back to the list for the restarted worker."""
        spec = self.running(specs)
        out = super().checkpoint(*specs)
        claims.unclaim(Path(spec.run_dir), [spec.name])
        return out


def submit(spec: TaskSpec, config: dict, run_dir: Path, todo: list[str], log: logging.Logger,
           here: Callable[[str], None]) -> bool:
    """Run or submit the tasks in `todo`; True when the run finished here (local, or slurm with wait). `here` runs
    a task in this process (the local executor's prepare and evaluate)."""
    ex = config["executor"]
    os.environ["SUBMITIT_PREEMPT_SIGNAL"] = str(ex["signal"])  # the task processes read it when submitit loads
    folder = job_folder(config, Path(run_dir) / "tasks" / "submitit")
    if ex["name"] == "local":
        run_local(spec, config, folder, todo, log, here)
        return True
    return submit_slurm(spec, config, folder, todo, log)


def job_folder(config: dict, default: Path) -> Path:
    """Where submitit keeps this command's jobs (`<folder>/%j`): a new folder of its own (mode 0700) under
    executor.folder, else `default`. submitit passes a job's call and result between processes as pickles in it,
    and a folder this command made just now holds none that anyone else planted (a run folder handed over with
    its tasks/submitit/ in it, a job id reused)."""
    import tempfile

    base = Path(config["executor"]["folder"] or default)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base)) / "%j"


def slots(config: dict, seen: int | None = None, log: logging.Logger | None = None) -> list[int | None]:
    """One slot per GPU to share out (executor.gpus, else every GPU torch sees unless device is cpu), else
    `executor.workers` CPU slots: what a task's start line names is what it runs on. `seen` is the GPUs torch sees
    (None: asks torch). GPUs asked for on a machine without them, or ids beyond those it has, are one error (a run
    meant for GPUs would take hours on the CPU); with device cpu, executor.gpus is set aside with a warning."""
    ex = config["executor"]
    gpus = ex["gpus"]
    cpu: list[int | None] = [None] * int(ex["workers"])
    if config["device"] == "cpu":
        if gpus:
            (log or logging.getLogger("cardio.run")).warning(
                "executor.gpus = %s set aside: device is cpu, so the tasks run on the CPU, %d at once "
                "(executor.workers)", list(gpus), len(cpu))
        return cpu
    if seen is None:
        import torch

        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus is None:
        gpus = list(range(seen))
    elif gpus and not seen:
        raise CardioError(f"executor.gpus = {list(gpus)} asks for GPUs, but torch sees none on this machine (no CUDA "
                          f"device); set executor.gpus: null to run the tasks on the CPU, {len(cpu)} at once "
                          "(executor.workers)")
    elif [g for g in gpus if not 0 <= int(g) < seen]:
        raise CardioError(f"executor.gpus = {list(gpus)} names GPU(s) {[g for g in gpus if not 0 <= int(g) < seen]}, "
                          f"but torch sees {seen} on this machine (ids 0 to {seen - 1})")
    return [int(g) for g in gpus] if gpus else cpu


def throttle(names: Sequence[str], start: Callable[[str, Any], Any], slots: Sequence[Any],
             poll_s: float = 0.2, retry: Callable[[str, str], bool] | None = None) -> dict[str, str]:
    """Start each name on a free slot (start(name, slot) returns a job with done() and exception()), never two on
    one slot; a failed one that retry(name, error) accepts starts again, and after any other failure nothing new
    starts. Returns {name: error} of the tasks that failed."""
    free, queue = list(slots), list(names)
    running: dict[str, tuple[Any, Any]] = {}
    failed: dict[str, str] = {}
    while running or (queue and not failed):
        while queue and free and not failed:
            slot = free.pop(0)
            name = queue.pop(0)
            running[name] = (start(name, slot), slot)
        time.sleep(poll_s)
        for name, (job, slot) in list(running.items()):
            if job.done():
                del running[name]
                free.append(slot)
                error = job.exception()
                if error is None:
                    continue
                why = " ".join(str(error).split())[-400:] or type(error).__name__
                if retry is not None and retry(name, why):
                    queue.insert(0, name)
                else:
                    failed[name] = why
    return failed


def task_threads(slots: int, tasks_in_phase: int) -> int:
    """Torch threads per task: the CPUs allotted to the run, shared by the tasks that run at once (more threads
    than cores oversubscribe them: two workers of two threads each on two cores ran slower than one)."""
    from cardio.engine import allotted_cpus

    return max(1, allotted_cpus() // max(1, min(slots, tasks_in_phase)))


def start_local(folder: Path, ex: dict, slot: int | None, call: Callable, *args: Any):
    """call(*args) in a process of its own on this machine (submitit's LocalExecutor, the executor section `ex`'s
    time limit and signal delay), on GPU `slot` (None: the CPU); the job, for the throttle. A run's tasks and a
    sweep's runs both start here."""
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=ex["timeout_min"], signal_delay_s=ex["signal_delay_s"],
                               gpus_per_node=0 if slot is None else 1, visible_gpus=() if slot is None else (slot,))
    job = executor.submit(call, *args)
    # submitit waits 15 s for the result file of a job that ended without one (a slow shared filesystem's latency),
    # and the throttle with it; a local worker writes to this machine's disk before it exits, so a lost one (kill -9)
    # is known at once (submitit has no parameter for it; its own tests set this attribute)
    job._results_timeout_s = 0
    return job



def run_local(spec: TaskSpec, config: dict, folder: Path, todo: list[str], log: logging.Logger,
              here: Callable[..., None]) -> None:
    """prepare and evaluate in this process (`here`); the fits and the final model taken one at a time by one
    worker process per slot (at most `executor.workers`, or one per GPU), started as prepare begins (Worker), in
    claims.pull_order's order. On two or more CPU slots this process takes the first slot itself (_first_here): it
    fits the folds it claims on the stages it built. evaluate starts once every fold is done, beside the worker
    that may still fit the final model, and waits for it only before the final model's facts and bundle. A failed
    task ends its worker (or this process's share of the folds); the others finish the list, and the run then stops
    naming the failed task (a rerun runs only it). prepare and evaluate never get a process of their own: it would
    only add its start, torch's imports and a read of the stages to the run's critical path; a process per fit paid
    them once per fit (spect_polar's default: about 7 s of CPU a process against about 7 s for the fold's own
    fit)."""
    middle = [n for n in todo if n not in ("prepare", "evaluate")]
    if middle:
        _workers(spec, config, folder, middle, log, here, "prepare" in todo, "evaluate" in todo)
        return
    if "prepare" in todo:
        here("prepare")
    if "evaluate" in todo:
        here("evaluate")


def _workers(spec: TaskSpec, config: dict, folder: Path, names: list[str], log: logging.Logger,
             here: Callable[..., None], prepare: bool, evaluate: bool) -> None:
    """One worker per slot for `names`, started first; then prepare here, if it is to run, while they import; then
    the throttle watches them (and starts a lost one's task once more) while this process waits for the folds, and
    runs evaluate, if it is to run, once they are done."""
    ex, run_dir = config["executor"], Path(spec.run_dir)
    where = slots(config, log=log)
    threads = task_threads(len(where), len(names))
    order = claims.pull_order(names, final_early=where[0] is None)
    claims.unclaim(run_dir, [n for n in order if not claims.held(run_dir, n)])  # an earlier attempt's, its worker gone
    first = _first_here(run_dir, order, where)
    workers = {f"worker {i + 1}": slot for i, slot in enumerate(where[bool(first):len(names)])}

    jobs: list[Any] = []

    def start(name: str, slot: int | None):
        submitted = time.time()
        jobs.append(start_local(folder, ex, slot, Worker(os.getpid(), "prepare" if prepare else None),
                                *(dataclasses.replace(spec, name=n, threads=threads, submitted=submitted)
                                  for n in order)))
        return jobs[-1]

    redone: set[str] = set()

    def lost(name: str, error: str) -> bool:
        """A worker that died without an error of its own (kill -9, the OOM killer): its task runs once more."""
        found = claims.orphaned(run_dir, order)
        if found is None or found[0] in redone:
            return False
        task, why = found
        redone.add(task)
        log.warning("task %s: its worker was lost (%s); running the task again, from its last checkpoint", task, why)
        claims.unclaim(run_dir, [task])
        return True

    log.info("%s%d worker(s) on %s take the task(s) %s in turn, %d CPU thread(s) each",
             "the run's process and " if first else "", len(workers),
             "the CPU" if where[0] is None else "GPU(s) " + ", ".join(str(w) for w in workers.values()),
             ", ".join(order), threads)

    def stop() -> None:
        for job in jobs:
            job.cancel(check=False)

    early = {name: start(name, slot) for name, slot in workers.items()}  # they import while prepare runs
    if prepare:
        try:
            here("prepare")
        except BaseException:
            stop()
            raise
    fits_here = (lambda: _fit_here(run_dir, order, first, here, threads, log)) if first else None
    _watch(run_dir, config, order, workers, early, start, lost, stop, here, evaluate, fits_here)


def _first_here(run_dir: Path, order: list[str], where: list[int | None]) -> str | None:
    """The fold this process fits first, claimed before prepare so that no worker takes it: the list's first that
    no process has started (the explaining one, the longest, in a new run), when the slots are CPUs and there are
    two or more (one slot: a worker, as before). A task an earlier process started and lost is left to a worker.
    This process has the stages in memory and its imports done, where a worker of its own would import for 3.5 s
    of CPU beside prepare, read the stages back and import again in its first fit (about 7 s of CPU in all on
    spect_polar's default, on two cores the whole gap to twice inline's speed)."""
    if len(where) < 2 or where[0] is not None:
        return None
    first = next((n for n in order if n.startswith("fit-") and not claims.started(run_dir, n)), None)
    return first if first and claims.claim(run_dir, first) else None


def _fit_here(run_dir: Path, order: list[str], first: str, here: Callable[..., None], threads: int,
              log: logging.Logger) -> None:
    """This process's share of the folds, on a worker's share of the CPUs: `first`, then each later fold it can
    claim that no process has started, in one pass (a lost worker's task, in this run or an earlier attempt,
    waits for a worker: whatever killed that one, the OOM killer say, does not reach the run's process). The final
    model is the workers', so that evaluate can start beside it where it is still running. A failed fold ends the
    share, as a failed task ends its worker: the workers finish the list, and the run then stops naming it."""
    for name in order:
        if name.startswith("fit-") and (name == first or (not claims.started(run_dir, name) and
                                                          claims.claim(run_dir, name))):
            try:
                here(name, threads=threads)
            except Exception as e:  # its failed marker names it, and finished() the run's end
                log.error("task %s failed in the run's process: %s", name, " ".join(str(e).split())[-400:])
                return


def _watch(run_dir: Path, config: dict, order: list[str], workers: dict[str, int | None], early: dict[str, Any],
           start: Callable[[str, int | None], Any], lost: Callable[[str, str], bool], stop: Callable[[], None],
           here: Callable[..., None], evaluate: bool, fits_here: Callable[[], None] | None) -> None:
    """The throttle watches the workers in a thread of its own; this one fits its share of the folds, if any, and
    runs evaluate once the folds are done. Interrupted (Ctrl-C), the workers are stopped first: the throttle's
    thread returns once they are gone."""
    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(throttle, list(workers), lambda name, slot: early.pop(name, None) or start(name, slot),
                               list(workers.values()), retry=lost)
        try:
            if fits_here is not None:
                fits_here()
            _evaluate_beside(run_dir, config, order, watching, here, evaluate)
        except BaseException as e:
            if not isinstance(e, CardioError):
                stop()
            raise


def _evaluate_beside(run_dir: Path, config: dict, order: list[str], watching: Any, here: Callable[..., None],
                     evaluate: bool) -> None:
    """Wait for the folds, then, if `evaluate`, evaluate here while the throttle still watches the final model;
    else wait for every task."""

    def finished() -> None:
        """Every task of the list done, else one line naming those that are not."""
        errors = watching.result()
        claims.unclaim(run_dir, order)
        failed = [f"{n}: {detail or 'not run'}" for n in order
                  for state, detail in [tasks.state(run_dir, n, config)] if state != "done"]
        if failed:
            raise _TasksFailed("task(s) failed: " + "; ".join(failed + [f"{w}: {e}" for w, e in errors.items()])
                               + f" (their logs: {run_dir / 'tasks'}/<task>/task.log, or run.log for a fold the "
                               "run's process fitted; run the same command again to rerun the tasks without a done "
                               "marker)")

    def wait(names: list[str], poll_s: float) -> None:
        """Until every task of `names` is done; once every worker has ended with one not done (it failed),
        finished() names it."""
        while not all(tasks.state(run_dir, n, config)[0] == "done" for n in names):
            if watching.done():
                finished()
            time.sleep(poll_s)

    if not evaluate:
        finished()
        return
    wait([n for n in order if n.startswith("fit-")], 0.2)
    try:
        # evaluate's `ready`: every task done (the final model's facts on disk), while its worker may still be
        # exiting (about a second of torch's teardown, off the run's critical path)
        here("evaluate", lambda: wait(order, 0.05))
        finished()
    except _TasksFailed as e:  # evaluate did not fail: a task it waited for did
        tasks.unmark(run_dir, "evaluate")
        raise CardioError(str(e)) from None


class _TasksFailed(CardioError):
    pass


def slurm_executor(config: dict, folder: Path, plugin: str):
    """submitit's SlurmExecutor with the run's executor section: partition, time, GPUs, CPUs, memory, signal."""
    from submitit.slurm import slurm

    ex = config["executor"]
    sl = config["executor"]["slurm"]
    slurm.SlurmJobEnvironment.USR_SIG = str(ex["signal"])  # rendered as --signal=<SIG>@<delay>
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=3)
    params = {"time": int(ex["timeout_min"]), "cpus_per_task": int(sl["cpus_per_task"]), "mem": f"{sl['mem_gb']}GB",
              "job_name": f"cardio-{plugin}",
              "signal_delay_s": int(ex["signal_delay_s"]), "array_parallelism": int(ex["workers"]),
              "setup": [f"export SUBMITIT_PREEMPT_SIGNAL={ex['signal']}"],
              "additional_parameters": dict(sl["extra"] or {})}
    if sl["partition"]:
        params["partition"] = sl["partition"]
    if sl["gpus_per_task"]:  # a cluster without GPUs refuses even --gpus-per-node=0
        params["gpus_per_node"] = int(sl["gpus_per_task"])
    executor.update_parameters(**params)
    return executor


def _after(executor, job_id: str | None, extra: dict) -> None:
    options = dict(extra)
    if job_id:
        options.update(dependency=f"afterok:{job_id}", kill_on_invalid_dep="yes")
    executor.update_parameters(additional_parameters=options)


def submit_slurm(spec: TaskSpec, config: dict, folder: Path, todo: list[str], log: logging.Logger) -> bool:
    """One job for prepare, an array for the fits (after prepare), one job for evaluate (after the array)."""
    executor = slurm_executor(config, folder, spec.plugin)
    extra = dict(config["executor"]["slurm"]["extra"] or {})
    call, after, evaluate = TaskCall(), None, None
    for phase in tasks.phases(todo):
        _after(executor, after, extra)
        specs = [dataclasses.replace(spec, name=n, submitted=time.time()) for n in phase]
        if len(specs) == 1:
            job = executor.submit(call, specs[0])
            after = job.job_id
        else:
            with executor.batch():
                jobs = [executor.submit(call, s) for s in specs]
            job, after = jobs[0], jobs[0].job_id.split("_")[0]
        log.info("slurm job %s: %s", after, ", ".join(phase))
        evaluate = job if phase == ["evaluate"] else None
    if not config["executor"]["wait"] or evaluate is None:
        log.info("submitted; follow it with: cardio status %s", spec.run_dir)
        return False
    try:
        evaluate.result()
    except Exception as e:  # submitit's error names the job and its log
        raise CardioError(f"slurm job {evaluate.job_id} (evaluate) failed: {str(e).splitlines()[0]}; cardio status "
                          f"{spec.run_dir} lists every task") from None
    return True
