"""Salted fingerprints of a final model's training records, kept in its bundle (the kernel asks for them when it
writes the bundle: cardio.services.cardio_training_fingerprints), so that `cardio predict` can tell a new cohort that
shares records with the training one, by id or by content, without the bundle holding any id. A bundle written
without this service (or by an older cardio) carries none, and predict says the overlap is unknown.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cardio.data import Cohort, Features


def _content(value: Any) -> bytes:
    """The bytes a feature value stands for: an array's, a cached file's when the value names one, and those of
    each item of a tuple or list (echo's clips of one view)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return np.ascontiguousarray(value).tobytes()
    if isinstance(value, (str, Path)) and Path(value).is_file():
        return Path(value).read_bytes()
    if isinstance(value, (tuple, list)):
        return b"".join(len(part).to_bytes(8, "little") + part for part in map(_content, value))
    return repr(value).encode()


def _named_files(value: Any) -> list[str]:
    """The files a cohort table's cell names: an absolute path to a file (the cohort reader resolves its path
    columns so), or a tuple or list of them (echo's clips of one view); [] for any other value."""
    items = value if isinstance(value, (tuple, list)) else [value]
    if not items or not all(isinstance(v, (str, Path)) and os.path.isabs(v) and os.path.isfile(v) for v in items):
        return []
    return [str(v) for v in items]


def _file_digest(path: str, salt: str) -> str:
    with open(path, "rb") as f:  # streamed in blocks: a clip or a volume is never held whole
        key = hashlib.sha256(salt.encode()).digest()  # blake2b's key: the bundle's salt, at most 64 bytes
        return hashlib.file_digest(f, lambda: hashlib.blake2b(key=key, digest_size=8)).hexdigest()


def _record_files(cohort: Cohort | None, salt: str) -> dict[str, set[str]]:
    """record_id -> salted digests of the bytes of every file its cohort row names (for every plugin with a file
    column: a record copied under another name has the same files). A file that rows of several patients name (a
    template, not a record: the cohort reader refuses a shared record file) is left out."""
    if cohort is None:
        return {}
    table = cohort.table
    columns = [c for c in table.columns if table[c].dtype == object and c not in ("record_id", "patient_id")]
    digests: dict[str, str] = {}  # each file hashed once
    named: dict[str, set[str]] = {}
    patients: dict[str, set[str]] = defaultdict(set)
    for rid, pid, row in zip(table["record_id"].astype(str), table["patient_id"].astype(str),
                             table[columns].itertuples(index=False, name=None)):
        for f in (f for value in row for f in _named_files(value)):
            if f not in digests:
                digests[f] = _file_digest(f, salt)
            named.setdefault(rid, set()).add(digests[f])
            patients[digests[f]].add(pid)
    return {rid: {d for d in found if len(patients[d]) == 1} for rid, found in named.items()}


def _records(features: Features, cohort: Cohort | None, salt: str) -> dict[str, tuple[str, str, set[str]]]:
    """record_id -> (salted digest of the id, of its features' content, of each file it names)."""
    x = features.x if isinstance(features.x, dict) else {"x": features.x}
    ids = features.table["record_id"].astype(str).to_numpy()
    arrays = [x[name] for name in sorted(x) if x[name] is not None and not isinstance(x[name], (str, Path))
              and len(x[name]) == len(ids)]
    content: dict[str, Any] = {}
    for i, rid in enumerate(ids):
        h = content.setdefault(rid, hashlib.sha256(salt.encode()))
        for arr in arrays:
            h.update(_content(arr[i]))
    files = _record_files(cohort, salt)
    # no per-row features (x a path to a cache, or None): nothing to compare by features' content
    return {rid: (hashlib.sha256((salt + rid).encode()).hexdigest()[:16], h.hexdigest()[:16] if arrays else "",
                  files.get(rid, set())) for rid, h in content.items()}


def fingerprints(features: Features, salt: str, cohort: Cohort | None = None) -> dict[str, list[str]]:
    """Salted digests of every record's id, of its features' content and of the bytes of every file the cohort's
    table names for it (16 hex digits each)."""
    records = _records(features, cohort, salt)
    return {"ids": sorted({r[0] for r in records.values()}),
            "content": sorted({r[1] for r in records.values() if r[1]}),
            "files": sorted({f for r in records.values() for f in r[2]})}


def training_fingerprints(features: Features, cohort: Cohort) -> dict:
    """What a bundle keeps of its training records: a salt of its own (no two bundles' digests compare) and the
    fingerprints under it."""
    salt = secrets.token_hex(16)
    return {"salt": salt, **fingerprints(features, salt, cohort)}


def overlap(features: Features, stored: dict, cohort: Cohort | None = None) -> dict[str, int] | None:
    """Records of `features` whose id or content matches the training records' fingerprints in a bundle: content
    is the features' bytes, or any file the record names holding a training record's file's bytes; None (unknown)
    when the bundle carries no fingerprints."""
    if not stored or "salt" not in stored:
        return None
    ids, content, files = (set(stored.get(k, [])) for k in ("ids", "content", "files"))
    mine = _records(features, cohort, stored["salt"]).values()
    return {"records": len(mine), "same_id": sum(r[0] in ids for r in mine),
            "same_content": sum(bool(r[1]) and r[1] in content or bool(r[2] & files) for r in mine)}
