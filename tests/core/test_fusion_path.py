"""The README's documented path from two cohort folders to a fused report, run as written (issue 55: fusing two real
runs took 5 attempts): `cardio synthetic-crt` writes the cohort, ecg_transfer and spect_polar run it with their fast
profiles and one split, and `cardio fuse` makes the report, each command once."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
pytest.importorskip("cardio_spect_polar")

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> list[list[str]]:
    """The README's block after 'From two cohort folders to a fused report': its commands, joined over backslashes."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("**From two cohort folders to a fused report, first time.**", 1)[1].split("\n\n", 2)[1]
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line.strip())[1:] for line in joined.splitlines() if line.strip().startswith("cardio ")]


def test_the_readme_fusion_path_works_first_time(cardio_cli, tmp_path, mitdb_dir):
    commands = _documented()
    assert [c[0] for c in commands] == ["synthetic-crt", "run", "run", "fuse"]
    # the fast profiles agree on the fold count: no cv.folds on the documented lines
    assert not any("cv.folds" in word for words in commands for word in words), commands
    for words in commands:
        res = cardio_cli(*words, env={"CARDIO_DATA": str(mitdb_dir.parent)}, plugins_path=False)
        assert res.returncode == 0, f"cardio {shlex.join(words)}\n{res.stderr[-3000:]}"
    # one outcome, one name: both runs' task is the label, so fuse maps nothing
    assert "is its label" not in res.stderr, res.stderr
    for run in ("two-ecg", "two-spect"):
        tasks = set(pd.read_csv(tmp_path / "runs" / run / "predictions.csv")["task"])
        assert tasks == {"responder"}, (run, tasks)
    fused = tmp_path / "runs" / "two-fused"
    metrics = json.loads((fused / "metrics.json").read_text())
    models = {e["model"] for e in metrics["estimates"] if e["metric"] == "auc"}
    assert {"fused", "ecg_transfer", "spect_polar"} <= models, models
    assert (fused / "report.html").exists() and "fused" in (fused / "report.md").read_text()


@pytest.mark.parametrize("plugin", ["ecg_transfer", "spect_polar", "perfusion_polar", "echo_cmr", "mmode_septal_flash"])
def test_every_fast_profile_cross_validates_in_three_folds(plugin):
    """Issue 55: the fast profiles differed (ecg_transfer 5 folds, spect_polar 3), so two fast runs did not fuse. Each
    plugin's fast profile now has 3 folds (mmode_septal_flash's under cv.method=kfold; echo_cmr has no fast profile and
    its default is 3), and each plugin's README says so."""
    pytest.importorskip(f"cardio_{plugin}")
    from cardio_testing.harness import plugin_config

    config = plugin_config(plugin, ["cv.method=kfold", *(["profile=fast"] if plugin != "echo_cmr" else [])])
    assert config["cv"]["folds"] == 3, (plugin, config["cv"])
    readme = (ROOT / "plugins" / plugin / "README.md").read_text(encoding="utf-8")
    assert "3 folds" in readme.split("**Fast profile.**", 1)[-1][:600] and "**Fast profile.**" in readme
