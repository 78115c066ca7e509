"""The cluster service joins `cardio` through the entry-point group `cardio.services`: `cardio sweep` and the local
and slurm executors are its; without it `cardio run` runs inline and refuses another executor in one line naming the
service, before anything is written."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_cluster")
pytest.importorskip("cardio_perfusion_polar")

from cardio_testing.harness import invoke_with_services as cardio


def test_sweep_and_the_executors_are_the_cluster_services():
    listed = cardio("plugins")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("cluster ") and line.endswith("service  adds: cardio sweep, --executor local, "
                                                             "--executor slurm") for line in listed.stdout.splitlines())
    assert "  sweep " in cardio("--help").stdout
    assert "  sweep " not in cardio("--help", services={}).stdout


def test_without_the_cluster_service_a_process_executor_is_one_line_naming_it(tmp_path):
    refused = cardio("run", "--plugin", "perfusion_polar", "--out", "r", "--executor", "local", services={},
                     cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "executor.name is 'local'; use inline (local comes with the cluster service, cardio-crt-cluster: " \
        in refused.stderr and "-m pip install -e services/cluster)" in refused.stderr, refused.stderr
    assert not (tmp_path / "r").exists()
