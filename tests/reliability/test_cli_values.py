"""CLI values family: values and paths given on the command line that are out of range, or point at the wrong kind
of file, are one line naming the value and the problem (exit 2), never a traceback; `synthetic-crt --out` never
replaces the user's files; a profile the user edits with --set is the profile applied."""
from __future__ import annotations

import pytest
import yaml

from cardio_testing.harness import check_refused, checksums

SYNTH = ("synthetic-crt", "--plugins", "toy,ecg_transfer", "--patients", "20")


@pytest.mark.parametrize("args,must_name", [
    (("run", "--plugin", "toy", "--config", "/dev/zero"), "config file /dev/zero is not a regular file"),
    (("new-cohort", "--plugin", "toy", "afile/sub"), "afile/sub: afile is a file, not a folder"),
    ((*SYNTH, "--out", "s", "--weight", "inf"), "--weight inf must be a finite number > 0"),
    ((*SYNTH, "--out", "s", "--weight", "nan"), "--weight nan must be a finite number > 0"),
    ((*SYNTH, "--out", "s", "--seed", "-1"), "--seed -1 must be an integer from 0"),
    (("new-plugin", "cardio"), "plugin name 'cardio' is the framework's own name"),
])
def test_bad_values_are_one_line(cardio_cli, tmp_path, args, must_name):
    (tmp_path / "afile").write_text("mine\n")
    check_refused(cardio_cli(*args), must_name)
    assert not (tmp_path / "s").exists() and (tmp_path / "afile").read_text() == "mine\n"


def test_a_big_config_is_refused_unread(cardio_cli, tmp_path):
    (tmp_path / "big.yaml").write_bytes(b"#" * (2 << 20))
    check_refused(cardio_cli("run", "--plugin", "toy", "--config", "big.yaml"), "big.yaml is over 1 MiB")


def test_synthetic_crt_never_replaces_the_users_files(cardio_cli, tmp_path):
    mine = tmp_path / "cohort"
    (mine / "ecg_transfer").mkdir(parents=True)
    (mine / "patients.csv").write_text("patient_id,responder\nmine,1\n")
    (mine / "ecg_transfer" / "cohort.csv").write_text("mine\n")
    before = checksums(mine)
    check_refused(cardio_cli(*SYNTH, "--out", "cohort"), "--out cohort exists and is not an empty folder")
    assert checksums(mine) == before
    (tmp_path / "empty").mkdir()  # an empty folder is written into
    res = cardio_cli("synthetic-crt", "--plugins", "toy,toy_b", "--patients", "20", "--out", "empty")
    assert res.returncode == 2 and "toy_b" in res.stderr  # the plugin check comes before any file is written
    assert not list((tmp_path / "empty").iterdir())


def test_a_profile_edited_with_set_is_the_profile_applied(cardio_cli):
    res = cardio_cli("config", "--plugin", "perfusion_polar", "--set", "profiles.fast.cv.folds=4",
                     "--set", "profile=fast")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["cv"]["folds"] == 4 and cfg["profiles"]["fast"]["cv"]["folds"] == 4
    check_refused(cardio_cli("config", "--plugin", "perfusion_polar", "--set", "profiles.fast.cv.folds=1",
                             "--set", "profile=fast"), "cv.folds = 1 is out of range")
    check_refused(cardio_cli("config", "--plugin", "perfusion_polar", "--set", "profiles.fast=3",
                             "--set", "profile=fast"), "profiles.fast")
