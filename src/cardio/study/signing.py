"""Ed25519 signatures of model bundles: who made a bundle, not only that its files are intact.

A bundle's `bundle.json` holds the sha256 of every other file, so signing `bundle.json` signs the whole bundle.
The author's private key is `$CARDIO_SIGNING_KEY` (a file path) or `<config dir>/signing_key`; `cardio run` and
`cardio sign` write `model/signature.json` with it. The user of a bundle trusts public keys: `--trusted-key` and
`<config dir>/trusted_keys`, against which the deploy service's `cardio predict` verifies it (cardio_deploy.trust).
The config dir is `$CARDIO_CONFIG_DIR`, else
`$XDG_CONFIG_HOME/cardio`, else `~/.config/cardio`. The `cryptography` library does the signing and key formats.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

from cardio.data import CardioError
from cardio.data.cache import config_dir, write_new, write_text_atomic

SIGNATURE = "signature.json"
SIGNED_FILE = "bundle.json"
# What is signed: this prefix and bundle.json's bytes, so that a cardio signature is never valid for another use.
DOMAIN = b"cardio-bundle-signature/1\n"


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


def sign(folder: Path, key) -> Path:
    """Write <folder>/signature.json: the key's public half and its signature of bundle.json."""
    folder = Path(folder)
    signature = key.sign(DOMAIN + (folder / SIGNED_FILE).read_bytes())
    pub = key.public_key()
    record = {"algorithm": "ed25519", "signed": SIGNED_FILE, "public_key": public_line(pub),
              "key_fingerprint": key_fingerprint(pub), "signature": base64.b64encode(signature).decode()}
    write_text_atomic(folder / SIGNATURE, json.dumps(record, indent=1))
    return folder / SIGNATURE


def keygen(dest: Path) -> tuple[Path, Path, str]:
    """A new ed25519 key pair: `dest` (private, OpenSSH format, mode 0600) and `dest`.pub, and the key's fingerprint;
    never replaces a file."""
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
    return dest, pub, key_fingerprint(key.public_key())
