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
# Whole cardio runs (several plugins, or MIT-BIH pretraining): their smoke sizes keep the seven together at about
# 200 s of CPU (issue 39; each one's CPU seconds in its module docstring or SMOKE comment). They are a class of
# their own, so that xdist's loadscope gives them a worker apart from the quick ones.
WHOLE_RUNS = ("aami_interpatient.py", "controls.py", "crt_fusion.py", "evaluate_stage.py", "executors.py",
              "executors_fit.py", "gpu_runs.py")
# Run in their smoke mode, in a subprocess as a user starts them, by a test that also reads what they print: not
# twice. Each test is named, and test_run_elsewhere_is_still_run_there holds it to running the script.
RUN_ELSEWHERE = {"coverage.py": "tests/stats/test_cv_interval.py::test_difference_weights_benchmark_smoke",
                 "cv_coverage.py": "tests/stats/test_cv_interval.py::test_coverage_benchmark_smoke",
                 "cv_diff_weights.py": "tests/stats/test_cv_interval.py::test_difference_weights_benchmark_smoke",
                 "nested_floor.py": "tests/stats/test_cv_interval.py::test_nested_floor_benchmark_smoke",
                 "nested_pairs.py": "tests/stats/test_cv_interval.py::test_nested_pairs_benchmark_smoke",
                 "mitbih_protocols.py": "tests/plugins/ecg_transfer/test_mitbih_protocols.py::"
                                        "test_the_smoke_table_has_both_protocols_labelled_beside_the_published_rows"}


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


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n not in (*WHOLE_RUNS, *RUN_ELSEWHERE)])
def test_every_benchmark_runs_in_its_smoke_mode(name, tmp_path):
    _smoke(name, tmp_path, 300)


def test_run_elsewhere_is_still_run_there():
    """A benchmark left out above is run with --smoke by the test RUN_ELSEWHERE names."""
    import ast

    for name, test in RUN_ELSEWHERE.items():
        assert (REPO / "benchmarks" / name).is_file(), f"benchmarks/{name} is gone: update RUN_ELSEWHERE"
        path, function = test.split("::")
        tree = ast.parse((REPO / path).read_text())
        body = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
        assert body is not None, f"{test} is gone: put {name} back in test_every_benchmark_runs_in_its_smoke_mode"
        source = ast.get_source_segment((REPO / path).read_text(), body) or ""
        assert f'"{name}"' in source and '"--smoke"' in source, f"{test} no longer runs {name} --smoke"


class TestWholeRuns:
    @pytest.mark.slow
    @pytest.mark.parametrize("name", WHOLE_RUNS)
    def test_runs_in_its_smoke_mode(self, name, tmp_path):
        assert (REPO / "benchmarks" / name).is_file(), f"benchmarks/{name} is gone: update WHOLE_RUNS"
        _smoke(name, tmp_path, 900)
