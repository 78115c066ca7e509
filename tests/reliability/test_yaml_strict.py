"""Reliability, family "configs read strictly" (issue 58, case 14): every YAML cardio reads from a user (--config, a
run folder's config.yaml, --set values, a plugin's defaults) refuses a key given twice in one mapping and every tag,
in one line naming the file and the line.

Before (54c188f): `cv:` twice, or `folds:` twice in one mapping, kept the last without a word (`cardio config` printed
folds: 3, validate and run used it); `cohort.dir: !!binary aGVsbG8=` was printed by `cardio config` and gave a
TypeError traceback in validate and run. Controls in pairs: the same keys once each, and a merge key (`<<:`), read.
"""
from __future__ import annotations

import pytest

from cardio import CardioError
from cardio import config as config_mod

CASES = {
    "cv twice": ("cv:\n  folds: 2\ncv:\n  folds: 3\n", "gives the key 'cv' twice in one mapping (lines 1 and 3)"),
    "folds twice": ("cv:\n  folds: 2\n  folds: 3\n", "gives the key 'folds' twice in one mapping (lines 2 and 3)"),
    "binary": ("cohort:\n  dir: !!binary aGVsbG8=\n", "uses the YAML tag !!binary (line 2); tags are not allowed"),
    "local tag": ("seed: !seed 3\n", "uses the YAML tag !seed (line 1)"),
    "python tag": ("seed: !!python/object/apply:os.system [echo hi]\n", "uses the YAML tag !!python/object/apply"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["config", "validate", "run"])
def test_a_config_with_a_key_twice_or_a_tag_is_refused_in_one_line(cardio_cli, tmp_path, case, command):
    text, named = CASES[case]
    (tmp_path / "c.yaml").write_text(text)
    extra = ["--out", str(tmp_path / "run")] if command == "run" else []
    result = cardio_cli(command, "--plugin", "toy", "--config", "c.yaml", *extra)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("cardio: error:")]
    assert "c.yaml" in line and named in line, line
    assert not (tmp_path / "run").exists()


def test_the_same_keys_once_each_and_a_merge_key_read(tmp_path):
    (tmp_path / "c.yaml").write_text("base: &b {folds: 2, repeats: 1}\ncv:\n  <<: *b\n  folds: 3\n")
    assert config_mod.load_yaml(tmp_path / "c.yaml")["cv"] == {"folds": 3, "repeats": 1}


def test_a_run_folders_config_and_a_set_value_are_read_as_strictly(tmp_path):
    from cardio_report.outputs import run_config

    (tmp_path / "config.yaml").write_text("seed: 0\nseed: 1\n")
    with pytest.raises(CardioError, match="gives the key 'seed' twice"):
        run_config(tmp_path)
    with pytest.raises(CardioError, match=r"--set cv: the value gives the key 'folds' twice"):
        config_mod.parse_set("cv={folds: 2, folds: 3}")
    with pytest.raises(CardioError, match=r"--set seed: the value uses the YAML tag !!binary"):
        config_mod.parse_set("seed=!!binary aGk=")


def test_a_plugins_defaults_with_a_key_twice_are_refused(tmp_path, monkeypatch):
    package = tmp_path / "twice_defaults"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "config.yaml").write_text("train:\n  epochs: 2\ntrain:\n  epochs: 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CardioError, match="twice_defaults's config.yaml gives the key 'train' twice"):
        config_mod.package_defaults("twice_defaults")
