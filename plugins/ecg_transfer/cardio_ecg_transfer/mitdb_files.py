"""What a complete MIT-BIH copy holds: its 48 records' .hea, .dat and .atr files and their published SHA-256
(mitdb.sha256 beside this module). Light on purpose: `cardio data list` and the run's input check read it without
importing wfdb."""
from __future__ import annotations

import re
from functools import cache
from importlib import resources

MITDB_RECORDS = tuple(str(r) for r in (
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 111, 112, 113, 114, 115, 116, 117, 118, 119,
    121, 122, 123, 124, 200, 201, 202, 203, 205, 207, 208, 209, 210, 212, 213, 214, 215, 217, 219,
    220, 221, 222, 223, 228, 230, 231, 232, 233, 234))
EXTENSIONS = ("hea", "dat", "atr")
FILES = tuple(f"{r}.{ext}" for r in MITDB_RECORDS for ext in EXTENSIONS)
#: PhysioNet's archive of the database (a zip whose top folder holds the files), for `cardio data fetch --from`.
ARCHIVE = "https://physionet.org/static/published-projects/mitdb/mit-bih-arrhythmia-database-1.0.0.zip"


@cache
def sha256() -> dict[str, str]:
    """File name -> SHA-256 of the published file (verified against PhysioNet's copy, $CARDIO_DATA/mitdb/SOURCE.md)."""
    text = resources.files("cardio_ecg_transfer").joinpath("mitdb.sha256").read_text()
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)}
