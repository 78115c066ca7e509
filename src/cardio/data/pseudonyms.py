"""Pseudonyms: keyed hashes (HMAC-SHA256) in place of patient and record ids, so no input identifier reaches an
output, and runs on one cache give one patient one pseudonym (what `cardio fuse` joins on). Below every stage that
writes: the run context, the report, fusion and predict all use it."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pandas as pd

from cardio.data import CardioError

KEY_FILE = "pseudonym.key"


def pseudonym_key(cache_dir: str | Path) -> bytes:
    """The project's pseudonym key: <cache_dir>/pseudonym.key (owner-only), made once, never in a run directory.

    One key per cache, so runs of different plugins on the same patients give them the same pseudonyms
    (what `cardio fuse` joins on), while nobody without the key can recompute them from a list of MRNs.
    """
    path = Path(cache_dir).expanduser() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another run made meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise CardioError(f"{path} is not a cardio pseudonym key (64 hex digits); restore it or remove it (a new key "
                          "gives every patient new pseudonyms)")
    return bytes.fromhex(text)


def key_id(key: bytes) -> str:
    """A key's name, 12 hex digits of its HMAC of a fixed text: run.json records it, so that a command that reads a
    run's pseudonyms back (a resume, `cardio fuse`) knows whether it holds the run's key. It tells nothing of the key
    or of any id."""
    return hmac.new(key, b"cardio pseudonym key id", hashlib.sha256).hexdigest()[:12]


def run_key(cache_dir: str | Path, recorded: str | None, run: str | Path) -> bytes:
    """The key of `run`'s pseudonyms from the cache at `cache_dir`: the one whose key_id run.json recorded
    (`recorded`; a run made before cardio recorded it: the cache's key, as then). Another key, or none there, is one
    line naming both: read with it, no patient would match and the run would read as another cohort."""
    if recorded is None:
        return pseudonym_key(cache_dir)
    path = Path(cache_dir).expanduser() / KEY_FILE
    key = _read(path) if path.exists() else None
    found = key_id(key) if key is not None else None
    if key is None or found != recorded:
        there = f"holds key {found}" if found else "does not exist"
        raise CardioError(f"{run} was pseudonymized with key {recorded} and {path} {there}: use the cache its run "
                          "used ($CARDIO_CACHE or --set cache_dir=...; the key file is <cache>/pseudonym.key)")
    return key


def pseudonyms(values, key: bytes | None, prefix: str) -> list[str]:
    """Keyed-hash pseudonyms (HMAC-SHA256, 12 hex digits): the same id gives the same pseudonym in every run
    and output made with the same key; without a key (None) a fresh random one is used."""
    key = key if key is not None else secrets.token_bytes(32)
    return [prefix + hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:12].upper() for v in values]


def pseudonymize(table: pd.DataFrame, key: bytes | None = None) -> pd.DataFrame:
    """Replace record and patient ids by keyed pseudonyms: no input identifier reaches an output."""
    out = table.copy()
    for col, prefix in (("patient_id", "P"), ("record_id", "R")):
        if col in out.columns:
            out[col] = pseudonyms(out[col].astype(str), key, prefix)
    return out
