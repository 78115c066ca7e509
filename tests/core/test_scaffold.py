"""`cardio new-plugin` writes a package that installs, passes its own test and runs end to end."""
import json
import subprocess
import sys

import pytest


def _pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def test_new_plugin_round_trip(tmp_path, cardio_cli, cardio_subprocess):
    proc = cardio_cli("new-plugin", "my_modality", "--dir", str(tmp_path), plugins_path=False, check=True)
    pkg = tmp_path / "cardio-my-modality"
    assert pkg.is_dir() and "pip install -e" in proc.stdout
    installed = _pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(pkg))
    assert installed.returncode == 0, installed.stderr
    try:
        rows = json.loads(cardio_subprocess("plugins", "--json", plugins_path=False, check=True).stdout)
        mine = next(r for r in rows if r["name"] == "my_modality")
        assert mine["error"] is None and "cardio_explain" in mine["hooks"]
        own = subprocess.run([sys.executable, "-m", "pytest", "-q", str(pkg / "tests")], capture_output=True,
                             text=True, cwd=tmp_path)
        assert own.returncode == 0, own.stdout[-3000:]
        cardio_subprocess("run", "--plugin", "my_modality", "--out", "r", "--set", "train.epochs=2",
                   plugins_path=False, check=True)
        run = tmp_path / "r"
        for name in ("config.yaml", "metrics.json", "predictions.csv", "report.md", "report.html", "run.log"):
            assert (run / name).is_file(), name
        assert (run / "figures" / "input_weights.png").is_file()
    finally:
        _pip("uninstall", "-y", "cardio-my-modality")


@pytest.mark.parametrize("name", ["My-Plugin", "1abc", "class"])
def test_new_plugin_rejects_bad_names(cardio_cli, tmp_path, name):
    proc = cardio_cli("new-plugin", name, "--dir", str(tmp_path), plugins_path=False)
    assert proc.returncode == 2 and "must be lower-case" in proc.stderr


def test_new_plugin_never_overwrites(cardio_cli, tmp_path):
    cardio_cli("new-plugin", "again", "--dir", str(tmp_path), plugins_path=False, check=True)
    proc = cardio_cli("new-plugin", "again", "--dir", str(tmp_path), plugins_path=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
