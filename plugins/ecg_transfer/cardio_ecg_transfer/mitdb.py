"""The MIT-BIH Arrhythmia Database: where it is (config, $CARDIO_DATA, the cache), its download from PhysioNet
(when online, with a progress bar), its record list and its records read as ECGRecords with their beat labels."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import wfdb

from cardio import CardioError
from cardio_ecg_transfer.mitdb_files import MITDB_RECORDS
from cardio_ecg_transfer.records import read_wfdb

__all__ = ["MITDB_RECORDS", "ensure_mitdb", "fetch_mitdb", "load_mitdb", "mitdb_dir", "mitdb_records"]

log = logging.getLogger("cardio.ecg_transfer")



#: Host the MIT-BIH download comes from (wfdb.dl_database reads PhysioNet).
PHYSIONET = ("physionet.org", 443)


def mitdb_dir(configured: Path | str | None = None, cache_dir: Path | str | None = None) -> Path:
    """Where MIT-BIH lives: `configured` (ecg_transfer.mitdb_dir), else $CARDIO_DATA/mitdb, else <cache_dir>/mitdb
    (cache_dir: the run's cache, by default $CARDIO_CACHE or ~/.cache/cardio)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("CARDIO_DATA"):
        return Path(os.environ["CARDIO_DATA"]).expanduser() / "mitdb"
    cache = cache_dir or os.environ.get("CARDIO_CACHE") or Path.home() / ".cache" / "cardio"
    return Path(cache).expanduser() / "mitdb"


def _online(timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection(PHYSIONET, timeout=timeout).close()
        return True
    except OSError:
        return False


def ensure_mitdb(root: Path | str, progress: Callable | None = None, online: Callable[[], bool] = _online) -> Path:
    """`root` when it holds MIT-BIH; else download it there from PhysioNet when online; else one line naming
    the fetch command."""
    root = Path(root)
    if root.is_dir() and all((root / f"{r}.atr").is_file() for r in MITDB_RECORDS):
        return root
    if root.is_dir() and any(root.glob("*.atr")):  # a partial copy (or a restricted set of records): use it
        return root
    if not online():
        raise CardioError(f"MIT-BIH not found at {root} and PhysioNet is out of reach: fetch it with "
                          f"`cardio data fetch mitdb --dir {root}` (or set ecg_transfer.mitdb_dir or $CARDIO_DATA)")
    log.info("MIT-BIH not found at %s: downloading it from PhysioNet (48 records, ~100 MB)", root)
    fetch_mitdb(root, progress=progress)
    return root


def input_problems(configured: str | None, cache_dir: Path | str | None, records: Sequence[str],
                   online: Callable[[], bool] = _online) -> list[str]:
    """Why the prepare stage could not pretrain on `records` (checked before featurize, so that a run stops before
    its long stages and validate says it): MIT-BIH absent and PhysioNet out of reach, records missing from a copy,
    or a file whose bytes differ from the published ones."""
    import hashlib

    from cardio_ecg_transfer import mitdb_files

    root = mitdb_dir(configured, cache_dir)
    place = "the folder ecg_transfer.mitdb_dir names" if configured else "$CARDIO_DATA/mitdb, else <cache_dir>/mitdb"
    if not root.is_dir() or not any(root.glob("*.hea")):
        if online():
            return []  # the prepare stage downloads it there
        return [f"MIT-BIH not found at {root} ({place}) and PhysioNet is out of reach: the prepare stage pretrains on "
                f"it. Place its 48 records' .hea, .dat and .atr files there, e.g. `cardio data fetch mitdb --dir "
                f"{root} --from mit-bih-arrhythmia-database-1.0.0.zip` (PhysioNet's zip, carried here), or set "
                "ecg_transfer.pretrain.weights_file to a previous run's pretrained weights"]
    wanted = [f"{r}.{ext}" for r in records for ext in mitdb_files.EXTENSIONS]
    missing = [f for f in wanted if not (root / f).is_file()]
    if missing:
        return [f"{root}: {len(missing)} file(s) of the MIT-BIH records the pretraining reads are missing "
                f"({', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}); `cardio data fetch mitdb --dir "
                f"{root} --from SOURCE` places every one"]
    hashes = mitdb_files.sha256()
    damaged = [f for f in wanted if f in hashes and hashlib.sha256((root / f).read_bytes()).hexdigest() != hashes[f]]
    if damaged:
        return [f"{root}: {len(damaged)} MIT-BIH file(s) differ from the published ones (SHA-256): "
                f"{', '.join(damaged[:6])}; `cardio data fetch mitdb --dir {root} --from SOURCE` replaces them"]
    return []


def pretraining_input_problems(config: dict, cache_dir: Path | str | None) -> list[str]:
    """input_problems for the records this config pretrains on; none when it pretrains on nothing (no transfer
    model, pretraining off, or pretrain.weights_file given)."""
    from cardio_ecg_transfer import aami
    from cardio_ecg_transfer.settings import EcgSettings

    s = EcgSettings.of(config)
    pt = s.pretrain
    if not (pt.enabled and s.finetune.transfer) or pt.weights_file:
        return []
    return input_problems(s.mitdb_dir, cache_dir, aami.ds1_records(pt.records))


def fetch_mitdb(dest: Path | str, progress: Callable | None = None) -> None:
    """Download the MIT-BIH Arrhythmia Database (.hea, .dat, .atr of 48 records) from PhysioNet, record by record
    (a progress bar, and an interrupted download resumes: files already there are kept)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if progress is None:
        from tqdm import tqdm

        def progress(it, desc="", total=None):
            return tqdm(it, desc=desc, total=total)
    try:
        for record in progress(MITDB_RECORDS, desc="MIT-BIH download", total=len(MITDB_RECORDS)):
            if not all((dest / f"{record}.{ext}").is_file() for ext in ("hea", "dat", "atr")):
                wfdb.dl_database("mitdb", str(dest), records=[record], annotators=["atr"])
    except Exception as exc:  # network errors come in many types
        raise CardioError(f"could not download mitdb from PhysioNet into {dest}: {exc}") from exc
    missing = [r for r in MITDB_RECORDS if not (dest / f"{r}.hea").is_file()]
    if missing:
        raise CardioError(f"mitdb download into {dest} is incomplete: {len(missing)} record(s) missing")


def mitdb_records(root: Path | str) -> list[str]:
    """Record names in `root` that have a header and reference (.atr) annotations, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise CardioError(f"{root}: MIT-BIH directory not found")
    return sorted(p.stem for p in root.glob("*.hea") if (root / f"{p.stem}.atr").is_file())


def load_mitdb(root: Path | str, records: Sequence[str] | None = None, fs: float = 360.0, lead: str | int = 0,
               skip_bad: bool = False, progress: Callable | None = None
               ) -> list[tuple[str, np.ndarray, float, np.ndarray, np.ndarray]]:
    """MIT-BIH records as (name, signal at fs, fs, annotation samples at fs, annotation symbols).

    `records` None means every record in `root` with a .atr file; all annotations are returned
    (use BEAT_SYMBOLS to keep beats). `lead` 0 is MLII except in records 102, 104 (V5) and 114.
    """
    root = Path(root)
    names = mitdb_records(root) if records is None else [str(r) for r in records]
    if not names:
        raise CardioError(f"{root}: no WFDB record with .atr annotations")
    out = []
    for name in (progress(names, desc="MIT-BIH records", total=len(names)) if progress else names):
        try:
            rec = read_wfdb(root / name, fs, lead, annotator="atr")
        except CardioError as exc:
            if not skip_bad:
                raise
            log.warning("skipping a bad MIT-BIH record: %s", exc)
            continue
        out.append((name, rec.signal, float(fs), *rec.annotations()))
    return out
