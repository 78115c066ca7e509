"""Bundles family: a bundle's author can be trusted. A run signs its bundle with the user's ed25519 key; predict
under a trusted key refuses a resealed bundle (an edited file, checksums recomputed), an unsigned one and one
signed by another key, and accepts the bundle as signed; without a trusted key it says the check is integrity
only and prints the bundle's fingerprint."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from cardio.testing import check_refused, invoke


def _cli(root: Path, *args: str, **env: str):
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        m.setenv("CARDIO_CONFIG_DIR", str(root / env.pop("config", "cfg")))
        m.delenv("CARDIO_SIGNING_KEY", raising=False)
        for k, v in env.items():
            m.setenv(k, v)
        return invoke(*args)


@pytest.fixture(scope="module")
def signed(toy_env):
    """A toy run signed with the key `cardio keygen` made in the user's config folder, and a labelled cohort."""
    from cardio_toy.plugin import synthetic_table

    res = _cli(toy_env, "keygen")
    assert res.exit_code == 0 and "signing_key.pub" in res.stdout, res.stderr
    res = _cli(toy_env, "run", "--plugin", "toy", "--out", "a", "--set", "train.epochs=1", "--set", "cv.folds=2",
               "--set", "explain=false", "--set", "report.figures=false")
    assert res.exit_code == 0, res.stderr[-2000:]
    d = yaml.safe_load((Path(__import__("cardio_toy").__file__).parent / "config.yaml").read_text())["data"]
    (toy_env / "site_b").mkdir()
    synthetic_table(d, 7).assign(record_id=lambda t: "b" + t["record_id"],
                                 patient_id=lambda t: "b" + t["patient_id"]).to_csv(toy_env / "site_b" / "cohort.csv",
                                                                                    index=False)
    return toy_env


def _copy(root: Path, name: str) -> Path:
    shutil.rmtree(root / name, ignore_errors=True)
    shutil.copytree(root / "a", root / name)
    return root / name


def _predict(root: Path, run: str, out: str, *extra: str, **env: str):
    shutil.rmtree(root / out, ignore_errors=True)
    return _cli(root, "predict", "--model", run, "--cohort", "site_b", "--out", out, *extra, **env)


def test_the_run_signs_and_a_trusted_key_accepts(signed):
    assert json.loads((signed / "a" / "model" / "signature.json").read_text())["algorithm"] == "ed25519"
    res = _predict(signed, "a", "p1", "--trusted-key", str(signed / "cfg" / "signing_key.pub"), config="other")
    assert res.exit_code == 0, res.stderr[-2000:]
    assert "signed by trusted key SHA256:" in res.stderr
    # the trusted_keys file of the user's config folder does the same
    (signed / "cfg" / "trusted_keys").write_text("# my colleague\n" + (signed / "cfg" / "signing_key.pub").read_text())
    try:
        res = _predict(signed, "a", "p2")
        assert res.exit_code == 0 and "signed by trusted key" in res.stderr and "trusted_keys line 2" in res.stderr
    finally:
        (signed / "cfg" / "trusted_keys").unlink()


def test_without_a_trusted_key_integrity_only_with_the_fingerprint(signed):
    res = _predict(signed, "a", "p3", config="nobody")
    digest = hashlib.sha256((signed / "a" / "model" / "bundle.json").read_bytes()).hexdigest()
    assert res.exit_code == 0, res.stderr[-2000:]
    assert f"sha256:{digest}" in res.stderr and "checked for integrity only" in res.stderr


def test_a_resealed_bundle_is_refused_under_a_trusted_key(signed):
    run = _copy(signed, "resealed")
    model = run / "model"
    params = json.loads((model / "params.json").read_text())
    (model / "params.json").write_text(json.dumps({**params, "hidden": 0}))  # every value at 0, then resealed
    info = json.loads((model / "bundle.json").read_text())
    info["files"]["params.json"] = hashlib.sha256((model / "params.json").read_bytes()).hexdigest()
    (model / "bundle.json").write_text(json.dumps(info, indent=1))
    res = _predict(signed, "resealed", "p4", "--trusted-key", str(signed / "cfg" / "signing_key.pub"))
    check_refused(res, "signature does not verify")
    assert not (signed / "p4" / "predictions.csv").exists()


def test_unsigned_and_wrong_key_are_refused(signed):
    run = _copy(signed, "unsigned")
    (run / "model" / "signature.json").unlink()
    pub = str(signed / "cfg" / "signing_key.pub")
    check_refused(_predict(signed, "unsigned", "p5", "--trusted-key", pub), "is not signed")
    res = _cli(signed, "keygen", "--out", str(signed / "mallory" / "key"))
    assert res.exit_code == 0, res.stderr
    res = _cli(signed, "sign", "unsigned", CARDIO_SIGNING_KEY=str(signed / "mallory" / "key"))
    assert res.exit_code == 0 and "signed by key SHA256:" in res.stdout, res.stderr
    check_refused(_predict(signed, "unsigned", "p6", "--trusted-key", pub), "not a trusted key")
    check_refused(_predict(signed, "a", "p7", "--trusted-key", str(signed / "mallory" / "key.pub")),
                  "not a trusted key")


def test_key_files_are_checked(signed):
    (signed / "loose").write_bytes((signed / "cfg" / "signing_key").read_bytes())
    (signed / "loose").chmod(0o644)
    check_refused(_cli(signed, "sign", "a", CARDIO_SIGNING_KEY=str(signed / "loose")), "chmod 600")
    check_refused(_cli(signed, "keygen"), "already exists")  # a key is never replaced
    (signed / "bad.pub").write_text("ssh-rsa AAAA nope\n")
    check_refused(_predict(signed, "a", "p8", "--trusted-key", str(signed / "bad.pub")), "bad.pub")
