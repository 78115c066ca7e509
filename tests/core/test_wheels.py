"""Issue 54: what each distribution's wheel holds, and what an installed wheel says about its source. An editable
install reads the source tree, so a file that a pyproject's package-data leaves out (defaults.yaml, the new-plugin
templates, a plugin's config.yaml) goes unnoticed until someone installs the wheel. scripts/wheels.sh installs every
wheel in a fresh venv in CI (minutes); these check the wheels' contents in seconds."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from cardio.study.record import _git_commit
from cardio_testing.scaffold import FILES

REPO = Path(__file__).resolve().parents[2]
# distribution folder -> the folder its import packages sit in
DISTS = {**{p: p for p in sorted(REPO.glob("services/*")) if (p / "pyproject.toml").is_file()}, REPO: REPO / "src",
         **{p: p for p in sorted(REPO.glob("plugins/*")) if (p / "pyproject.toml").is_file()}}
SKIP = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*")


def _tracked(folder: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-c", "-o", "--exclude-standard", "."], cwd=folder, capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"{folder} is not a git checkout: no list of its files to compare a wheel with")
    return [f for f in out.stdout.splitlines() if (folder / f).is_file()]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[Path, zipfile.ZipFile]:
    """Each distribution's wheel, built as scripts/wheels.sh builds it, from a copy (no build/ left in the tree).
    One pip command builds them all (a pip process each spent half the time starting pip)."""
    tmp = tmp_path_factory.mktemp("wheels")
    copies = {}
    for dist, packages in DISTS.items():
        copy = copies[dist] = tmp / "src" / dist.name
        copy.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(dist / name, copy / name)
        for package in (p for p in packages.glob("cardio*") if p.is_dir() and not p.name.endswith(".egg-info")):
            shutil.copytree(package, copy / package.relative_to(dist), ignore=SKIP)
    built = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(built), *map(str, copies.values())], check=True, capture_output=True)
    out = {}
    for dist, copy in copies.items():
        name = tomllib.loads((copy / "pyproject.toml").read_text())["project"]["name"]
        wheel = re.sub(r"[-_.]+", "_", name).lower()  # the wheel's file name spells the distribution so
        out[dist] = zipfile.ZipFile(next(built.glob(f"{wheel}-*.whl")))
    return out


def test_every_file_of_every_package_is_in_its_wheel(wheels):
    """Each file the checkout has in a distribution's import packages (modules, YAML, templates, JSON, checksums)
    is in the wheel at the same path: none left to package-data forgotten in a pyproject."""
    assert len(wheels) == len(DISTS) >= 8  # the kernel, the services (stats, testing ...), five plugins
    for dist, wheel in wheels.items():
        names = set(wheel.namelist())
        packages = DISTS[dist]
        files = [f"{p.name}/{f}" for p in packages.glob("cardio*") if p.is_dir() and not p.name.endswith(".egg-info")
                 for f in _tracked(p)]
        assert files, dist
        missing = [f for f in files if f not in names]
        assert not missing, f"{dist.relative_to(REPO) if dist != REPO else 'the kernel'}'s wheel lacks {missing}"


def test_the_kernel_wheel_holds_its_defaults_and_command(wheels):
    names = set(wheels[REPO].namelist())
    assert "cardio/defaults.yaml" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "cardio = cardio.cli:main" in wheels[REPO].read(entry_points).decode()


def test_each_plugin_wheel_holds_its_config_and_entry_point(wheels):
    for dist, wheel in wheels.items():
        if dist.parent.name != "plugins":
            continue
        names = set(wheel.namelist())
        assert f"cardio_{dist.name}/config.yaml" in names, dist.name
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        assert f"[cardio]\n{dist.name} = cardio_{dist.name}.plugin" in entry_points, dist.name


def test_the_testing_service_wheel_is_a_pytest_plugin_with_the_new_plugin_templates(wheels):
    """cardio-crt-testing's wheel declares its pytest11 entry point (`pytest --cardio-contract` where installed), and
    holds the templates `cardio new-plugin` (its command, by cardio.services) writes from."""
    wheel = wheels[REPO / "services/testing"]
    entry_points = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "[pytest11]\ncardio_testing = cardio_testing.pytest_plugin" in entry_points
    assert "[cardio.services]\ntesting = cardio_testing.cli" in entry_points
    assert {f"cardio_testing/templates/plugin/{t}" for t in FILES} <= set(wheel.namelist())


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_wheel_in_a_venv_inside_some_git_repository_reports_no_commit(tmp_path):
    """run.json's git_commit is the commit of the checkout cardio runs from. A wheel's site-packages inside another
    project's repository (its .venv) once reported that project's commit as cardio's."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path / "project"
    installed = project / ".venv/lib/python3.11/site-packages/cardio/study/record.py"
    checkout = project / "vendor/cardio/src/cardio/study/record.py"  # a checkout of cardio, not a git repository
    for module in (installed, checkout):
        module.parent.mkdir(parents=True)
        module.write_text("")
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "a project that is not cardio")
    assert _git_commit(installed) is None and _git_commit(checkout) is None
    clone = tmp_path / "clone"  # a git checkout of cardio's layout: its own commit
    (clone / "src/cardio/study").mkdir(parents=True)
    (clone / "src/cardio/study/record.py").write_text("")
    _git(clone, "init", "-q")
    _git(clone, "add", ".")
    _git(clone, "commit", "-q", "-m", "cardio")
    assert _git_commit(clone / "src/cardio/study/record.py") == _git(clone, "rev-parse", "HEAD")
