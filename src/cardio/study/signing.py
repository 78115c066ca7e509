"""Ed25519 signatures of model bundles: who made a bundle, not only that its files are intact.

A bundle's `bundle.json` holds the sha256 of every other file, so signing `bundle.json` signs the whole bundle.
The author's private key is `$CARDIO_SIGNING_KEY` (a file path) or `<config dir>/signing_key`; `cardio run` and
`cardio sign` write `model/signature.json` with it. The user of a bundle trusts public keys: `--trusted-key` and
`<config dir>/trusted_keys` (one OpenSSH `ssh-ed25519 ...` line per key, `#` comments). With a trusted key, an
unsigned bundle or one whose signature does not verify is refused. The config dir is `$CARDIO_CONFIG_DIR`, else
`$XDG_CONFIG_HOME/cardio`, else `~/.config/cardio`. The `cryptography` library does the signing and key formats.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Sequence

from cardio.data import CardioError
from cardio.data.cache import config_dir, write_new, write_text_atomic

SIGNATURE = "signature.json"
SIGNED_FILE = "bundle.json"
# What is signed: this prefix and bundle.json's bytes, so that a cardio signature is never valid for another use.
_DOMAIN = b"cardio-bundle-signature/1\n"


def trusted_keys_file() -> Path:
    return config_dir() / "trusted_keys"


def signing_key_file() -> Path | None:
    """The configured private key file: $CARDIO_SIGNING_KEY (must exist), else <config dir>/signing_key if present."""
    named = os.environ.get("CARDIO_SIGNING_KEY")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise CardioError(f"CARDIO_SIGNING_KEY names {path}, which is not a file (make one with cardio keygen)")
        return path
    default = config_dir() / "signing_key"
    return default if default.is_file() else None


def load_private(path: Path):
    """The ed25519 private key in `path` (OpenSSH or PEM; a passphrase from $CARDIO_SIGNING_KEY_PASSPHRASE)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):  # as ssh does: a key others can read is no longer only yours
        raise CardioError(f"signing key {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                          f"chmod 600 {path}")
    data = path.read_bytes()
    password = os.environ.get("CARDIO_SIGNING_KEY_PASSPHRASE")
    pw = password.encode() if password else None
    key = None
    for loader in (load_ssh_private_key, load_pem_private_key):
        try:
            key = loader(data, pw)
            break
        except TypeError:  # encrypted without a passphrase, or a passphrase for an unencrypted key
            raise CardioError(f"signing key {path} is encrypted: set CARDIO_SIGNING_KEY_PASSPHRASE, or use an "
                              "unencrypted key file readable by you only") from None
        except ValueError:
            continue
    if key is None:
        raise CardioError(f"signing key {path} is not a readable private key (OpenSSH or PEM; wrong passphrase?)")
    if not isinstance(key, Ed25519PrivateKey):
        raise CardioError(f"signing key {path} is a {type(key).__name__.removeprefix('_')}; cardio signs with "
                          "ed25519 keys (cardio keygen, or ssh-keygen -t ed25519)")
    return key


def signing_key():
    """The configured private key, loaded and checked, or None when none is configured."""
    path = signing_key_file()
    return None if path is None else load_private(path)


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


def public_line(key) -> str:
    from cryptography.hazmat.primitives import serialization as s

    return key.public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH).decode()


def key_fingerprint(key) -> str:
    """As `ssh-keygen -l` prints it: SHA256 of the raw public key, unpadded base64."""
    digest = hashlib.sha256(key.public_bytes_raw()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def bundle_fingerprint(folder: Path) -> str:
    """sha256 of bundle.json, which lists every other file's sha256: one value that names the whole bundle."""
    return "sha256:" + hashlib.sha256((Path(folder) / SIGNED_FILE).read_bytes()).hexdigest()


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


def sign(folder: Path, key) -> Path:
    """Write <folder>/signature.json: the key's public half and its signature of bundle.json."""
    folder = Path(folder)
    signature = key.sign(_DOMAIN + (folder / SIGNED_FILE).read_bytes())
    pub = key.public_key()
    record = {"algorithm": "ed25519", "signed": SIGNED_FILE, "public_key": public_line(pub),
              "key_fingerprint": key_fingerprint(pub), "signature": base64.b64encode(signature).decode()}
    write_text_atomic(folder / SIGNATURE, json.dumps(record, indent=1))
    return folder / SIGNATURE


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
    data = _DOMAIN + (folder / SIGNED_FILE).read_bytes()
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


def keygen(dest: Path) -> tuple[Path, Path]:
    """A new ed25519 key pair: `dest` (private, OpenSSH format, mode 0600) and `dest`.pub; never replaces a file."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    dest = Path(dest).expanduser()
    pub = dest.with_name(dest.name + ".pub")
    for path in (dest, pub):
        if path.exists():
            raise CardioError(f"{path} already exists; a key is never replaced (choose another --out)")
    if dest.parent.exists() and not dest.parent.is_dir():
        raise CardioError(f"{dest.parent} is a file, not a folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption())
    try:  # each file whole or absent (a full disk leaves no empty key that a retry would call existing)
        write_new(dest, private, 0o600)  # never readable by others, even briefly
    except FileExistsError:
        raise CardioError(f"{dest} already exists; a key is never replaced (choose another --out)") from None
    try:
        write_new(pub, (public_line(key.public_key()) + " cardio\n").encode(), 0o644)
    except BaseException as e:
        dest.unlink()
        if isinstance(e, FileExistsError):
            raise CardioError(f"{pub} already exists; a key is never replaced (choose another --out)") from None
        raise
    return dest, pub
