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
from cardio.data.cache import write_text_atomic

SIGNATURE = "signature.json"
SIGNED_FILE = "bundle.json"
# What is signed: this prefix and bundle.json's bytes, so that a cardio signature is never valid for another use.
_DOMAIN = b"cardio-bundle-signature/1\n"


def config_dir() -> Path:
    """The user's cardio config folder (signing key, trusted keys)."""
    if os.environ.get("CARDIO_CONFIG_DIR"):
        return Path(os.environ["CARDIO_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "cardio"


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
    if listed.is_file():
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


def _read_signature(path: Path) -> tuple[bytes, str]:
    """(signature bytes, the fingerprint of the key it claims) from signature.json; damage is one line."""
    try:
        record = json.loads(path.read_text())
        signature = base64.b64decode(record["signature"], validate=True)
        claimed = str(record.get("key_fingerprint", "an unnamed key"))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise CardioError(f"{path} is not a cardio bundle signature (damaged or edited); refused") from None
    return signature, claimed


def verify(folder: Path, trusted: Sequence[tuple[object, str]]) -> str:
    """The line to show about who made the bundle; with trusted keys, a bundle none of them signed is refused.

    Call after the manifest check: the signature covers bundle.json, bundle.json the other files."""
    from cryptography.exceptions import InvalidSignature

    folder = Path(folder)
    fp, path = bundle_fingerprint(folder), folder / SIGNATURE
    signed = _read_signature(path) if path.exists() else None
    if not trusted:
        who = f"signed by key {signed[1]} (not checked: no trusted key)" if signed else "unsigned"
        return (f"model bundle {fp}, {who}: checked for integrity only (its files match bundle.json), not for "
                f"who made it; pass --trusted-key PUB or list keys in {trusted_keys_file()} (docs/security.md)")
    if signed is None:
        raise CardioError(f"model bundle {folder} is not signed ({SIGNATURE} missing) and trusted keys are set; "
                          "refused (ask its author for a bundle signed with cardio sign)")
    data = _DOMAIN + (folder / SIGNED_FILE).read_bytes()
    for key, where in trusted:
        try:
            key.verify(signed[0], data)  # type: ignore[attr-defined]
        except InvalidSignature:
            continue
        return f"model bundle {fp}, signed by trusted key {key_fingerprint(key)} ({where})"
    known = {key_fingerprint(k) for k, _ in trusted}
    why = ("its signature does not verify: bundle.json was changed after it was signed (edited or resealed)"
           if signed[1] in known else f"it is signed by key {signed[1]}, which is not a trusted key")
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
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, even briefly
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub.write_text(public_line(key.public_key()) + " cardio\n")
    return dest, pub
