"""Bundles family: a bundle's author can be trusted. A run signs its bundle with the user's ed25519 key; predict
under a trusted key refuses a resealed bundle (an edited file, checksums recomputed), an unsigned one and one
signed by another key, and accepts the bundle as signed; without a trusted key it says the check is integrity
only and prints the bundle's fingerprint. Round five (issue 58): trust fails closed (fold names that leave the
bundle, a trusted-keys file that cannot be read, a malformed signature: each refused with its reason) and shows
only what was verified (cases 9 to 12)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from cardio_testing.harness import check_refused, invoke


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
               "--set", "explain=false", "--set", "report.figures=false", "--set", "fold_models=true")
    assert res.exit_code == 0, res.stderr[-2000:]
    toy = __import__("cardio_toy").__file__
    assert toy is not None  # a package on disk
    d = yaml.safe_load((Path(toy).parent / "config.yaml").read_text())["data"]
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


# ---- round five (issue 58): trust fails closed, and says only what was verified ------------------------------------

def _reseal(model: Path, info: dict) -> None:
    """bundle.json with `info`, signed again by the trusted key (through the API: `cardio sign` checks the bundle)."""
    from cardio.study import signing

    (model / "bundle.json").write_text(json.dumps(info, indent=1))
    with pytest.MonkeyPatch.context() as m:
        m.setenv("CARDIO_CONFIG_DIR", str(model.parents[1] / "cfg"))
        signing.sign(model, signing.signing_key())


def test_fold_names_that_leave_the_bundle_are_refused(signed):
    """Case 9: folds ["fold0", "../../../../outside/evilfold"] with recomputed checksums: `predict --ensemble folds`
    loaded weights from outside the bundle, exit 0, even signed by the trusted key."""
    run = _copy(signed, "evilfold")
    model = run / "model"
    outside = signed / "outside" / "evilfold"
    shutil.rmtree(outside, ignore_errors=True)
    shutil.copytree(model / "folds" / "fold1", outside)
    shutil.rmtree(model / "folds" / "fold1")
    name = os.path.relpath(outside, model / "folds")
    info = json.loads((model / "bundle.json").read_text())
    files = {k: v for k, v in info["files"].items() if not k.startswith("folds/fold1/")}
    files.update({f"folds/{name}/{f}": hashlib.sha256((outside / f).read_bytes()).hexdigest()
                  for f in ("weights.safetensors", "params.json")})
    _reseal(model, {**info, "folds": ["fold0", name], "files": files})
    pub = str(signed / "cfg" / "signing_key.pub")
    res = _predict(signed, "evilfold", "p9", "--ensemble", "folds", "--trusted-key", pub)
    check_refused(res, f"names fold(s) ['{name}'], which are not fold names")
    assert not (signed / "p9" / "predictions.csv").exists()
    check_refused(_cli(signed, "sign", "evilfold"), "which are not fold names")
    # a fold model inside the bundle that is a symbolic link to weights elsewhere
    run = _copy(signed, "linkfold")
    target = run / "model" / "folds" / "fold1" / "weights.safetensors"
    shutil.copy(target, signed / "outside" / "w.safetensors")
    target.unlink()
    target.symlink_to(signed / "outside" / "w.safetensors")
    check_refused(_predict(signed, "linkfold", "p9b", "--ensemble", "folds"), "holds symbolic link(s) "
                  "folds/fold1/weights.safetensors")


@pytest.mark.parametrize("kind", ["folder", "dangling symbolic link"])
def test_a_trusted_keys_file_that_cannot_be_read_refuses(signed, kind):
    """Case 10: trusted_keys a folder or a dangling symlink: an unsigned bundle was used, "checked for integrity
    only"."""
    run = _copy(signed, "unsigned10")
    (run / "model" / "signature.json").unlink()
    config = signed / f"cfg10-{kind.split()[0]}"
    shutil.rmtree(config, ignore_errors=True)
    config.mkdir()
    if kind == "folder":
        (config / "trusted_keys").mkdir()
    else:
        (config / "trusted_keys").symlink_to(config / "nowhere")
    res = _predict(signed, "unsigned10", "p10", config=config.name)
    check_refused(res, f"your trusted keys file {config / 'trusted_keys'} is a {kind}")
    assert not (signed / "p10").exists()


def test_a_signature_shows_only_what_was_verified(signed):
    """Case 11: signed by an untrusted key whose signature.json names the trusted key's fingerprint, the bundle was
    reported as "signed by key SHA256:<the trusted key's> (not checked: no trusted key)"."""
    mallory = signed / "mallory11" / "key"
    shutil.rmtree(mallory.parent, ignore_errors=True)
    assert _cli(signed, "keygen", "--out", str(mallory)).exit_code == 0
    run = _copy(signed, "claims")
    res = _cli(signed, "sign", "claims", CARDIO_SIGNING_KEY=str(mallory))
    assert res.exit_code == 0, res.stderr
    honest = _predict(signed, "claims", "p11a", config="nobody")  # what is shown is the key that verifies
    assert honest.exit_code == 0, honest.stderr[-2000:]
    theirs = json.loads((run / "model" / "signature.json").read_text())["key_fingerprint"]
    assert f"signed by key {theirs} (the signature verifies under it; no key is trusted" in honest.stderr
    trusted = json.loads((signed / "a" / "model" / "signature.json").read_text())["key_fingerprint"]
    record = json.loads((run / "model" / "signature.json").read_text())
    (run / "model" / "signature.json").write_text(json.dumps({**record, "key_fingerprint": trusted}))
    for extra, config in (((), "nobody"), (("--trusted-key", str(signed / "cfg" / "signing_key.pub")), "cfg")):
        res = _predict(signed, "claims", "p11", *extra, config=config)
        check_refused(res, f"it names key {trusted} but holds key {theirs}")
    # the trusted key's public line put in too: the signature does not verify under it, with or without trust
    pub = (signed / "cfg" / "signing_key.pub").read_text().strip()
    (run / "model" / "signature.json").write_text(json.dumps({**record, "key_fingerprint": trusted, "public_key": pub}))
    check_refused(_predict(signed, "claims", "p11", config="nobody"), "its signature does not verify under the key "
                  "it holds")


def test_malformed_signatures_are_refused_with_their_reason(signed):
    """Case 12: signature.json a folder raised an IsADirectoryError traceback; a 10-byte signature was refused
    "because bundle.json was changed"."""
    pub = str(signed / "cfg" / "signing_key.pub")
    run = _copy(signed, "sigdir")
    (run / "model" / "signature.json").unlink()
    (run / "model" / "signature.json").mkdir()
    for extra, config in (((), "nobody"), (("--trusted-key", pub), "cfg")):
        check_refused(_predict(signed, "sigdir", "p12", *extra, config=config), "signature.json is not a "
                      "well-formed cardio bundle signature (not a regular file)")
    run = _copy(signed, "short")
    record = json.loads((run / "model" / "signature.json").read_text())
    record["signature"] = base64.b64encode(b"0123456789").decode()
    (run / "model" / "signature.json").write_text(json.dumps(record))
    res = _predict(signed, "short", "p12", "--trusted-key", pub)
    check_refused(res, "(a signature of 10 bytes; an ed25519 signature has 64)")
    assert "bundle.json was changed" not in res.stderr
