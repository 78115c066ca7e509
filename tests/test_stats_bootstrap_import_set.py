"""The whole-process pROC ratio (benchmarks/stats_bootstrap.py: whole Rscript / whole `python -c`, 28.4 x, goal
>= 25 x) is bounded by what the Python process pays before its first resample: the interpreter's start and its
imports. The test runs the very script the benchmark times under `python -X importtime` and pins its import set:
none of the heavy libraries, and no more than MAX_BEYOND_NUMPY modules beyond what `import numpy` alone loads (43
when this was written: cardio_stats and its result types, numpy.random, hashlib's and random's helpers).
A new import on that path shows here by name, not as a slower ratio months later."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "stats_bootstrap.py"
HEAVY = {"torch", "matplotlib", "pluggy", "sklearn", "pandas", "scipy", "statsmodels"}
MAX_BEYOND_NUMPY = 60


def _script() -> str:
    """CARDIO_SCRIPT, read from the benchmark's source (not imported: that would import what it compares)."""
    for node in ast.parse(BENCHMARK.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CARDIO_SCRIPT" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{BENCHMARK} defines no CARDIO_SCRIPT")


def _imported(code: str, *argv: str) -> set[str]:
    """Every module a fresh `python -c code argv...` imports, by -X importtime (which names each one, nested too)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")
            } - {"package"}  # the header line's last column


def test_the_timed_python_process_imports_nothing_heavy_and_few_modules_beyond_numpy(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("y,s\n0,0.1\n1,0.9\n0,0.3\n1,0.6\n1,0.8\n0,0.2\n")
    mine = _imported(_script(), str(data), "50")
    assert "cardio_stats" in mine, "the probe did not see the stats import: -X importtime's format changed?"
    assert not {m.split(".")[0] for m in mine} & HEAVY, sorted({m.split(".")[0] for m in mine} & HEAVY)
    beyond = mine - _imported("import numpy")
    assert len(beyond) <= MAX_BEYOND_NUMPY, (len(beyond), sorted(beyond))


def test_the_probe_sees_a_heavy_import():
    # the control: the same probe on a script that imports pandas names it (the test above can fail)
    assert "pandas" in {m.split(".")[0] for m in _imported("import pandas")}
