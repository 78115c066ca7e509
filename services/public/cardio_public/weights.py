"""Pretrained starts: torchvision's weights API and the file kept in torch's hub cache, every file checked by hash.

A user with internet gets the weights on the first run (torchvision downloads them into
``$TORCH_HOME/hub/checkpoints/``); every later run, and a machine without internet where the file was copied to
that folder under its published name, reads them from the cache. torch checks a file's hash only while it downloads
it, so a file copied or left in the cache would be loaded unchecked: `verify_weights_file` checks every
starting-weights file (torchvision's, a placed release, and a user's file named by a plugin's setting) against a pinned
sha256 or the hash its name carries, and refuses a mismatch in one line. The convention, torchvision's and the
releases': a weights file's name ends in `-<first 8 or more hex digits of its sha256>.<ext>` (`resnet18-f37072fd.pth`,
`mitdb-resnet18-f8400e20.safetensors`). `check_file` adds the setting's name to the messages; what it returns (the file
and its whole sha256) is what the report prints, and each check is a line of the run's log.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio.data import CardioError
from cardio.data.cache import atomic_path, write_text_atomic
from cardio_public import fetch

#: torch.hub's convention (its HASH_REGEX, with at least 8 digits) at the name's end: `<name>-<sha256 prefix>.<ext>`.
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_SHA256 = re.compile(r"[0-9a-f]{8,64}")
RELEASE_KEY = "cardio_release"  # the one safetensors header key of a release file's metadata
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: a file is hashed once per process
_LOGGED: set[tuple[str, str, tuple[str, ...]]] = set()


@dataclass(frozen=True)
class CheckedFile:
    """A starting-weights file whose sha256 matched the hash it was checked against."""

    path: Path
    sha256: str

    def describe(self) -> str:
        """The words a report prints: the file's name and its whole sha256."""
        return f"{self.path.name}, sha256 {self.sha256}"


def sha256_of(path: Path) -> str:
    """The file's sha256 (hex), once per file as it is (path, size, time): a run checks its weights more than once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = fetch.sha256_of(path)
    return _DIGESTS[key]


def name_hash(path: Path) -> str | None:
    """The hash a published file name carries (`resnet18-f37072fd.pth` -> f37072fd), else None."""
    m = HASH_IN_NAME.search(Path(path).name)
    return m.group(1) if m else None


def verify_weights_file(path: str | Path, expected_sha256: str | None = None, key: str = "weights file") -> str:
    """The whole sha256 of `path` after checking it against `expected_sha256` (a pinned sha256, or its first 8 or
    more hex digits), else against the hash its name carries (`-<sha256 prefix>.<ext>`). A missing file, a file with
    nothing to check against, or a mismatch is one CardioError line naming `key` (the setting), the file, and the
    expected and found hashes."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CardioError(f"{key} {p}: file not found")
    expected = (expected_sha256 or name_hash(p) or "").lower()
    if expected_sha256 is not None and not _SHA256.fullmatch(expected):
        raise CardioError(f"{key} {p}: the expected sha256 {expected_sha256!r} is not 8 to 64 hex digits")
    found = sha256_of(p)
    if not expected:
        raise CardioError(f"{key} {p}: no hash to check it against (its name carries none, as in torchvision's "
                          f"resnet18-f37072fd.pth, and no sha256 is pinned); its sha256 is {found}: if this is the "
                          f"file you mean, name it {p.stem}-{found[:8]}{p.suffix}")
    if not found.startswith(expected):
        short = len(expected) < 64
        raise CardioError(f"{key} {p}: sha256 mismatch: expected {expected}{'...' if short else ''}, found {found}")
    return found


def check_file(path: str | Path, key: str, pinned: str | None = None) -> CheckedFile:
    """`path` checked by verify_weights_file against `pinned`, else the hash its name carries (errors name `key`,
    the setting); the check is a line of the run's log."""
    p = Path(path).expanduser()
    found = verify_weights_file(p, pinned, key)
    log = logging.getLogger("cardio.run")
    files = tuple(h.baseFilename for h in log.handlers if isinstance(h, logging.FileHandler))
    seen = (str(p), found, files)  # once per file in a run's run.log, not once per fold
    if seen not in _LOGGED:
        _LOGGED.add(seen)
        log.info("starting weights (%s) checked: %s, sha256 %s", key.rstrip(":"), p, found)
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


@dataclass(frozen=True)
class Artefact:
    """What a release's build hands the core: the backbone's tensors, string metadata for the safetensors header
    (architecture, input, classes, settings: enough to rebuild it) and the model card's text (markdown)."""

    tensors: dict[str, Any]
    metadata: dict[str, str]
    card: str


@dataclass(frozen=True)
class Release:
    """A backbone a plugin builds from public data (`cardio data build NAME`) and a user places (`cardio data place
    FILE`): `build(config, ctx)` fits it; `recorded` maps each released file's name to the sha256 recorded in the
    plugin's repository; `use` is the setting that starts a run from a placed file ({path} is filled in)."""

    plugin: str
    description: str
    build: Callable[[dict, Any], Artefact] = field(repr=False, compare=False)
    recorded: dict[str, str] = field(default_factory=dict)
    use: str = ""


def write_release(name: str, artefact: Artefact, dest: Path) -> CheckedFile:
    """The artefact as `<name>-<first 8 hex of its sha256>.safetensors`, `<that>.md` (the card with the sha256) and
    `SHA256SUMS` in `dest`. The file is a pure function of the tensors and metadata (the metadata as one sorted JSON
    string under RELEASE_KEY; read it back with release_metadata), so the same build gives the same sha256."""
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in artefact.tensors.items()}
    with atomic_path(dest / f"{name}.safetensors") as tmp:
        # one header key: safetensors writes a metadata map in hash order, which would change the file's sha256
        save_file(tensors, str(tmp), metadata={RELEASE_KEY: json.dumps(artefact.metadata, sort_keys=True)})
    digest = sha256_of(dest / f"{name}.safetensors")
    final = dest / f"{name}-{digest[:8]}.safetensors"
    (dest / f"{name}.safetensors").replace(final)
    write_text_atomic(final.with_suffix(".md"), artefact.card.rstrip() + f"\n\n**File**: `{final.name}`, sha256 "
                                                                          f"`{digest}`\n")
    sums = dest / "SHA256SUMS"
    lines = [x for x in (sums.read_text().splitlines() if sums.is_file() else []) if not x.endswith(f"  {final.name}")]
    write_text_atomic(sums, "\n".join([*lines, f"{digest}  {final.name}"]) + "\n")
    return CheckedFile(final, digest)


def release_metadata(path: Path) -> dict[str, str]:
    """The metadata write_release stored in a release file's safetensors header."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {})[RELEASE_KEY])


def place_release(path: str | Path, releases: dict[str, Release], cache_dir: Path) -> tuple[CheckedFile, Release]:
    """A downloaded release file checked against the sha256 its plugin's repository records for that file name, then
    copied into `<cache_dir>/releases/`; an unknown name or a mismatch is one line, and nothing is copied."""
    import shutil

    p = Path(path).expanduser()
    known = {f: (sha, r) for r in releases.values() for f, sha in r.recorded.items()}
    if p.name not in known:
        raise CardioError(f"{p}: not a recorded release file; the installed plugins record: "
                          f"{', '.join(sorted(known)) or 'none'}")
    sha, release = known[p.name]
    check_file(p, "release", pinned=sha)
    target = cache_dir / "releases" / p.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(p, tmp)
    return check_file(target, "release", pinned=sha), release
