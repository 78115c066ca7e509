"""Benchmarks that cannot rot: every script in benchmarks/ runs in its smoke mode (`--smoke`: tiny sizes, seconds)
in a subprocess, as a user would start it. A benchmark that needs data the machine lacks says `skipped: <why>` and
exits 0, and the test skips with that reason; one without a smoke mode fails, naming itself."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))
# Whole cardio runs (several plugins, or MIT-BIH pretraining): their smoke sizes keep all six together within about
# 3 minutes of CPU (issue 39; each one's CPU seconds in its module docstring or SMOKE comment). They are a class of
# their own, so that xdist's loadscope gives them a worker apart from the quick ones.
WHOLE_RUNS = ("aami_interpatient.py", "controls.py", "crt_fusion.py", "evaluate_stage.py", "executors.py",
              "executors_fit.py", "gpu_runs.py", "mitbih_protocols.py")


def _smoke(name: str, tmp_path: Path, timeout: int) -> None:
    path = REPO / "benchmarks" / name
    if "--smoke" not in path.read_text():
        pytest.fail(f"benchmarks/{name} has no --smoke mode (tiny sizes, seconds): add one")
    env = {**os.environ, "CARDIO_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, str(path), "--smoke"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, f"benchmarks/{name} --smoke exited {run.returncode}:\n{run.stderr[-3000:]}"
    skipped = [line for line in run.stdout.splitlines() if line.startswith("skipped:")]
    if skipped:
        pytest.skip(f"benchmarks/{name}: {skipped[0]}")
    assert run.stdout.strip(), f"benchmarks/{name} --smoke printed nothing"


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n not in WHOLE_RUNS])
def test_every_benchmark_runs_in_its_smoke_mode(name, tmp_path):
    _smoke(name, tmp_path, 300)


class TestWholeRuns:
    @pytest.mark.slow
    @pytest.mark.parametrize("name", WHOLE_RUNS)
    def test_runs_in_its_smoke_mode(self, name, tmp_path):
        assert (REPO / "benchmarks" / name).is_file(), f"benchmarks/{name} is gone: update WHOLE_RUNS"
        _smoke(name, tmp_path, 900)
