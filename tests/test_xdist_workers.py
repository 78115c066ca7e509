"""The suite on pytest-xdist workers (-n N, what CI runs): each worker's torch and OpenMP get its share of the
allotted CPUs (tests/conftest.py), so N workers do not run N times the cores' threads; what the user set stays."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cardio

PROBE = ("import json, os, runpy, sys; runpy.run_path(sys.argv[1]); import torch; "
         "print(json.dumps([os.environ.get('OMP_NUM_THREADS'), torch.get_num_threads()]))")


def _worker(env: dict) -> list:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "PYTEST_XDIST"))}
    out = subprocess.run([sys.executable, "-c", PROBE, str(Path(__file__).with_name("conftest.py"))],
                         env={**clean, **env}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_worker_gets_its_share_of_the_cpus_and_the_users_setting_stays():
    share = max(1, cardio.allotted_cpus() // 2)
    assert _worker({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"}) == [str(share), share]
    # torch caps its threads at the machine's cores: the variable is what the user's setting leaves
    assert _worker({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2", "OMP_NUM_THREADS": "3"})[0] == "3"
