"""A public data set placed where cardio reads it: downloaded by its plugin, or taken from a copy the user has.

`cardio data fetch NAME --dir D` downloads (the plugin's Dataset.fetch); `--from SOURCE` takes the files from a
folder, a .zip or .tar(.gz) archive (PhysioNet's own zip, say) or a URL of one (http(s):// or file://) instead, so
that a machine without internet gets the data set from a copy carried to it. Either way the files the data set
lists (Dataset.files) are checked where they land: every one present, and each whose SHA-256 is known (Dataset.sha256)
byte for byte. Only the listed files are taken from a source, each by its base name wherever it sits in the folder or
archive (an archive's top folder, a subfolder), and each is written beside its final name first, then renamed, so that
a failed or damaged copy leaves nothing half-written under the name a run reads.

Written with the standard library (zipfile, tarfile, urllib, hashlib): no library adds more than their composition.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

from cardio.data import CardioError


@dataclass(frozen=True)
class Dataset:
    """A public data set a plugin can download (`cardio data list` / `cardio data fetch NAME --dir D`)."""

    description: str
    size: str              # on disk once fetched, e.g. "104 MB (48 records)"
    licence: str           # e.g. "ODC-By 1.0 (PhysioNet)"
    url: str               # where it comes from
    fetch: Callable[[Path], None] = field(repr=False, compare=False)  # downloads into the folder it is given
    # The files a complete copy holds, and the SHA-256 of those whose published bytes are known: `cardio data fetch
    # NAME --dir D --from SOURCE` takes them from a folder or archive the user has, and every fetch checks them.
    files: tuple[str, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    archive: str = ""      # the published archive a user can carry to a machine without internet (e.g. a zip)


ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def problems(name: str, dataset: Dataset, folder: Path) -> list[str]:
    """Every way `folder` is not a complete, intact copy of the data set (empty: it is; nothing to check: the data
    set lists no files)."""
    folder = Path(folder)
    if not dataset.files:
        return []
    missing = [f for f in dataset.files if not (folder / f).is_file()]
    out = []
    if missing:
        out.append(f"{folder}: {len(missing)} of the {len(dataset.files)} files of {name} are missing "
                   f"({', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''})")
    damaged = [f for f in dataset.files if f not in missing and f in dataset.sha256
               and sha256_of(folder / f) != dataset.sha256[f]]
    if damaged:
        out.append(f"{folder}: {len(damaged)} file(s) of {name} differ from the published ones (SHA-256): "
                   f"{', '.join(damaged[:6])}{' ...' if len(damaged) > 6 else ''}; fetch them again")
    return out


def place(name: str, dataset: Dataset, source: str, dest: Path) -> list[str]:
    """Copy the data set's files from `source` (a folder, an archive, or the URL of one) into `dest`, checking each;
    returns the names placed. Files already in `dest` with their published hash are kept; one that is not is
    replaced by the source's."""
    if not dataset.files:
        raise CardioError(f"data set {name!r} does not list its files, so it can only be downloaded (drop --from)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with _opened(source) as members:
        found: dict[str, Callable[[], IO[bytes]]] = {}
        for f, opener in members:  # the first of a name: a folder's shallowest, an archive's first
            if f in dataset.files:
                found.setdefault(f, opener)
        wanted = [f for f in dataset.files if not _intact(dest / f, dataset.sha256.get(f))]
        absent = [f for f in wanted if f not in found]
        if absent:
            raise CardioError(f"{source} lacks {len(absent)} of the {len(dataset.files)} files of {name} "
                              f"({', '.join(absent[:6])}{' ...' if len(absent) > 6 else ''}); nothing was copied "
                              f"into {dest}")
        for f in wanted:
            _write_checked(found[f], dest / f, dataset.sha256.get(f), f"{source}: {f}")
    return wanted


def _intact(path: Path, sha256: str | None) -> bool:
    return path.is_file() and (sha256 is None or sha256_of(path) == sha256)


def _write_checked(opener: Callable[[], IO[bytes]], target: Path, sha256: str | None, what: str) -> None:
    """The member's bytes to a temporary file beside `target`, renamed onto it once its hash matches."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, opener() as src:
            for block in iter(lambda: src.read(_CHUNK), b""):
                digest.update(block)
                out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise CardioError(f"{what} differs from the published file (SHA-256 {digest.hexdigest()[:12]}..., "
                              f"expected {sha256[:12]}...): a damaged or altered copy; nothing of it was kept")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


Members = Iterator[tuple[str, Callable[[], IO[bytes]]]]


@contextmanager
def _opened(source: str) -> Iterator[Members]:
    """(base name, opener) of every regular file of a folder, an archive, or the archive a URL names."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https", "file"):
        with tempfile.TemporaryDirectory(prefix="cardio-fetch-") as tmp:
            suffix = next((s for s in ARCHIVES if parsed.path.lower().endswith(s)), ".zip")
            local = Path(tmp) / f"download{suffix}"
            _download(source, local)
            with _opened(str(local)) as members:
                yield members
        return
    path = Path(source).expanduser()
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*"), key=lambda p: len(p.parts)) if p.is_file() and not p.is_symlink()]
        yield ((p.name, partial(_read, p)) for p in files)
    elif not path.exists():
        raise CardioError(f"--from {source}: no such folder or file")
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            yield ((Path(i.filename).name, partial(z.open, i)) for i in z.infolist() if not i.is_dir())
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            yield ((Path(m.name).name, partial(_member, t, m)) for m in t.getmembers() if m.isfile())
    else:
        raise CardioError(f"--from {source}: not a folder, a .zip or a .tar(.gz) archive")


def _read(path: Path) -> IO[bytes]:
    return open(path, "rb")


def _member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    f = archive.extractfile(member)
    if f is None:
        raise CardioError(f"{member.name}: not a regular file of the archive")
    return f


def _download(url: str, local: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(local, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except OSError as e:  # URLError, HTTPError and socket errors are OSErrors
        raise CardioError(f"--from {url}: could not be read ({' '.join(str(e).split())})") from None
