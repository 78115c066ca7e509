"""Who made a model bundle, for `cardio predict`: the user's trusted public keys (`--trusted-key` and
`<config dir>/trusted_keys`, one OpenSSH `ssh-ed25519 ...` line per key, `#` comments) and the bundle's
`signature.json` verified against them (the kernel signs: cardio.study.signing). With a trusted key, an unsigned
bundle or one whose signature does not verify is refused. The `cryptography` library does the verifying and key
formats."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Sequence

from cardio.data import CardioError
from cardio.study.signing import DOMAIN, SIGNATURE, SIGNED_FILE, bundle_fingerprint, key_fingerprint, trusted_keys_file


def load_public(text: str, where: str):
    """An ed25519 public key from one OpenSSH line (`ssh-ed25519 AAAA... comment`) or a PEM block."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key, load_ssh_public_key

    try:
        key = (load_pem_public_key(text.strip().encode()) if text.lstrip().startswith("-----BEGIN")
               else load_ssh_public_key(text.strip().encode()))
    except Exception:  # cryptography raises ValueError or UnsupportedAlgorithm for text that is no key
        raise CardioError(f"{where} is not a public key (expected one 'ssh-ed25519 AAAA...' line or a PEM "
                          "block)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CardioError(f"{where} is not an ed25519 public key; cardio bundles are signed with ed25519")
    return key


def trusted_keys(given: Sequence[str] = ()) -> list[tuple[object, str]]:
    """(key, where it came from) for each --trusted-key (a file, or the key's text) and each line of the user's
    trusted_keys file."""
    out: list[tuple[object, str]] = []
    for item in given:
        path = Path(item).expanduser()
        if path.is_file():
            out.append((load_public(_text(path), f"--trusted-key {path}"), str(path)))
        elif item.startswith(("ssh-ed25519 ", "-----BEGIN")):
            out.append((load_public(item, "--trusted-key"), "--trusted-key"))
        else:
            raise CardioError(f"--trusted-key {item}: no such file (give a public key file, e.g. signing_key.pub)")
    listed = trusted_keys_file()
    if os.path.lexists(listed):  # there: it must be read, or nothing runs (a trust list that fails open trusts all)
        if not listed.is_file():
            what = "a folder" if listed.is_dir() else "a dangling symbolic link" if not listed.exists() else \
                "not a regular file"
            raise CardioError(f"your trusted keys file {listed} is {what}; it cannot be read, so no bundle is "
                              "used: make it a file of 'ssh-ed25519 ...' lines, or remove it")
        for n, line in enumerate(_text(listed).splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((load_public(line, f"{listed} line {n}"), f"{listed} line {n}"))
    return out


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError) as e:
        raise CardioError(f"{path} cannot be read as a key file ({type(e).__name__})") from None


SIGNATURE_BYTES = 64  # an ed25519 signature


def _read_signature(path: Path) -> tuple[bytes, object]:
    """(signature bytes, the public key signature.json holds), from a well-formed cardio signature only: anything
    else (not a file, not JSON, another algorithm, a signature of the wrong length, a key that is not the one its
    fingerprint names) is refused in one line saying which."""
    def refuse(why: str) -> CardioError:
        return CardioError(f"{path} is not a well-formed cardio bundle signature ({why}); refused")

    if path.is_symlink() or not path.is_file():
        raise refuse("not a regular file")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise refuse("not valid JSON") from None
    if not isinstance(record, dict) or record.get("algorithm") != "ed25519" or record.get("signed") != SIGNED_FILE:
        raise refuse(f"not an ed25519 signature of {SIGNED_FILE}")
    try:
        signature = base64.b64decode(str(record.get("signature")), validate=True)
    except ValueError:
        raise refuse("its signature is not base64") from None
    if len(signature) != SIGNATURE_BYTES:
        raise refuse(f"a signature of {len(signature)} bytes; an ed25519 signature has {SIGNATURE_BYTES}")
    public = load_public(str(record.get("public_key", "")), f"{path}: its public_key")
    named = record.get("key_fingerprint")
    if named is not None and named != key_fingerprint(public):
        raise refuse(f"it names key {named} but holds key {key_fingerprint(public)}")
    return signature, public


def _verifies(key: object, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, data)  # type: ignore[attr-defined]
    except InvalidSignature:
        return False
    return True


def verify(folder: Path, trusted: Sequence[tuple[object, str]]) -> str:
    """The line to show about who made the bundle, saying only what was verified; with trusted keys, a bundle none
    of them signed is refused. A signature that is malformed, or that does not verify under the key it holds, is
    refused with or without trusted keys.

    Call after the manifest check: the signature covers bundle.json, bundle.json the other files."""
    folder = Path(folder)
    fp, path = bundle_fingerprint(folder), folder / SIGNATURE
    signed = _read_signature(path) if os.path.lexists(path) else None
    data = DOMAIN + (folder / SIGNED_FILE).read_bytes()
    own = signed is not None and _verifies(signed[1], signed[0], data)
    if signed is not None and not trusted and not own:
        raise CardioError(f"model bundle {folder} refused: its signature does not verify under the key it holds "
                          f"({key_fingerprint(signed[1])}): bundle.json was changed after it was signed, or the "
                          "signature was edited")
    if not trusted:
        who = (f"signed by key {key_fingerprint(signed[1])} (the signature verifies under it; no key is trusted, so "
               "who holds that key is not checked)" if signed else "unsigned")
        return (f"model bundle {fp}, {who}: checked for integrity only (its files match bundle.json), not for "
                f"who made it; pass --trusted-key PUB or list keys in {trusted_keys_file()} (docs/security.md)")
    if signed is None:
        raise CardioError(f"model bundle {folder} is not signed ({SIGNATURE} missing) and trusted keys are set; "
                          "refused (ask its author for a bundle signed with cardio sign)")
    for key, where in trusted:
        if _verifies(key, signed[0], data):
            return f"model bundle {fp}, signed by trusted key {key_fingerprint(key)} ({where})"
    held = key_fingerprint(signed[1])
    if own:
        why = f"it is signed by key {held}, which is not a trusted key"
    elif held in {key_fingerprint(k) for k, _ in trusted}:
        why = ("its signature does not verify under the trusted key it names: bundle.json was changed after it was "
               "signed (edited or resealed), or another key made the signature")
    else:
        why = f"its signature does not verify under the key it holds ({held}), which is not a trusted key either"
    raise CardioError(f"model bundle {folder} refused: {why}")
