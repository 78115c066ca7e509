"""AAMI EC57 beat classes for MIT-BIH annotations and the de Chazal inter-patient split.

The mapping and record lists are the ones of the standard inter-patient protocol
(de Chazal, O'Dwyer & Reilly, IEEE TBME 2004): DS1 trains, DS2 tests, no record (patient)
is in both, and the four paced records are left out of both.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cardio import CardioError

#: AAMI classes in the order of the classifier's outputs.
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: MIT-BIH beat annotation symbol -> AAMI class.
SYMBOL_TO_CLASS: dict[str, str] = {
    # N: normal and bundle branch block beats, escape beats
    "N": "N", "L": "N", "R": "N", "e": "N", "j": "N",
    # S: supraventricular ectopic beats
    "A": "S", "a": "S", "J": "S", "S": "S",
    # V: ventricular ectopic beats
    "V": "V", "E": "V",
    # F: fusion of ventricular and normal
    "F": "F",
    # Q: paced, fusion of paced and normal, unclassifiable
    "/": "Q", "f": "Q", "Q": "Q",
    # symbols MIT-BIH never uses (so its classes are unchanged) but svdb and incartdb may: bundle branch block beat
    # and supraventricular escape beat (N, like L, R, e, j), R-on-T ventricular premature beat (V), unclassified (Q)
    "B": "N", "n": "N", "r": "V", "?": "Q",
}

#: de Chazal et al. 2004, DS1 (training) records.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
#: de Chazal et al. 2004, DS2 (test) records.
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)
#: Records with a pacemaker; AAMI recommends leaving them out.
PACED: tuple[str, ...] = ("102", "104", "107", "217")

ALL_RECORDS: tuple[str, ...] = tuple(sorted(DS1 + DS2 + PACED))


def class_index(symbols: Iterable[str]) -> np.ndarray:
    """AAMI class index (0..4) of each annotation symbol; -1 for non-beat annotations."""
    lookup = {s: AAMI_CLASSES.index(c) for s, c in SYMBOL_TO_CLASS.items()}
    return np.array([lookup.get(str(s), -1) for s in symbols], dtype=np.int64)


def beat_mask(symbols: Iterable[str]) -> np.ndarray:
    """True where an annotation is a beat with an AAMI class (rhythm, noise and other marks are not)."""
    return class_index(symbols) >= 0


def ds1_records(records: Sequence[str | int] | str | None = None) -> list[str]:
    """The DS1 records a run pretrains on: all of DS1, or those of `records` ("all" / None: every one).

    Runs and tests see DS1 only. DS2 is the untouched test set: it is predicted by
    `benchmarks/aami_interpatient.py --final` alone, which records every look in a ledger.
    """
    if records is None or (isinstance(records, str) and records == "all"):
        return list(DS1)
    if isinstance(records, str):
        raise CardioError(f"ecg_transfer.pretrain.records must be 'all' or a list of MIT-BIH DS1 record names, "
                          f"got {records!r}")
    wanted = [str(r) for r in records]
    test = sorted(set(wanted) & set(DS2))
    if test:
        raise CardioError(f"ecg_transfer.pretrain.records names DS2 record(s) {test}: DS2 is the untouched test set, "
                          "predicted only by `benchmarks/aami_interpatient.py --final` (ledgered); name DS1 records")
    paced = sorted(set(wanted) & set(PACED))
    if paced:
        raise CardioError(f"ecg_transfer.pretrain.records includes paced record(s) {paced}; the AAMI protocol "
                          "excludes them")
    unknown = sorted(set(wanted) - set(DS1))
    if unknown:
        raise CardioError(f"ecg_transfer.pretrain.records includes {unknown}, which are not MIT-BIH records of DS1")
    return [r for r in DS1 if r in wanted]


def split_records(split: str = "de_chazal", records: Sequence[str] | str | None = None
                  ) -> tuple[list[str], list[str]]:
    """(train records, test records) of a named split, restricted to `records` when given.

    `split="de_chazal"` is DS1 -> DS2. Paced records are never returned. `records` may be
    "all" / None (every record of the split) or a list of record names, which must all
    belong to the split.
    """
    if split != "de_chazal":
        raise CardioError(f"ecg_transfer.pretrain.split={split!r} is not known; use 'de_chazal' (DS1 -> DS2)")
    train, test = list(DS1), list(DS2)
    if records is None or (isinstance(records, str) and records == "all"):
        return train, test
    if isinstance(records, str):
        raise CardioError(f"ecg_transfer.pretrain.records must be 'all' or a list of MIT-BIH record names, "
                          f"got {records!r}")
    wanted = [str(r) for r in records]
    paced = sorted(set(wanted) & set(PACED))
    if paced:
        raise CardioError(f"ecg_transfer.pretrain.records includes paced record(s) {paced}; the AAMI protocol "
                          "excludes them")
    unknown = sorted(set(wanted) - set(DS1) - set(DS2))
    if unknown:
        raise CardioError(f"ecg_transfer.pretrain.records includes {unknown}, which are not MIT-BIH records of DS1 "
                          "or DS2")
    train = [r for r in train if r in wanted]
    test = [r for r in test if r in wanted]
    if not train or not test:
        raise CardioError(f"ecg_transfer.pretrain.records={wanted} must name at least one DS1 and one DS2 record "
                          f"(DS1: {list(DS1)}; DS2: {list(DS2)})")
    return train, test
