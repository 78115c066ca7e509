"""The new folder each of fusion's commands writes (`cardio fuse --out`, `cardio synthetic-crt --out`), claimed through
the kernel's output folders (cardio.data.folders: one writer per folder, an early stop removing only what it added)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cardio.data import CardioError, folders


@contextmanager
def new_folder(out: str | Path, what: str, why: str) -> Iterator[Path]:
    """claim_new's folder for the block (refused with "--out <path> exists and is not an empty folder; <why>"); what
    the block added is removed again when it fails, and the lock released either way."""
    def refuse(path: Path) -> None:
        raise CardioError(f"--out {path} exists and is not an empty folder; {why}")

    claimed = folders.claim_new(out, what, refuse)
    try:
        yield claimed.path
    except BaseException:
        claimed.discard()
        raise
    claimed.release()
