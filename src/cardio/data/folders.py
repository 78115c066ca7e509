"""Output folders: one resolution of every `--out`, one writer per folder, and a record of what a command made.

`--out` is resolved once, to the absolute real path (symlinks followed and `..` applied after them, as the kernel
does), so that `x/nope/..`, a symlink to x and x itself are one folder with one answer; a dangling symlink or a file
is refused. A command then claims the folder (`claim`): it makes what is missing, recording each folder it made,
and takes an OS lock on it, `flock` on `<folder>/.cardio.lock`, held until the command ends (the kernel releases it
when the process dies). A second writer is refused in one line naming the holder's pid and host; the worker
processes a run starts write under their run's lock and never take it. On an early stop, `Claim.discard` removes
only what was not in the folder when it was claimed, then the folders the command made when they are empty: never
a folder as a whole.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cardio.data import CardioError

LOCK = ".cardio.lock"


def output_path(out: str | Path, option: str = "--out") -> Path:
    """The folder `out` names, as its real path (symlinks followed, `..` applied after them), written relative to
    the working folder when it lies inside it (the spelling messages show), else absolute: one spelling per folder.
    A dangling symlink anywhere on the way, or a path that is not a folder, is one line."""
    given = Path(out).expanduser()
    path = Path(os.path.realpath(given))
    dangling = next((p for p in (given, *given.parents) if p.is_symlink() and not p.exists()), None)
    if dangling is not None:
        raise CardioError(f"{option} {out}: {dangling} is a symbolic link to {os.readlink(dangling)}, which does not "
                          f"exist; remove the link or choose another {option}")
    if path.exists() and not path.is_dir():
        raise CardioError(f"{option} {out} is {'a file' if path.is_file() else 'not a folder'} ({path}); choose "
                          f"another {option}")
    here = Path(os.path.realpath(Path.cwd()))
    return path.relative_to(here) if path.is_relative_to(here) and path != here else path


def holds_files(path: Path) -> bool:
    """Whether a folder holds anything but a command's lock."""
    try:
        return any(p.name != LOCK for p in path.iterdir())
    except FileNotFoundError:
        return False


def holder(path: Path) -> str | None:
    """'pid N on host H' of the cardio process that holds the folder's lock, None when none holds it."""
    try:
        fd = os.open(Path(path) / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _who(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _who(fd: int) -> str:
    text = os.pread(fd, 200, 0).decode(errors="replace").split()
    return f"pid {text[0]} on host {text[1]}" if len(text) >= 2 else "another process (its pid not yet written)"


class Busy(CardioError):
    """The folder is held by another cardio process."""


def refuse_if_busy(path: Path, what: str) -> None:
    """One line naming the process that holds `path`, when one does."""
    who = holder(path)
    if who:
        raise Busy(f"{what} {path} is in use by cardio {who} (a run, resume or prediction writing to it); wait "
                   "for it to end, or choose another --out")


class Lock:
    """The OS lock of one folder, held by this process until `release` (or its end)."""

    def __init__(self, path: Path, what: str = "folder") -> None:
        self.path, self.fd = Path(path), -1
        lock = self.path / LOCK
        for _ in range(20):  # the lock file a holder removed as this process opened it: open the new one
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise CardioError(f"cannot lock {what} {self.path}: {e.strerror} ({lock})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _who(fd)
                os.close(fd)
                raise Busy(f"{what} {self.path} is in use by cardio {who} (a run, resume or prediction writing to "
                           "it); wait for it to end, or choose another --out") from None
            if _same_file(fd, lock):
                self.fd = fd
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
                return
            os.close(fd)
            time.sleep(0.01)
        raise CardioError(f"cannot lock {what} {self.path}: its lock file {lock} keeps changing")

    def release(self) -> None:
        """Remove the lock file (while still holding it) and release it."""
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path / LOCK):
                (self.path / LOCK).unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class Claim:
    """A folder this command writes: made where missing (`made`: the folders it made, outermost first), locked,
    and what it held when claimed (`before`), so that `discard` removes only what the command added."""

    def __init__(self, path: Path, made: list[Path], lock: Lock) -> None:
        self.path, self.made, self.lock = path, made, lock
        self.before = {p.name for p in path.iterdir()}

    @property
    def new(self) -> bool:
        """Whether the folder held nothing (but the lock) when claimed."""
        return not self.before - {LOCK}

    def discard(self) -> None:
        """Remove what the command added to the folder since it claimed it, then release the lock and remove each
        folder it made that is then empty (innermost first); nothing that was there before is touched."""
        for p in self.path.iterdir():
            if p.name in self.before or p.name == LOCK:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        self.release()
        for folder in reversed(self.made):
            try:
                folder.rmdir()
            except OSError:  # not empty: something not of this command's is there
                break

    def release(self) -> None:
        self.lock.release()


def claim(out: str | Path, what: str = "output folder", *, resolved: bool = False) -> Claim:
    """The folder `out` (resolved by output_path unless `resolved`), made where missing and locked for this
    command. A folder another cardio process holds is one line naming it; whether it may already hold files is the
    caller's to say (Claim.new)."""
    path = Path(out) if resolved else output_path(out)
    made = _make(path)
    try:
        lock = Lock(path, what)
    except BaseException:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return Claim(path, made, lock)


def claim_new(out: str | Path, what: str, refuse: Callable[[Path], None]) -> Claim:
    """A folder for a command that writes a new one: `out` resolved, new or empty, claimed; one that holds files
    is refused by `refuse(path)` (which raises), after the line that names a cardio process still writing there."""
    path = output_path(out)
    if holds_files(path):
        refuse_if_busy(path, what)
        refuse(path)
    claimed = claim(path, what, resolved=True)
    if not claimed.new:  # another command wrote there between the look and the lock, and has ended
        claimed.release()
        refuse(path)
    return claimed


@contextmanager
def holding(path: str | Path, what: str) -> Iterator[Path]:
    """The existing folder `path` locked for the block (a command that rewrites files of a run: report, sign)."""
    claimed = claim(path, what)
    try:
        yield claimed.path
    finally:
        claimed.release()


def _make(path: Path) -> list[Path]:
    """Make `path` and its missing parents, one at a time: the list of those this call made, outermost first."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    made: list[Path] = []
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except FileExistsError:  # another process made it meanwhile: not this command's
            continue
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
                raise CardioError(f"cannot make the folder {p}: {e.strerror}") from None
            raise
        made.append(p)
    return made
