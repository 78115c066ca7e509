"""The engine: kill -9 and --resume end as an uninterrupted run; torchrun on 2 CPU processes; checkpoints."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from cardio import engine
from cardio.engine import checkpoints  # where save_later and the checkpoint timer look up what a test patches
from cardio_testing.harness import cpu_context, train_settings

# Early stopping off, and the killed run's steps held asleep (the toy's $CARDIO_TOY_STEP_S: 10 ms a step, about 0.3 s
# an epoch of ~30 steps), so a kill right after epoch 2's checkpoint lands inside training however fast the machine
# is (6 epochs once ran to the end within the test's 0.1 s wait); the sleep changes no number, and the uninterrupted
# run and the resume fit at full speed (40 epochs of real work once gave that margin)
EPOCHS = 10
HELD = {"CARDIO_TOY_STEP_S": "0.01"}
SLOW = ["--set", "cv.method=holdout", "--set", "data.n_patients=800", "--set", "data.n_features=128",
        "--set", "model.hidden=512", "--set", f"train.epochs={EPOCHS}", "--set", "train.patience=0",
        "--set", "train.batch_size=32", "--set", "train.checkpoint_every_s=0",
        "--set", "report.figures=false"]  # the runs' estimates are compared, not their figures


def _estimates(run):
    m = json.loads((run / "metrics.json").read_text())
    return {(e["metric"], e["method"], e["fold"], e.get("subgroup")): (e["estimate"], e["ci_low"], e["ci_high"])
            for e in m["estimates"]}


def test_kill_9_mid_training_then_resume_is_bit_identical(cardio_cli, toy_site, tmp_path):
    cardio_cli("run", "--plugin", "toy", "--out", "full", *SLOW, check=True)

    env = {**os.environ, "PYTHONPATH": f"{toy_site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "CARDIO_CACHE": str(tmp_path / "cache"), **HELD}
    proc = subprocess.Popen([sys.executable, "-m", "cardio.cli", "run", "--plugin", "toy", "--out", "killed", *SLOW],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "checkpoints" / "holdout-mlp.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; make SLOW slower"
    first = ckpt.stat().st_mtime_ns
    while ckpt.stat().st_mtime_ns == first and proc.poll() is None:  # after epoch 2's checkpoint
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = torch.load(ckpt, weights_only=True)["state"]["epoch"]
    assert 1 <= done < EPOCHS and not (tmp_path / "killed" / "metrics.json").exists()
    assert not list((tmp_path / "killed" / "checkpoints").glob("*.tmp"))  # atomic writes leave no halves

    cardio_cli("run", "--plugin", "toy", "--resume", "killed", check=True)
    assert "resuming after epoch" in (tmp_path / "killed" / "run.log").read_text()
    assert _estimates(tmp_path / "killed") == _estimates(tmp_path / "full")


@pytest.mark.skipif(shutil.which("torchrun") is None
                    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun is not installed")
def test_torchrun_two_cpu_processes_match_one(cardio_cli, toy_site, tmp_path):
    args = ["run", "--plugin", "toy", "--set", "train.epochs=3", "--set", "cv.folds=3", "--set", "train.batch_size=16",
            "--set", "report.figures=false"]  # the estimates and predictions are compared, not the figures
    cardio_cli(*args, "--out", "one", check=True)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    (tmp_path / "tmp").mkdir()  # torchrun's log folders (torchelastic_*) there, not left in the machine's /tmp
    env = {**os.environ, "PYTHONPATH": f"{toy_site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "CARDIO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "cardio.cli", *args,
                           "--out", "two"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    one, two = _estimates(tmp_path / "one"), _estimates(tmp_path / "two")
    assert one.keys() == two.keys()
    # Same global batches, gradients averaged over ranks: equal up to float summation order
    # (measured: scores within 6e-8). A rank-based estimate may move by one swapped pair, ~1e-3.
    for key in one:
        for a, b in zip(one[key], two[key]):
            assert (a is None and b is None) or abs(a - b) <= 1e-3, (key, a, b)
    p1, p2 = (pd.read_csv(tmp_path / d / "predictions.csv")["y_score"].to_numpy() for d in ("one", "two"))
    assert np.abs(p1 - p2).max() < 1e-5


def test_sharded_batches_partition_the_one_process_batches():
    one = list(engine.ShardedBatchSampler(50, 8, seed=3))
    shards = [list(engine.ShardedBatchSampler(50, 8, seed=3, rank=r, world=2)) for r in range(2)]
    for b, (a, c) in zip(one, zip(*shards)):
        assert sorted(a + c) == sorted(b)


def test_checkpoints_load_with_weights_only_and_refuse_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    engine.save_atomic({"model": {"w": torch.ones(2)}, "state": {"epoch": 1}}, path)
    assert engine.load_checkpoint(path)["state"]["epoch"] == 1
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="is not a readable cardio checkpoint"):
        engine.load_checkpoint(tmp_path / "bad.pt")


class _TwoInputs(torch.nn.Module):
    """Sees an uninformative image and an informative side vector."""

    def __init__(self):
        super().__init__()
        self.image = torch.nn.Linear(4, 1)
        self.side = torch.nn.Linear(2, 1)

    def forward(self, image, side):
        return self.image(image) + self.side(side)


def test_a_model_with_two_inputs_trains_and_predicts_from_tuple_datasets(cpu_context):
    from cardio.data import CardioError

    ctx = cpu_context()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(96, 4)).astype(np.float32)
    side = rng.normal(size=(96, 2)).astype(np.float32)
    y = (side[:, 0] > 0).astype(np.float32)  # only the side input tells the class
    model = _TwoInputs()
    res = engine.fit(model, engine.ArrayDataset((image, side), y), engine.ArrayDataset((image, side), y), ctx,
                     name="two", train=train_settings(epochs=30, batch_size=16, patience=0, lr=0.05),
                     metric=lambda t, s: float(np.mean((s > 0) == (t > 0.5))))
    assert res.history[-1]["train_loss"] < 0.5 * res.history[0]["train_loss"]
    scores = engine.predict(res.model, engine.ArrayDataset((image, side)), ctx)
    assert scores.shape == (96, 1) and np.mean((scores[:, 0] > 0) == (y > 0.5)) > 0.9
    with pytest.raises(CardioError, match="different lengths"):
        engine.ArrayDataset((image, side[:10]), y)



def test_two_runs_sharing_one_cache_at_once_agree(toy_site, tmp_path):
    """Two `cardio run` processes start together on an empty shared cache: both finish, with equal results."""
    env = {**os.environ, "CARDIO_CACHE": str(tmp_path / "shared-cache"),
           "PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")])}
    # no figures: what the runs share is the cache (the report's figures read and write none of it)
    for attempt in range(2):  # an empty cache, then a full one
        procs = [subprocess.Popen([sys.executable, "-m", "cardio.cli", "run", "--plugin", "toy", "--out",
                                   f"run{attempt}{k}", "--set", "train.epochs=1", "--set", "explain=false",
                                   "--set", "report.figures=false"],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
        metrics = [json.loads((tmp_path / f"run{attempt}{k}" / "metrics.json").read_text()) for k in range(2)]
        assert [e["estimate"] for e in metrics[0]["estimates"]] == [e["estimate"] for e in metrics[1]["estimates"]]
    entries = list((tmp_path / "shared-cache" / "toy").glob("*.npy"))
    assert len(entries) == 1 and not list((tmp_path / "shared-cache" / "toy").glob("*.tmp*"))


def _toy_fit(ctx, loss=None, **settings):
    """A small fit (5 epochs of 4 batches, no early stop) of a seeded MLP: what a resume must match."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=64) > 0).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    return engine.fit(model, engine.ArrayDataset(x, y), None, ctx, name="mlp", loss_fn=loss,
                      train=train_settings(epochs=5, batch_size=16, patience=0, **settings))


def test_checkpoints_come_by_time_and_at_the_end(tmp_path, monkeypatch):
    """Within checkpoint_every_s of the last checkpoint none is written, except the last; with 0, every epoch."""
    written = []
    engine.flush_checkpoints()  # an earlier fit's last checkpoint is not this test's
    real_save = engine.save_atomic

    def save(obj, path):
        written.append(path.name)
        real_save(obj, path)

    monkeypatch.setattr(checkpoints, "save_atomic", save)
    ticks = iter(range(0, 10_000, 25))  # each reading of the clock is 25 s later
    monkeypatch.setattr(checkpoints, "clock", lambda: float(next(ticks)))
    _toy_fit(cpu_context(tmp_path / "timed"), checkpoint_every_s=60.0)
    engine.flush_checkpoints()  # fit returns while the writer's thread may still write its last checkpoint
    # start at 0 s; epochs end at 25, 50, 75 (due: write, 100), 125, 150 (due, but epoch 5 is the end anyway)
    assert written.count("mlp.pt") == 2
    written.clear()
    _toy_fit(cpu_context(tmp_path / "every"), checkpoint_every_s=0.0)
    engine.flush_checkpoints()
    assert written.count("mlp.pt") == 5


def _signal_during(epoch: int, signum: int):
    """A loss function that sends `signum` to this process during epoch `epoch` (counted from 1)."""
    calls = {"n": 0}

    def loss(out, y):
        calls["n"] += 1
        if calls["n"] == 4 * (epoch - 1) + 2:  # 4 batches an epoch: the second batch of that epoch
            os.kill(os.getpid(), signum)
        return engine.masked_loss(out, y)

    return loss


class _Stopped(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="no SIGUSR2 on this platform")
def test_sigterm_checkpoints_then_stops_and_the_resume_is_bit_identical(tmp_path, monkeypatch):
    """A SIGTERM in epoch 2 (a minute from any timed checkpoint): the epoch ends, a checkpoint is written, then the
    handler that was there (here: one that stops the task, as the executor's does) runs; the rerun resumes after
    epoch 2 and ends with the uninterrupted fit's weights and history. A SIGUSR2 checkpoints and lets the fit go on
    when its handler returns."""
    full = _toy_fit(cpu_context(tmp_path / "full"))
    seen = []

    def stop(signum, frame):
        seen.append(signum)
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        ctx = cpu_context(tmp_path / "cut")
        with pytest.raises(_Stopped):
            _toy_fit(ctx, _signal_during(2, signal.SIGTERM))
        assert seen == [signal.SIGTERM]
        assert torch.load(tmp_path / "cut" / "checkpoints" / "mlp.pt", weights_only=True)["state"]["epoch"] == 2
        resumed = _toy_fit(cpu_context(tmp_path / "cut"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert resumed.resumed and resumed.history == full.history
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values()):
        assert torch.equal(a, b)

    def note(signum, frame):
        seen.append(signum)

    epochs_written = []
    engine.flush_checkpoints()  # the fits above may still be writing their last checkpoint
    real_save = engine.save_atomic

    def save(obj, path):
        if path.name == "mlp.pt":
            epochs_written.append(obj["state"]["epoch"])
        real_save(obj, path)

    monkeypatch.setattr(checkpoints, "save_atomic", save)
    previous = signal.signal(signal.SIGUSR2, note)
    try:
        went_on = _toy_fit(cpu_context(tmp_path / "usr2"), _signal_during(3, signal.SIGUSR2))
        assert signal.getsignal(signal.SIGUSR2) is note  # the fit gave the handler back
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert seen[-1] == signal.SIGUSR2 and len(went_on.history) == 5
    engine.flush_checkpoints()
    assert epochs_written == [3, 5]  # after the signal's epoch, and at the end


def test_a_cohort_on_the_device_trains_as_the_dataloader_did(tmp_path):
    """uint8 inputs with a random batched augmentation: batches index-selected from the cohort on the device give
    the DataLoader's fit exactly (weights, history, predictions), and no per-item conversion runs."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(50, 3, 4), dtype=np.uint8)
    y = (x[:, 0, 0] > 127).astype(np.int64)  # class labels: cross-entropy

    def jitter(batch):  # one factor per item, from the device's generator
        return batch / 255.0 * (0.8 + 0.4 * torch.rand(len(batch), 1, 1, device=batch.device))

    def run(on_device: bool, out):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
        ds = engine.ArrayDataset(x, y, batch_transform=jitter)
        ctx = cpu_context(out)
        res = engine.fit(model, ds, engine.ArrayDataset(x[:20], y[:20], batch_transform=jitter), ctx, name="m",
                         train=train_settings(epochs=3, batch_size=8, patience=0, cohort_on_device=on_device))
        return res, engine.predict(res.model, engine.ArrayDataset(x, batch_transform=jitter), ctx)

    loaded, p_loaded = run(False, tmp_path / "loader")
    calls = []
    real = engine.ArrayDataset.__getitem__

    def counted(self, i):
        calls.append(i)
        return real(self, i)

    setattr(engine.ArrayDataset, "__getitem__", counted)  # every item the loader would serve, counted
    try:
        served, p_served = run(True, tmp_path / "device")
    finally:
        setattr(engine.ArrayDataset, "__getitem__", real)
    assert calls == [] and served.history == loaded.history
    np.testing.assert_array_equal(p_served, p_loaded)
    for a, b in zip(served.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)


def test_determinism_is_on_for_the_cpu_and_off_for_cuda_unless_asked():
    """train.deterministic null: deterministic kernels on the CPU; on CUDA the fastest (cudnn.benchmark)."""
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    try:
        assert engine.set_determinism(None, torch.device("cpu")) and not torch.backends.cudnn.benchmark
        assert not engine.set_determinism(None, torch.device("cuda")) and torch.backends.cudnn.benchmark
        assert not torch.are_deterministic_algorithms_enabled()
        assert engine.set_determinism(True, torch.device("cuda")) and not torch.backends.cudnn.benchmark
        assert not engine.set_determinism(False, torch.device("cpu")) and not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=True)
        torch.backends.cudnn.benchmark = before[1]


def test_seeding_a_process_does_not_import_the_compiler():
    """seed_everything only seeds: torch's determinism switch imports torch._inductor (about 2 s), which a process
    that fits nothing (evaluate, predict) should not pay; the fits set train.deterministic themselves (above)."""
    code = ("import sys; from cardio.engine import seed_everything; seed_everything(3); "
            "assert 'torch._inductor' not in sys.modules, 'seeding imported torch._inductor'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
