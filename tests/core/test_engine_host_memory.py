"""The host memory a fit frees goes back to the system: fits one after another do not pile up the resident memory
(issue 57: glibc kept each fit's freed optimizer state and activations, about 1 MB a patient over ecg_transfer's
folds and final model)."""
import os
import subprocess
import sys
import textwrap

import pytest

from cardio.engine import device

# A fresh process (pytest's own heap would blur the reading): a warm-up fit (torch's one-time allocations), then a
# second fit of a new model, and the anonymous resident memory (/proc/self/status RssAnon) before it and after it and
# its checkpoints are written (a task's end flushes them too). Before the writer trimmed what its snapshots held, the
# reading depended on how far the writer had got: under load 2 of 6 runs left 33-38 MB.
SCRIPT = textwrap.dedent("""
    import sys, tempfile
    import numpy as np
    from torch import nn
    from cardio import engine
    from cardio_testing.harness import cpu_context, train_settings

    def anon_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon"))

    def net():
        return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 1024)).astype(np.float32)
    y = (rng.random(1000) < 0.5).astype(np.float32)[:, None]
    with tempfile.TemporaryDirectory() as tmp:
        ctx = cpu_context(tmp)
        s = train_settings(epochs=1, batch_size=32, patience=0, checkpoint_every_s=0)
        engine.fit(net(), engine.ArrayDataset(x, y), None, ctx, name="warm", train=s)
        engine.flush_checkpoints()
        model = net()
        before = anon_bytes()  # the model's own parameters are held before and after: not counted
        engine.fit(model, engine.ArrayDataset(x, y), None, ctx, name="second", train=s)
        engine.flush_checkpoints()  # the writer's thread holds a snapshot of the weights until it has written it
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        print(anon_bytes() - before, params)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or getattr(device._LIBC, "malloc_trim", None) is None,
                    reason="reads /proc/self/status and needs glibc's malloc_trim (Linux with glibc only)")
def test_a_fit_leaves_less_resident_memory_than_half_its_model():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    left, params = map(int, done.stdout.split()[-2:])
    # without the trim the second fit left about 5x its parameters' bytes resident (Adam's two moments, gradients,
    # the best weights' copy and the batches, freed but kept by malloc); with it, next to nothing
    assert left < 0.5 * params, f"the fit left {left / 2**20:.1f} MB resident, its model is {params / 2**20:.1f} MB"
