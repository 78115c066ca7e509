"""The run's disk cache: keyed, versioned entries written atomically, safe for concurrent processes.

An entry is a file or a folder under `<cache_dir>/<namespace>/`, named by a hash of its key (a
dict of everything the content depends on, plus a version a plugin bumps when its format changes).
A builder writes into a private temporary path that is renamed into place only when complete, and
a per-entry file lock makes a second process (another rank, another run) wait and reuse the entry
instead of building it twice.

The cache is not trusted: other users and processes may write it. What it keeps that would run code when read
(the stages of a run, a pickle) is sealed with an HMAC under the cache's own key (`Cache.secret`), kept outside it
in the user's config folder, and read only when the seal verifies (`seal`, `unseal`).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cardio.data import CardioError

log = logging.getLogger("cardio.run")


def key_hash(key: Mapping[str, Any] | str, length: int = 16) -> str:
    """A stable hex digest of a key (a JSON-able mapping or a string)."""
    text = key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; rename it onto `path` when the block succeeds.

    The temporary name keeps the suffix (np.save and pydicom look at it) and is unique per call,
    so concurrent writers never share one. On any failure it is removed, and a full disk becomes
    a one-line CardioError naming the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (KeyboardInterrupt, SystemExit, CardioError):
        _remove(tmp)
        raise
    except BaseException as e:
        why = _write_failure(e, tmp)
        _remove(tmp)
        if why:
            raise CardioError(f"{why} while writing {path}") from None
        raise


_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
         errno.EFBIG: "file too large for the file-size limit (ulimit -f)"}
_FREE_BYTES = 1 << 20  # a write that fails with less than this left on its disk failed for want of space


def _write_failure(e: BaseException, tmp: Path) -> str | None:
    """Why a write failed when the cause is the disk, whatever the library's exception says (pydicom re-raises
    without errno, NumPy reports "N requested and M written", torch "file write failed"); else None."""
    import resource

    for exc in (e, e.__cause__, e.__context__):
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return _FULL[exc.errno]
    try:
        if shutil.disk_usage(tmp.parent).free < _FREE_BYTES:
            return _FULL[errno.ENOSPC]
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and tmp.exists() and _size(tmp) >= limit - 4096:
            return f"file-size limit reached (ulimit -f: {limit} bytes)"
    except OSError:
        return None
    return None


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically: a temporary file, flushed to the disk (fsync), renamed into place; a marker or
    a key is whole or absent, never empty, even on a full disk or a crash."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text_surely(path: Path, text: str, reuse: Path | None = None) -> bool:
    """A status that must be written even on a full disk: atomically where the disk allows, else in place over
    `reuse` (an older file, renamed to `path`) or `path` itself, whose blocks are already the file's; False when
    neither could. Never an error of its own: the caller's, which names the write that failed first, is the one."""
    try:
        write_text_atomic(path, text)
    except (CardioError, OSError):
        try:
            if reuse is not None:
                os.replace(reuse, path)
            with open(path, "r+") as f:
                f.write(text)
                f.truncate()
        except OSError:
            return False
    return True


SEAL = b"cardio-sealed/1\n"  # what a sealed entry starts with, then the HMAC-SHA256 of the rest
_MAC = 32


def seal(data: bytes, key: bytes) -> bytes:
    """`data` with its HMAC-SHA256 under `key` in front: only a holder of the key can make one that unseals."""
    return SEAL + hmac.new(key, data, hashlib.sha256).digest() + data


def unseal(blob: bytes, key: bytes) -> bytes | None:
    """What `seal` sealed, when its HMAC verifies under `key`; None for anything else (planted, edited, cut)."""
    if not blob.startswith(SEAL) or len(blob) < len(SEAL) + _MAC:
        return None
    mac, data = blob[len(SEAL):len(SEAL) + _MAC], blob[len(SEAL) + _MAC:]
    return data if hmac.compare_digest(mac, hmac.new(key, data, hashlib.sha256).digest()) else None


def sealed(path: Path, key: bytes) -> bool:
    """Whether the file at `path` is sealed under `key` (read in blocks: an entry may be large)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(SEAL)) != SEAL:
                return False
            mac, h = f.read(_MAC), hmac.new(key, digestmod=hashlib.sha256)
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return False
    return hmac.compare_digest(mac, h.digest())


KEY_BYTES = 32


def config_dir() -> Path:
    """The user's cardio config folder (signing key, trusted keys, the caches' own keys): $CARDIO_CONFIG_DIR, else
    $XDG_CONFIG_HOME/cardio, else ~/.config/cardio."""
    if os.environ.get("CARDIO_CONFIG_DIR"):
        return Path(os.environ["CARDIO_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "cardio"


def _secret_file(root: Path) -> Path:
    return config_dir() / "cache-keys" / hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:24]


def _read_secret(path: Path) -> bytes | None:
    """The key in `path`: a regular file of KEY_BYTES bytes, the user's, readable by the user alone; else None
    (FileNotFoundError when there is none)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        key = f.read(KEY_BYTES + 1)
    if not _stat_ok(st) or len(key) != KEY_BYTES:
        log.warning("%s is not a cache key cardio made (it must be %d bytes, yours, mode 0600): the run's stages "
                    "are not kept in the cache", path, KEY_BYTES)
        return None
    return key


def _stat_ok(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _make_secret(path: Path) -> None:
    """A new key at `path` (FileExistsError: another process made it first, and that one is the key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_new(path, os.urandom(KEY_BYTES))


def write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create `path` holding `data`, whole or not at all: a temporary file beside it (mode `mode` from its start),
    flushed to the disk (fsync), then linked to `path`, never over a file already there (FileExistsError). A full
    disk is one line naming `path`, and leaves nothing behind."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno in _FULL:
            raise CardioError(f"{_FULL[e.errno]} while writing {path}") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


class Cache:
    """Keyed entries under one root; `ctx.cache` is the run's instance."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def secret(self) -> bytes | None:
        """The cache's own key, for what it keeps sealed (`seal`): 32 random bytes made on first use in the user's
        config folder, `<config dir>/cache-keys/<digest of the cache's real path>` (mode 0600), never in the cache
        itself, which others may write. None where the config folder cannot hold one: nothing is then kept
        sealed, and each process builds what it would have read."""
        path = _secret_file(self.root)
        for _ in range(3):
            try:
                return _read_secret(path)
            except FileNotFoundError:
                try:
                    _make_secret(path)
                except FileExistsError:
                    continue
                except OSError as e:
                    log.warning("no cache key can be made at %s (%s): the run's stages are not kept in the cache",
                                path, e.strerror)
                    return None
            except OSError as e:
                log.warning("the cache key %s cannot be read (%s): the run's stages are not kept in the cache",
                            path, e.strerror)
                return None
        return None

    def path(self, namespace: str, key: Mapping[str, Any] | str, suffix: str = "", *, version: int = 1) -> Path:
        """Where the entry for `key` lives (it may not exist yet)."""
        full = {"key": key, "version": version}
        return self.root / namespace / f"{key_hash(full)}{suffix}"

    def get(self, namespace: str, key: Mapping[str, Any] | str, build: Callable[[Path], Any], suffix: str = "",
            *, version: int = 1, check: Callable[[Path], bool] | None = None) -> Path:
        """The entry's path, built once by `build(tmp_path)` if it does not exist.

        `build` writes a file (or a folder, when `suffix` is empty and it makes one) at the path it
        is given. An entry whose size differs from the one recorded when it was built (truncated by a
        crash or a full disk), or that fails `check(path)`, is rebuilt with a warning.
        """
        path = self.path(namespace, key, suffix, version=version)
        if self._intact(path, check):
            return path
        with _locked(path.with_name(path.name + ".lock")):
            if self._intact(path, check):  # another process built it while this one waited
                return path
            if path.exists():
                log.warning("cache entry %s is damaged, or not written by cardio (truncated, changed since it was "
                            "written, or not sealed by this cache's key); rebuilding it", path)
                _remove(path)
            with atomic_path(path) as tmp:
                build(tmp)
                if not tmp.exists():
                    raise CardioError(f"cache builder for {namespace} wrote nothing at {tmp}")
                size = _size(tmp)
            # The key itself is not stored: it may hold file names, and file names may hold identifiers.
            write_text_atomic(self._sidecar(path), json.dumps({"namespace": namespace, "version": version,
                                                               "bytes": size}))
        return path

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + ".entry.json")

    def _intact(self, path: Path, check: Callable[[Path], bool] | None) -> bool:
        """The entry exists, has the size recorded when it was built, and passes `check`."""
        if not path.exists():
            return False
        try:
            recorded = json.loads(self._sidecar(path).read_text()).get("bytes")
        except (OSError, ValueError):
            recorded = None  # built by an older cardio, or killed before its sidecar: trust the rename
        if recorded is not None and _size(path) != recorded:
            return False
        return check is None or check(path)
