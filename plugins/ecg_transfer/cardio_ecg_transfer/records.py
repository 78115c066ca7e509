"""Reading ECGs (WFDB, CSV, NumPy) at a common sampling rate, and MIT-BIH (the cohort table: cohort_table.py).

Every reader returns one lead as float64 in the file's physical units (mV for WFDB), resampled
to the target rate with a polyphase filter (``scipy.signal.resample_poly``); annotation sample
indices are mapped to the new rate. Bad input raises ``CardioError`` naming the file and the
problem; loaders of many records skip a bad one (and report it) only when ``skip_bad`` is true.
"""
from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import wfdb
from scipy import signal as sps
from wfdb.io import header as wfdb_header

from cardio import CardioError
from cardio.data.cohort import csv_delimiter, decimal_mark, format_text
from cardio.data.file_kind import misnamed
from cardio.data.files import check_claim, read_npy
from cardio_ecg_transfer.lead_codes import canonical_lead, lead_key, stand_in

#: A child of the run's logger, so that what the readers log (NaN gaps bridged, a CSV's separators, a lead read
#: in place of II) reaches run.log as well as the screen.
log = logging.getLogger("cardio.run.ecg_transfer")

MIN_FS = 100.0
MAX_FS = 20000.0  # above any ECG recorder; a header claiming more is damaged
#: Largest magnitude a lead may hold, in any unit (mV, uV, ADC counts of a 24-bit recorder): beyond
#: it a file is damaged, and filters and spectrograms would overflow.
MAX_ABS_VALUE = 1e12
#: Longest run of missing samples (NaN) bridged by linear interpolation (s): ecg_transfer.max_gap_s's default. A
#: longer gap is refused: a straight line over several beats would pass for a flat, beat-less ECG.
MAX_GAP_S = 0.5
#: Shortest ECG read (s): two seconds hold at least one beat with a neighbour on each side at any rate above 60 bpm;
#: a shorter record gives featurize no complete beat.
MIN_SECONDS = 2.0
#: A stretch this long (s) of one repeated value inside a lead is a lead off or a dropout, not an ECG (the longest in
#: MIT-BIH's 48 records x 2 leads x 30 min is 0.73 s, a saturated stretch of record 116).
FLAT_STRETCH_S = 2.0
#: A lead is clipped when this share of its samples sits at its maximum or minimum in runs of 3 samples or more (the
#: recorder's range cut the peaks); a clean ECG touches its extremes in a sample or two (MIT-BIH: at most 0.04%).
CLIPPED_SHARE = 0.005
#: The sampling-rate field of a WFDB record line: "fs", "fs/counter" or "fs/counter(base)".
_FS_FIELD = re.compile(r"(\d+\.?\d*|\.\d+)(/\d*\.?\d*(\(-?\d*\.?\d*\))?)?")
#: Beat annotation symbols of WFDB (the rest mark rhythm changes, noise, comments...).
BEAT_SYMBOLS = frozenset("NLRaVFJASEj/QB?!enfr")
#: Bytes per sample of the WFDB storage formats whose size can be checked against the header.
_FORMAT_BYTES = {"8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0,
                 "212": 1.5, "310": 4 / 3, "311": 4 / 3}
#: The FLAC formats (wfdb decodes them into arrays of the header's length): a FLAC frame holds at most 65,535
#: samples per channel in at least 13 bytes (frame header, one constant subframe, CRC), the least bytes a claim needs.
_FLAC_BYTES = {"508": 13 / 65535, "516": 13 / 65535, "524": 13 / 65535}


@dataclass
class ECGRecord:
    """One lead of one recording, at `fs` Hz; annotations (if read) are at the same rate."""

    name: str
    signal: np.ndarray
    fs: float
    lead: str
    source: Path
    source_fs: float
    ann_samples: np.ndarray | None = None
    ann_symbols: np.ndarray | None = None

    def annotations(self) -> tuple[np.ndarray, np.ndarray]:
        """(samples, symbols) of the annotations read with the record (read_wfdb's `annotator`)."""
        if self.ann_samples is None or self.ann_symbols is None:
            raise CardioError(f"{self.source}: read without its annotations (read_wfdb's annotator)")
        return self.ann_samples, self.ann_symbols

    @property
    def seconds(self) -> float:
        return len(self.signal) / self.fs


# --------------------------------------------------------------------------- resampling

def _ratio(source_fs: float, fs: float) -> tuple[int, int]:
    frac = Fraction(float(fs) / float(source_fs)).limit_denominator(1000)
    return frac.numerator, frac.denominator


def resample_signal(x: np.ndarray, source_fs: float, fs: float) -> np.ndarray:
    """Resample along axis 0 from `source_fs` to `fs` Hz (polyphase, anti-aliased)."""
    x = np.asarray(x, dtype=np.float64)
    if math.isclose(float(source_fs), float(fs)):
        return x
    up, down = _ratio(source_fs, fs)
    return sps.resample_poly(x, up, down, axis=0)


def resample_samples(samples: np.ndarray, source_fs: float, fs: float, n: int | None = None) -> np.ndarray:
    """Map sample indices at `source_fs` to the nearest index at `fs` (clipped to [0, n))."""
    s = np.asarray(samples, dtype=np.float64)
    if math.isclose(float(source_fs), float(fs)):
        out = s.astype(np.int64)
    else:
        up, down = _ratio(source_fs, fs)
        out = np.rint(s * up / down).astype(np.int64)
    return np.clip(out, 0, n - 1) if n is not None else out


# --------------------------------------------------------------------------- checks

def _check_fs(source_fs: float, path: Path) -> float:
    try:
        source_fs = float(source_fs)
    except (TypeError, ValueError):
        raise CardioError(f"{path}: sampling rate {source_fs!r} is not a number") from None
    if not np.isfinite(source_fs) or source_fs < MIN_FS:
        raise CardioError(f"{path}: sampling rate {source_fs:g} Hz is below the {MIN_FS:g} Hz an ECG needs "
                          "for QRS detection and spectrograms")
    if source_fs > MAX_FS:
        raise CardioError(f"{path}: sampling rate {source_fs:g} Hz is above {MAX_FS:g} Hz; the header is damaged")
    return source_fs


def nan_gaps(finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first sample, length) of every run of missing samples, `finite` being the mask of the samples present."""
    edges = np.diff(np.r_[0, (~np.asarray(finite, bool)).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return starts, ends - starts


def bridge_gaps(x: np.ndarray, finite: np.ndarray, path: Path | str, lead: str | int, fs: float,
                max_gap_s: float) -> np.ndarray:
    """x with every NaN gap up to `max_gap_s` interpolated linearly (held at the record's ends), logged; a longer
    gap is refused naming where it is. The rule is written in docs/data/ecg_transfer.md."""
    starts, lengths = nan_gaps(finite)
    longest = int(np.argmax(lengths))
    at, n = int(starts[longest]), int(lengths[longest])
    where = f"{n} samples ({n / fs:.3f} s) from {at / fs:.2f} s (sample {at})"
    if n / fs > max_gap_s:
        raise CardioError(f"{path}: lead {lead} has a gap of {where} with no value (NaN), longer than the "
                          f"{max_gap_s:g} s ecg_transfer.max_gap_s bridges; mend or leave out the record, or raise "
                          "that key")
    idx = np.arange(len(x))
    x = x.copy()
    x[~finite] = np.interp(idx[~finite], idx[finite], x[finite])
    log.info("%s: lead %s: %d NaN gap(s), %d samples in all, interpolated linearly; the longest %s "
             "(ecg_transfer.max_gap_s = %g s)", path, lead, len(starts), int(lengths.sum()), where, max_gap_s)
    return x


def _runs(same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of every run of True."""
    edges = np.diff(np.r_[0, np.asarray(same, bool).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return starts, ends - starts


def clipped_share(x: np.ndarray, fs: float) -> tuple[float, float]:
    """(share of the samples at the lead's maximum or minimum in plateaus of 3 samples or more that the signal
    reaches or leaves steeply (a tenth of its range within 10 ms), the value they sit at): a recorder's range cutting
    the QRS peaks flat. A slow wave's crest, held for a few samples by the recorder's resolution, is no plateau."""
    span = max(float(np.ptp(x)), 1e-12)
    w = max(1, int(round(0.01 * fs)))
    worst = (0.0, float(x.max()))
    for value in (float(x.max()), float(x.min())):
        starts, lengths = _runs(np.abs(x - value) <= 1e-6 * span)
        ends = starts + lengths - 1
        steep = (lengths >= 3) & ((np.abs(value - x[np.maximum(starts - w, 0)]) >= 0.1 * span)
                                  | (np.abs(value - x[np.minimum(ends + w, len(x) - 1)]) >= 0.1 * span))
        worst = max(worst, (float(lengths[steep].sum()) / len(x), value))
    return worst


def check_content(x: np.ndarray, path: Path | str, lead: str | int, fs: float) -> None:
    """A lead long enough to hold beats, with no flat stretch (a lead off, a dropout) and no clipped peaks."""
    if len(x) < MIN_SECONDS * fs:
        raise CardioError(f"{path}: lead {lead} holds {len(x) / fs:.2f} s of signal ({len(x)} samples at {fs:g} Hz); "
                          f"at least {MIN_SECONDS:g} s are needed to cut a beat with its neighbours: export the whole "
                          "recording, or leave the record out")
    if np.ptp(x) <= 1e-9 * max(1.0, float(np.abs(x).max())) or np.std(x) < 1e-6:
        raise CardioError(f"{path}: lead {lead} is a flat line (no ECG signal): a lead off or an empty export; "
                          "export the lead again, or leave the record out")
    starts, lengths = _runs(np.abs(np.diff(x)) <= 1e-9 * max(1.0, float(np.abs(x).max())))
    if len(lengths) and lengths.max() + 1 >= FLAT_STRETCH_S * fs:
        i = int(np.argmax(lengths))
        raise CardioError(f"{path}: lead {lead} is flat for {(lengths[i] + 1) / fs:.2f} s from {starts[i] / fs:.2f} s "
                          f"(one value repeated longer than the {FLAT_STRETCH_S:g} s allowed: a lead off or a "
                          "dropout); export it again, or leave the record out")
    share, value = clipped_share(x, fs)
    if share >= CLIPPED_SHARE:
        raise CardioError(f"{path}: lead {lead} is clipped: {100 * share:.1f}% of its samples sit at {value:g}, the "
                          "end of the recorder's range, so its peaks are cut flat; export it with a wider range (or a "
                          "lower gain), or leave the record out")


def check_lead(x: np.ndarray, path: Path | str, lead: str | int, fs: float,
               max_gap_s: float = MAX_GAP_S) -> np.ndarray:
    """Reject an all-NaN, damaged, short, flat or clipped lead (check_content); bridge NaN gaps up to `max_gap_s`
    (at `fs` Hz), refuse longer."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        raise CardioError(f"{path}: lead {lead} holds no finite sample (all NaN)")
    if finite.sum() < 0.5 * len(x):
        raise CardioError(f"{path}: lead {lead} is mostly missing ({100 * (1 - finite.mean()):.0f}% NaN)")
    if np.abs(x[finite]).max() > MAX_ABS_VALUE:
        raise CardioError(f"{path}: lead {lead} holds values beyond ±{MAX_ABS_VALUE:g} (a damaged file, in any unit)")
    if not finite.all():
        x = bridge_gaps(x, finite, path, lead, fs, max_gap_s)
    check_content(x, path, lead, fs)
    return x


def find_lead(names: Sequence[str], lead: str, path: Path | str) -> int | None:
    """The index of the lead named `lead` among a file's `names` (None: not there), both read as clinicians write
    them (lead_codes.canonical_lead: "ii", "Lead II", "ECG II", " II " are II): the name as written first, then the
    normalised name, then the lead's stand-in (a modified lead for the standard lead it stands for, MLII for II,
    and back). Two columns that match at the same step are refused."""
    names = [str(n) for n in names]
    if lead in names:
        return names.index(lead)
    for same in (lambda n: lead_key(n) == lead_key(lead),
                 lambda n: (stand_in(n) or canonical_lead(n)) == (stand_in(lead) or canonical_lead(lead))):
        hits = [i for i, n in enumerate(names) if same(n)]
        if len(hits) > 1:
            raise CardioError(f"{path}: leads {[names[i] for i in hits]} all name lead {canonical_lead(lead)}; "
                              "rename all but one")
        if hits:
            return hits[0]
    return None


def default_lead(names: Sequence[str], path: Path | str) -> int:
    """ecg_transfer.lead null, in every format: lead II where the file has one (or its stand-in, MLII), else its first
    lead. Which lead a cohort's files were read from is said once for the cohort (cohort_table.LeadsRead); a file
    read alone says it in the debug log."""
    ii = find_lead(names, "II", path)
    if ii is not None:
        return ii
    log.debug("%s: no lead II among %s; its first lead, %r, is read", path, list(names), names[0])
    return 0


def _pick_lead(names: Sequence[str], lead: str | int | None, path: Path) -> int:
    """The column of `lead`: a name (find_lead) or a 0-based index; None: II (or MLII), else the first lead."""
    names = [str(n) for n in names]
    if lead is None:
        return default_lead(names, path)
    if isinstance(lead, bool) or not isinstance(lead, (str, int, np.integer)):
        raise CardioError(f"{path}: lead {lead!r} is neither a lead name nor a 0-based index; the file has {names}")
    if isinstance(lead, (int, np.integer)) or (isinstance(lead, str) and lead.strip().lstrip("-").isdigit()
                                              and lead not in names):
        i = int(lead)
        if not 0 <= i < len(names):
            raise CardioError(f"{path}: lead index {i} out of range; the file has {len(names)} lead(s) {names}")
        return i
    found = find_lead(names, str(lead), path)
    if found is None:
        raise CardioError(f"{path}: no lead named {lead!r}; the file has {names}")
    return found


# --------------------------------------------------------------------------- WFDB

def _wfdb_base(path: Path | str) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".hea", ".dat", ".atr") else p


def _check_dat_sizes(header, base: Path) -> None:
    """A .dat shorter than the header promises is truncated (wfdb would fail obscurely or read less)."""
    if not header.sig_len:
        return
    files: dict[str, list[int]] = {}
    for i, fname in enumerate(header.file_name or []):
        files.setdefault(fname, []).append(i)
    for fname, chans in files.items():
        dat = base.parent / fname
        if not dat.is_file():
            raise CardioError(f"{base.parent / (base.name + '.hea')}: its signal file {dat} is missing")
        fmts = [str(header.fmt[i]) for i in chans]
        per_sample = {**_FORMAT_BYTES, **_FLAC_BYTES}
        if not all(f in per_sample for f in fmts):
            continue  # a format wfdb cannot read: reading it says so
        spf = [int((header.samps_per_frame or [1] * header.n_sig)[i] or 1) for i in chans]
        offset = int((header.byte_offset or [0] * header.n_sig)[chans[0]] or 0)
        flac = fmts[0] in _FLAC_BYTES  # one FLAC stream holds the file's channels
        need = offset + math.floor(header.sig_len * (per_sample[fmts[0]] * max(spf) if flac else
                                                     sum(per_sample[f] * s for f, s in zip(fmts, spf))))
        check_claim(dat, need, f"{header.sig_len:,} samples per lead in format {'/'.join(dict.fromkeys(fmts))}",
                    kind="WFDB signal file")


def _check_skew(header, base: Path) -> None:
    """A signal's skew (its delay, in samples) longer than the record is damage; wfdb would allocate it."""
    skew = max([int(k or 0) for k in (header.skew or [])] or [0])
    if not skew:
        return
    files = [base.parent / f for f in set(header.file_name or []) if f != "~"]
    limit = header.sig_len or max([f.stat().st_size for f in files if f.is_file()] or [0])
    if skew > limit:
        raise CardioError(f"{base.parent / (base.name + '.hea')}: a skew of {skew} samples is longer than the "
                          f"record (at most {limit} samples); the header is damaged")


def _record_line(hea: Path) -> list[str]:
    """The fields of a header's record line, as wfdb sees the file, checked before wfdb parses it.

    wfdb sizes lists by the record line's counts before it reads further: a damaged count
    ("r 99999999999") would fill the memory. A record line may not declare more signals than the
    header has signal lines; a multi-segment record is refused (the plugin reads one segment).
    """
    try:
        content = hea.read_bytes().decode("ascii", errors="ignore")  # as wfdb.rdheader reads it
    except OSError as exc:
        raise CardioError(f"{hea}: unreadable WFDB header ({exc.strerror})") from None
    lines, _ = wfdb_header.parse_header_content(content)
    if not lines:
        raise CardioError(f"{hea}: not a WFDB header (no record line)")
    record = lines[0].split()
    if "/" in record[0]:
        raise CardioError(f"{hea}: a multi-segment WFDB record; write it as one segment "
                          "(wfdb.rdrecord(...) then wfdb.wrsamp) to use it")
    if len(record) >= 2 and record[1].isdigit() and int(record[1]) > len(lines) - 1:
        raise CardioError(f"{hea}: the record line declares {int(record[1])} signal(s), the header describes "
                          f"{len(lines) - 1}")
    return record


def wfdb_signal_files(hea: Path) -> list[str]:
    """The signal files a WFDB header names, as written (a name relative to its folder; "~" names none). Empty
    when the header is no single-segment header (reading the record says why)."""
    try:
        lines, _ = wfdb_header.parse_header_content(hea.read_bytes().decode("ascii", errors="ignore"))
    except OSError:
        return []
    if not lines or "/" in lines[0].split()[0]:
        return []
    return [line.split()[0] for line in lines[1:] if line.split()[0] != "~"]


#: Annotation files PhysioNet's databases ship beside a record (x.atr: the reference beat labels, ...).
ANNOTATORS = ("atr", "qrs", "ecg", "ari", "man", "sqrs", "wqrs", "gqrs", "pu", "pu0", "pu1")


def wfdb_record_files(path: Path) -> list[Path]:
    """The files of the WFDB record whose header is `path` besides itself: the signal files it names and the
    annotation files beside it (ANNOTATORS); [] for another file (cardio.data.cohort.Column.files: a record copied
    under another name has the same signal bytes)."""
    path = Path(path)
    if path.suffix.lower() != ".hea":
        return []
    base = path.with_suffix("")
    return [*(path.parent / name for name in wfdb_signal_files(path)),
            *(p for p in (base.with_name(f"{base.name}.{a}") for a in ANNOTATORS) if p.is_file())]


def _check_declared_fs(hea: Path, record: list[str], header) -> None:
    """The record line's sampling-rate field, when present, must be a rate wfdb reads as written.

    wfdb reads a field it cannot parse ("-360", "nan", "1e3", "fast") as its default of 250 Hz, or
    keeps only the digits in front ("3_60" as 3 Hz), which would resample the ECG wrongly without a
    word. The WFDB format allows "fs", "fs/counter" and "fs/counter(base)".
    """
    if len(record) < 3:
        return  # no rate stated: WFDB's default of 250 Hz
    field_ = record[2]
    if not _FS_FIELD.fullmatch(field_):
        raise CardioError(f"{hea}: sampling rate {field_!r} in the record line is not a rate in Hz")
    declared = float(field_.split("/")[0])
    if header.fs is None or not math.isclose(declared, float(header.fs)):
        raise CardioError(f"{hea}: sampling rate {field_!r} in the record line is read as {header.fs!r} Hz; "
                          "the header is damaged")


def _wfdb_header(base: Path, hea: Path, lead: str | int | None) -> tuple[wfdb.Record, float, int]:
    """(header, rate, channel of `lead`) of a WFDB record, every check made on the header and the files' sizes."""
    if not hea.is_file():
        raise CardioError(f"{hea}: WFDB header not found")
    record_line = _record_line(hea)
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises assorted errors on malformed headers
        raise CardioError(f"{hea}: unreadable WFDB header ({exc})") from exc
    if isinstance(header, wfdb.MultiRecord):
        raise CardioError(f"{hea}: a multi-segment WFDB record; write it as one segment to use it")
    _check_declared_fs(hea, record_line, header)
    source_fs = _check_fs(header.fs, hea)
    if not header.n_sig:
        raise CardioError(f"{hea}: the header declares no signal")
    _check_dat_sizes(header, base)
    _check_skew(header, base)
    ch = _pick_lead(header.sig_name or [str(i) for i in range(header.n_sig)], lead, hea)
    return header, source_fs, ch


def probe_wfdb(path: Path | str, lead: str | int | None = 0) -> None:
    """Check a WFDB record as its header and file sizes allow (cardio validate), nothing decoded."""
    base = _wfdb_base(path)
    _wfdb_header(base, base.parent / f"{base.name}.hea", lead)


def read_wfdb(path: Path | str, fs: float = 360.0, lead: str | int | None = 0,
              annotator: str | None = None, max_gap_s: float = MAX_GAP_S) -> ECGRecord:
    """One lead of a WFDB record (path with or without .hea), resampled to `fs`; annotations if asked."""
    base = _wfdb_base(path)
    hea = base.parent / f"{base.name}.hea"
    header, source_fs, ch = _wfdb_header(base, hea, lead)
    try:
        rec = wfdb.rdrecord(str(base), channels=[ch])
    except FileNotFoundError as exc:
        raise CardioError(f"{hea}: its signal file is missing ({exc.filename})") from exc
    except Exception as exc:
        raise CardioError(f"{base}.dat: unreadable or truncated WFDB signal ({exc})") from exc
    if header.sig_len and rec.sig_len < header.sig_len:
        raise CardioError(f"{base}.dat: truncated WFDB signal: {rec.sig_len} of {header.sig_len} samples")
    name = rec.sig_name[0] if rec.sig_name else str(ch)
    x = check_lead(rec.p_signal[:, 0], hea, name, source_fs, max_gap_s)
    out = ECGRecord(name=base.name, signal=resample_signal(x, source_fs, fs), fs=float(fs), lead=name,
                    source=hea, source_fs=source_fs)
    if annotator:
        out.ann_samples, out.ann_symbols = read_annotations(base, annotator, source_fs, fs, len(out.signal),
                                                            source_len=rec.sig_len)
    return out


def read_annotations(path: Path | str, annotator: str = "atr", source_fs: float | None = None,
                     fs: float | None = None, n: int | None = None,
                     source_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sample indices at `fs`, symbols) of a WFDB annotation file.

    A damaged file is refused: annotations out of time order, before the record or past its
    `source_len` samples (at the file's own rate), or with codes WFDB does not define.
    """
    base = _wfdb_base(path)
    f = base.parent / f"{base.name}.{annotator}"
    if not f.is_file():
        raise CardioError(f"{f}: annotation file not found")
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise CardioError(f"{f}: unreadable WFDB annotation file ({exc})") from exc
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = np.asarray(ann.symbol, dtype=object).astype(str)
    _check_annotations(f, samples, symbols, source_len)
    src = float(source_fs or ann.fs or fs or 0)
    if fs is not None and src:
        samples = resample_samples(samples, src, fs, n)
    return samples, symbols


def _check_annotations(f: Path, samples: np.ndarray, symbols: np.ndarray, source_len: int | None) -> None:
    if len(samples) == 0:
        return
    if samples.min() < 0 or (np.diff(samples) < 0).any():
        raise CardioError(f"{f}: damaged WFDB annotation file: annotation times are negative or out of order")
    if source_len and samples.max() >= source_len:
        raise CardioError(f"{f}: damaged WFDB annotation file: an annotation at sample {int(samples.max())} lies "
                          f"past the record's {source_len} samples")
    unknown = int((symbols == "nan").sum())  # wfdb's symbol for a code it does not define
    if unknown:
        raise CardioError(f"{f}: damaged WFDB annotation file: {unknown} annotation(s) with a code WFDB does not "
                          "define")


# --------------------------------------------------------------------------- CSV and NumPy

#: Columns of a CSV ECG that are no lead.
_NOT_LEADS = ("time", "t", "sample", "index")


def csv_format(path: Path) -> tuple[str, str]:
    """(delimiter, decimal mark) of a CSV ECG, from its header and first rows, as the core reads every cohort CSV
    (cardio.data.cohort.csv_delimiter, decimal_mark): ",", ";" or tab between values, decimal commas only where ";" or
    tab separates them; a file mixing both marks is refused."""
    wrong = misnamed(path, "CSV")  # an EDF or a DICOM renamed .csv would be read as text of odd "values"
    if wrong:
        raise CardioError(wrong)
    sep = csv_delimiter(path)
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = [line for line in (f.readline() for _ in range(200)) if line.strip()]
    header = len(next(csv.reader([lines[0]], delimiter=sep)))
    rows = list(csv.reader(lines[1:], delimiter=sep))
    _check_row_lengths(path, rows, header, sep)
    return sep, decimal_mark((c for row in rows for c in row), sep, path)


def _check_row_lengths(path: Path, rows: list[list[str]], n: int, sep: str) -> None:
    """No row holds more values than the header names: pandas would silently take the surplus for an index (a
    ","-separated file with decimal commas reads "0,12,1,5" as 1 and 5); checked on the first rows here, pandas
    (index_col=False) refuses a later row longer than those."""
    for i, row in enumerate(rows):
        if len(row) > n and any(c.strip() for c in row[n:]):  # a short row's missing values are NaN gaps
            hint = "; decimal commas need ';' between values" if sep == "," and len(row) > n else ""
            raise CardioError(f"{path}: line {i + 2} holds {len(row)} values, the header names {n} column(s){hint}")


def _csv_frame(path: Path) -> tuple[pd.DataFrame, str]:
    """(the CSV's lead columns as text, its decimal mark), read with its own separators (csv_format), logged where
    they are not "," and "."."""
    sep, decimal = csv_format(path)
    try:
        # an empty line is a missing sample of a one-lead file (a NaN gap), never a line to skip
        df = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=str, keep_default_na=False, index_col=False,
                         skip_blank_lines=False)
    except Exception as exc:
        raise CardioError(f"{path}: unreadable CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    if (sep, decimal) != (",", "."):
        log.info("%s: read as a CSV with %s", path, format_text(sep, decimal))
    df.columns = [str(c).strip() for c in df.columns]
    return df.drop(columns=[c for c in df.columns if c.lower() in _NOT_LEADS]), decimal


def _csv_numbers(cells: pd.Series, path: Path, name: str, decimal: str) -> np.ndarray:
    """A CSV lead's cells as numbers: empty, "nan" and "NA" are missing samples (NaN gaps, check_lead's rule); any
    other cell that is no number is refused, with its line."""
    text = cells.astype(str).str.strip()
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    missing = text.str.lower().isin(["", "nan", "na", "n/a", "null"])
    values = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = (~missing & values.isna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CardioError(f"{path}: lead {name}: line {i + 2} holds {cells.iloc[i]!r}, not a number "
                          f"({int(bad.sum())} such cell(s))")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def read_csv_signal(path: Path | str, source_fs: float, fs: float = 360.0, lead: str | int | None = 0,
                    max_gap_s: float = MAX_GAP_S) -> ECGRecord:
    """A CSV ECG: one column per lead with a header row of lead names, one row per sample at `source_fs`; ",", ";"
    or tab between values, a decimal point or (";" or tab only) a decimal comma (csv_format)."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    source_fs = _check_fs(source_fs, path)
    df, decimal = _csv_frame(path)
    if df.shape[1] == 0 or len(df) == 0:
        raise CardioError(f"{path}: the CSV holds no signal column or no sample")
    ch = _pick_lead(list(df.columns), lead, path)
    name = str(df.columns[ch])
    col = _csv_numbers(df.iloc[:, ch], path, name, decimal)
    x = check_lead(col, path, name, source_fs, max_gap_s)
    return ECGRecord(name=path.stem, signal=resample_signal(x, source_fs, fs), fs=float(fs), lead=name,
                     source=path, source_fs=source_fs)


def csv_leads(path: Path) -> list[str]:
    """The lead columns of a CSV ECG's header row, read with its separators (for cardio validate)."""
    sep, _ = csv_format(Path(path))
    try:
        columns = pd.read_csv(path, sep=sep, encoding="utf-8-sig", nrows=0).columns
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CardioError(f"{path}: unreadable CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return [c for c in (str(c).strip() for c in columns) if c.lower() not in _NOT_LEADS]


def read_npy_signal(path: Path | str, source_fs: float, fs: float = 360.0, lead: str | int | None = 0,
                    lead_names: Sequence[str] | None = None, max_gap_s: float = MAX_GAP_S) -> ECGRecord:
    """A .npy ECG of shape (samples,) or (samples, leads) at `source_fs` (lead names optional)."""
    path = Path(path)
    if not path.is_file():
        raise CardioError(f"{path}: ECG file not found")
    source_fs = _check_fs(source_fs, path)
    arr = read_npy(path)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise CardioError(f"{path}: expected a numeric array (samples,) or (samples, leads), "
                          f"got {arr.dtype} {arr.shape}")
    names = list(lead_names) if lead_names is not None else [str(i) for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise CardioError(f"{path}: {len(names)} lead names for {arr.shape[1]} columns")
    if arr.shape[1] == 1 and isinstance(lead, str) and lead_names is None:
        ch = 0  # a single-lead file without names: the named lead is that one, said in the log
        log.info("%s: a NumPy ECG of one unnamed lead, read as lead %s", path, lead)
    else:
        ch = _pick_lead(names, lead, path)
    x = check_lead(arr[:, ch], path, names[ch], source_fs, max_gap_s)
    return ECGRecord(name=path.stem, signal=resample_signal(x, source_fs, fs), fs=float(fs), lead=names[ch],
                     source=path, source_fs=source_fs)


def read_ecg(path: Path | str, fs: float = 360.0, lead: str | int | None = 0,
             source_fs: float | None = None, max_gap_s: float = MAX_GAP_S) -> ECGRecord:
    """Any supported ECG file by its suffix: WFDB (.hea or no suffix), .csv or .npy (these need `source_fs`); NaN
    gaps up to `max_gap_s` bridged, longer refused (check_lead)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".npy"):
        if source_fs is None:
            raise CardioError(f"{path}: a {suffix} ECG needs its sampling rate (an `fs` column in the cohort "
                              "table or source_fs)")
        if suffix == ".csv":
            return read_csv_signal(path, source_fs, fs, lead, max_gap_s)
        return read_npy_signal(path, source_fs, fs, lead, max_gap_s=max_gap_s)
    if suffix in ("", ".hea", ".dat") or not path.exists():
        return read_wfdb(path, fs, lead, max_gap_s=max_gap_s)
    raise CardioError(f"{path}: unsupported ECG file type {suffix!r} (WFDB, .csv or .npy)")


def read_many(paths: Iterable[Path | str], fs: float = 360.0, lead: str | int | None = 0,
              source_fs: float | None = None, skip_bad: bool = False,
              progress: Callable | None = None) -> tuple[list[ECGRecord], list[tuple[str, str]]]:
    """Read several ECGs; a bad one raises, or with `skip_bad` is left out and listed as (path, reason)."""
    paths = list(paths)
    out, skipped = [], []
    for p in (progress(paths, desc="ECG records", total=len(paths)) if progress else paths):
        try:
            out.append(read_ecg(p, fs, lead, source_fs))
        except CardioError as exc:
            if not skip_bad:
                raise
            log.warning("skipping a bad ECG record: %s", exc)
            skipped.append((str(p), str(exc)))
    return out, skipped


# --------------------------------------------------------------------------- MIT-BIH


