"""Shared fixtures: the test plugins really installed (pip --target), and a runner of the real CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _worker_threads() -> None:
    """Under pytest-xdist (-n N), each worker's share of the allotted CPUs for torch and OpenMP, set before cardio or
    torch loads (cardio keeps what is set): N workers of all the CPUs' threads each oversubscribe the cores. The
    processes a test starts inherit it; what the user set stays."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not workers.isdigit() or "OMP_NUM_THREADS" in os.environ:
        return
    try:
        from cardio import allotted_cpus  # light: loads no torch, NumPy or pandas (tests/core/test_import_set.py)
        cpus = allotted_cpus()
    except ImportError:  # CI's venv of the statistics service alone (.ci/run): no kernel there
        cpus = len(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = str(max(1, cpus // int(workers)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_worker_threads()

# The real data sets: $CARDIO_DATA (what .ci/run sets), else the development tree's ../shared/data.
SHARED_DATA = Path(os.environ.get("CARDIO_DATA") or os.environ.get("CARDIO_SHARED_DATA")
                   or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True, scope="session")
def _own_config_dir(tmp_path_factory):
    """A user config folder of the suite's own: a developer's signing key or trusted keys in ~/.config/cardio would
    sign the test runs' bundles and refuse the unsigned ones."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("CARDIO_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        yield


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory) -> Path:
    """tests/fixtures/toy_plugins installed by pip into a folder of its own, found through PYTHONPATH. Built from a
    copy: setuptools builds in the source folder, where two xdist workers' builds would collide."""
    target = tmp_path_factory.mktemp("toy_site")
    source = shutil.copytree(REPO / "tests" / "fixtures" / "toy_plugins", tmp_path_factory.mktemp("toy_src") / "src",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return target


@pytest.fixture(scope="module")
def toy_env(toy_site, tmp_path_factory, request):
    """A module's working folder with the toy plugins importable here and in the processes a local executor starts,
    and a cache of its own (for the many runs of a sweep module, where cardio_cli's per-test folder would not do)."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        m.setenv("CARDIO_CACHE", str(root / "cache"))
        m.setenv("PYTHONPATH", str(toy_site))
        m.syspath_prepend(str(toy_site))
        yield root


@pytest.fixture(scope="module")
def pair_cache(tmp_path_factory, request) -> Path:
    """One cache for a module's control pair at the same settings: what the first run puts there (the synthetic
    cohort the null control permutes, MIT-BIH's beat sets) the second reads instead of making it again."""
    return tmp_path_factory.mktemp(f"{request.module.__name__.rsplit('.', 1)[-1]}-cache")


@pytest.fixture()
def cardio_cli(toy_site, tmp_path, monkeypatch):
    """Run `cardio ...` in process (cardio_testing.harness.invoke) in tmp_path, with the toy plugins importable.

    Returns a CompletedProcess (returncode, stdout, stderr), like the command run in a shell.
    """
    from cardio_testing.harness import invoke

    def run(*args: str, env: dict | None = None, check: bool = False, plugins_path: bool = True):
        with monkeypatch.context() as m:
            m.chdir(tmp_path)
            m.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
            for key, value in (env or {}).items():
                m.setenv(key, value)
            if plugins_path:
                m.syspath_prepend(str(toy_site))
            result = invoke(*args)
        proc = subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"cardio {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return run


@pytest.fixture()
def cardio_subprocess(toy_site, tmp_path):
    """Run `cardio ...` in a fresh interpreter: for what needs one (kill -9, a freshly pip-installed plugin)."""

    def run(*args: str, env: dict | None = None, check: bool = False, plugins_path: bool = True, **kw):
        e = {**os.environ, "CARDIO_CACHE": str(tmp_path / "cache"), **(env or {})}
        if plugins_path:
            e["PYTHONPATH"] = os.pathsep.join([str(toy_site), e.get("PYTHONPATH", "")])
        proc = subprocess.run([sys.executable, "-m", "cardio.cli", *args], capture_output=True, text=True,
                              env=e, cwd=tmp_path, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"cardio {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return run


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """$CARDIO_DATA/mitdb; the test is skipped, with the reason, without it."""
    path = SHARED_DATA / "mitdb"
    if not (path / "100.atr").is_file():
        pytest.skip(f"MIT-BIH Arrhythmia Database not found at {path} (set CARDIO_DATA)")
    return path


@pytest.fixture(scope="session")
def echo_dicom_dir() -> Path:
    """$CARDIO_DATA/echo_dicom: four real echo cine DICOMs (see its SOURCE.md); skipped, with the reason, without it."""
    path = SHARED_DATA / "echo_dicom"
    if not (path / "color3d_jpeg_baseline.dcm").is_file():
        pytest.skip(f"real echo DICOM clips not found at {path} (set CARDIO_DATA)")
    return path


@pytest.fixture()
def cpu_context(tmp_path):
    """cpu_context(): cardio_testing.harness.cpu_context writing to tmp_path."""
    from cardio_testing.harness import cpu_context as make_context

    def make():
        return make_context(tmp_path)

    return make
