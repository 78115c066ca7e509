"""Pretrained starts: torchvision's weights API and the file kept in torch's hub cache, every file checked by hash.

A user with internet gets the weights on the first run (torchvision downloads them into
``$TORCH_HOME/hub/checkpoints/``); every later run, and a machine without internet where the file was copied to
that folder under its published name, reads them from the cache. torch checks a file's hash only while it downloads
it, so a file copied or left in the cache would be loaded unchecked: `check_file` checks every starting-weights file
(torchvision's, and a user's file named by a plugin's setting) against the hash its published name carries
(torchvision's `resnet18-f37072fd.pth`: the first 8 or more hex digits of its sha256) or a pinned sha256, and refuses
a mismatch in one line. What it returns (the file and its whole sha256) is what the report prints.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio.data import CardioError

#: torch.hub's convention (its HASH_REGEX, with at least 8 digits): `<name>-<first hex digits of the sha256>.<ext>`.
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: a file is hashed once per process


@dataclass(frozen=True)
class CheckedFile:
    """A starting-weights file whose sha256 matched the hash it was checked against."""

    path: Path
    sha256: str

    def describe(self) -> str:
        """The words a report prints: the file's name and its whole sha256."""
        return f"{self.path.name}, sha256 {self.sha256}"


def sha256_of(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def name_hash(path: Path) -> str | None:
    """The hash a published file name carries (`resnet18-f37072fd.pth` -> f37072fd), else None."""
    m = HASH_IN_NAME.search(Path(path).name)
    return m.group(1) if m else None


def check_file(path: str | Path, key: str, pinned: str | None = None) -> CheckedFile:
    """`path` checked against `pinned` (a whole sha256), else the hash its name carries; a missing file, a file with
    nothing to check against, or a mismatch is one CardioError line naming the file (and `key`, the setting)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CardioError(f"{key} {p}: file not found")
    expected = (pinned or name_hash(p) or "").lower()
    found = sha256_of(p)
    if not expected:
        raise CardioError(f"{key} {p}: no hash to check it against (its name carries none, as in torchvision's "
                          f"resnet18-f37072fd.pth, and no sha256 is pinned); its sha256 is {found}: if this is the "
                          f"file you mean, name it {p.stem}-{found[:8]}{p.suffix}")
    if not found.startswith(expected):
        raise CardioError(f"{key} {p}: sha256 mismatch: expected {expected}{'' if pinned else '...'}, found {found}")
    return CheckedFile(p, found)


def cache_file(arch: str, weights: str) -> Path:
    """Where torch's hub keeps torchvision's `weights` of `arch` (e.g. resnet18, IMAGENET1K_V1)."""
    import torch
    import torchvision

    enum = torchvision.models.get_model_weights(arch)[weights]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name


def torchvision_weights(arch: str, weights: str) -> CheckedFile:
    """torchvision's published `weights` file of `arch` in torch's hub cache, checked against its name's hash."""
    return check_file(cache_file(arch, weights), f"torchvision's {weights} weights of {arch}:")


def torchvision_model(arch: str, weights: str | None, key: str) -> tuple[Any, CheckedFile | None]:
    """(torchvision's `arch` started from its published `weights`, the checked file; None: random initialisation and
    no file). A file in the cache is checked before it is loaded, a downloaded one (torch checks it then) again
    after; a failed download or an unreadable file is one line naming the file to place, its expected hash and the
    config key (`key`) that turns the start off."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(arch)
        if weights is not None:
            torchvision.models.get_model_weights(arch)[weights]
    except (ValueError, KeyError):
        raise CardioError(f"{key}: torchvision has no {arch} with weights {weights!r}") from None
    if weights is None:
        return builder(weights=None), None
    path = cache_file(arch, weights)
    checked = torchvision_weights(arch, weights) if path.is_file() else None  # a placed file: checked before use
    try:
        model = builder(weights=weights)
    except Exception as e:  # no network, a corrupt download or cached file
        raise CardioError(f"cannot load torchvision's {weights} weights of {arch} ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:160]}); without internet, copy the file to {path} (its sha256 "
                          f"begins {name_hash(path)}), or set {key}") from None
    return model, checked or torchvision_weights(arch, weights)
