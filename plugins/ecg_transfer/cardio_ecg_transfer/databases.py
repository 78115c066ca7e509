"""Beat databases beyond MIT-BIH, for one external look at the frozen pretraining protocol: PhysioNet's MIT-BIH
Supraventricular Arrhythmia Database (svdb) and St Petersburg INCART 12-lead Arrhythmia Database (incartdb).

`fetch` downloads one (`cardio data fetch svdb --dir D`); `to_mitdb_layout` writes its records as MIT-BIH's are
(two channels at 360 Hz, the reference beat labels in .atr), so that the pretraining's own beat reader, filter,
windows and side features (beat_set.build_beat_set) read them unchanged. Neither database was used to develop
the protocol.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import wfdb

from cardio import CardioError
from cardio_ecg_transfer.records import read_wfdb


@dataclass(frozen=True)
class BeatDatabase:
    """A PhysioNet beat database: its records and the two leads read as MIT-BIH's channels 0 and 1."""

    name: str
    title: str
    fs: float                       # the rate its files are recorded at (Hz)
    records: tuple[str, ...]
    leads: tuple[str | int, str | int]  # (read as MIT-BIH's MLII, read as its second channel): a name or an index


DATABASES = {
    # 78 half-hour two-lead Holter excerpts at 128 Hz; the header names the leads ECG1 and ECG2 only, so
    # they are read by position (channel 0 as MLII, as in MIT-BIH)
    "svdb": BeatDatabase("svdb", "MIT-BIH Supraventricular Arrhythmia Database", 128.0,
                         tuple(str(r) for r in (*range(800, 813), *range(820, 830), *range(840, 895))), (0, 1)),
    # 75 half-hour 12-lead recordings at 257 Hz: lead II is MIT-BIH's MLII (modified lead II), V1 the second
    # channel most MIT-BIH records carry
    "incartdb": BeatDatabase("incartdb", "St Petersburg INCART 12-lead Arrhythmia Database", 257.0,
                             tuple(f"I{i:02d}" for i in range(1, 76)), ("II", "V1")),
}


def database(name: str) -> BeatDatabase:
    if name not in DATABASES:
        raise CardioError(f"unknown beat database {name!r}; use one of {sorted(DATABASES)}")
    return DATABASES[name]


def fetch(name: str, dest: Path | str, progress: Callable | None = None) -> None:
    """Download a database's .hea, .dat and .atr files from PhysioNet, record by record (a progress bar; an
    interrupted download resumes: records already there are kept)."""
    db = database(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if progress is None:
        from tqdm import tqdm

        def progress(it, desc="", total=None):
            return tqdm(it, desc=desc, total=total)
    try:
        for record in progress(db.records, desc=f"{name} download", total=len(db.records)):
            if not all((dest / f"{record}.{ext}").is_file() for ext in ("hea", "dat", "atr")):
                wfdb.dl_database(name, str(dest), records=[record], annotators=["atr"])
    except Exception as exc:  # network errors come in many types
        raise CardioError(f"could not download {name} from PhysioNet into {dest}: {exc}") from exc
    missing = [r for r in db.records if not (dest / f"{r}.hea").is_file()]
    if missing:
        raise CardioError(f"{name} download into {dest} is incomplete: {len(missing)} record(s) missing")


def records_in(root: Path | str, name: str) -> list[str]:
    """The database's records in `root` that have a header and reference annotations (.atr), in its order."""
    root = Path(root)
    if not root.is_dir():
        raise CardioError(f"{root}: {name} directory not found; run `cardio data fetch {name} --dir {root}`")
    found = [r for r in database(name).records if (root / f"{r}.hea").is_file() and (root / f"{r}.atr").is_file()]
    if not found:
        raise CardioError(f"{root}: no {name} record with a header and .atr annotations")
    return found


def to_mitdb_layout(root: Path | str, name: str, dest: Path | str, fs: float = 360.0) -> list[str]:
    """Write each record of `root` as MIT-BIH has it (channel 0: the MLII-like lead, channel 1: the second,
    both resampled to `fs`; .atr: the reference annotations at `fs`) into `dest`; returns the record names."""
    db = database(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = records_in(root, name)
    for record in names:
        first = read_wfdb(Path(root) / record, fs, db.leads[0], annotator="atr")
        second = read_wfdb(Path(root) / record, fs, db.leads[1])
        n = min(len(first.signal), len(second.signal))
        samples, symbols = first.annotations()
        keep = samples < n
        wfdb.wrsamp(record, fs=fs, units=["mV", "mV"], sig_name=[first.lead, second.lead],
                    p_signal=np.column_stack([first.signal[:n], second.signal[:n]]), fmt=["16", "16"],
                    write_dir=str(dest))
        wfdb.wrann(record, "atr", np.asarray(samples[keep], dtype=np.int64),
                   list(np.asarray(symbols)[keep]), write_dir=str(dest), fs=fs)
    return names
