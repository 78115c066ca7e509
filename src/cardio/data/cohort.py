"""The cohort contract: one reader for every plugin's cohort table.

A cohort is a folder holding one CSV table (its name is the plugin's `Schema.table`, e.g. labels.csv)
and the files its rows name. Rows follow the hierarchy patient -> study -> record: `patient_id` is
required; `study_id` groups a patient's records of one visit (several clips, baseline and follow-up
are two studies); `record_id` names one row's data. Missing `study_id` means one study per record;
missing `record_id` means the study (else the patient) names the record, numbered `#2`, `#3`... when
a study holds several rows. Splits are made by patient, so a study's records always stay together.

A plugin declares its columns once (`Schema`): their kinds, which are required, which are targets
(labels that may be missing row by row: NaN is the mask) and which are file paths (resolved inside
the cohort folder; `cohort.allow_outside_paths` is the one switch that lets them out). `read_table`
checks all of it and raises `CohortProblems` listing every problem at once, each naming the file,
the CSV line and the column; `cardio validate` prints them as rows. A file named by rows of several
patients, or files of the same bytes under several patients, is one of them (a patient's own records may share one).

The table is read as hospitals export it: ",", ";" or tab between values (a ";" or tab table may write its numbers
with decimal commas), a UTF-8 byte-order mark, headers in any case with spaces around them. A plugin's record
checks open the files the rows name with the readers its run uses (`read_records`), so a record that would stop the
run is a problem of its line in the same list; `cohort.records: read` (what `cardio validate` sets) asks for the
whole of every record, `headers` (a run's default) for what a header says.
"""
from __future__ import annotations

import csv as csv_module
import difflib
import hashlib
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardio.data import CardioError, printable

HIERARCHY = ("patient_id", "study_id", "record_id")
KINDS = ("text", "number", "integer", "binary", "category", "path", "date")
LEVELS = ("record", "study", "patient")
OUTSIDE_SWITCH = "cohort.allow_outside_paths"
_YES_NO = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "y": 1, "n": 0}
#: Between values: the one of these that splits a CSV's header into most fields ("," where they tie).
DELIMITERS = (",", ";", "\t")
#: A number written with a decimal comma (the European export: "0,125", "-1,5e-3") or a decimal point.
DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")


def csv_delimiter(path: str | Path) -> str:
    """The delimiter of a CSV: the one of ",", ";" and tab that splits its header row into most fields.

    Written here because csv.Sniffer takes the decimal commas of a European export for its delimiter; the cohort
    table and the plugins' CSV records (ECG leads, polar maps, septum points) are read with it. A one-column file
    whose numbers carry decimal commas ("II", "0,125", ...: a single lead exported in Europe) has no delimiter: ";"
    is returned, which splits none of its rows."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            lines = [line for line in (f.readline() for _ in range(50)) if line.strip()]
    except OSError as exc:
        raise CardioError(f"{path}: unreadable CSV ({exc.strerror})") from None
    if not lines:
        raise CardioError(f"{path}: the CSV is empty")
    fields = {d: [f for f in next(csv_module.reader([lines[0]], delimiter=d)) if f.strip()] for d in DELIMITERS}
    cells = [line.strip() for line in lines[1:]]
    if all(len(f) <= 1 for f in fields.values()) and any(DECIMAL_COMMA.fullmatch(c) for c in cells) \
            and all(DECIMAL_COMMA.fullmatch(c) or DECIMAL_POINT.fullmatch(c) for c in cells):
        return ";"  # decimal_mark then reads the commas, or refuses a file writing both marks
    # ";" or tab where either splits the first line: its commas, if any, are decimal commas (a headerless map of
    # numbers "95,09;126,30" has more commas than semicolons)
    european = [d for d in (";", "\t") if len(fields[d]) >= 2]
    return max(european, key=lambda d: len(fields[d])) if european else ","


def decimal_mark(cells: Iterable[str], delimiter: str, path: str | Path) -> str:
    """"," where a ";"- or tab-separated CSV writes its numbers with decimal commas, else "."; a file writing both
    marks is refused (which cell meant what cannot be told)."""
    if delimiter == ",":
        return "."
    cells = [str(c).strip() for c in cells]
    commas = [c for c in cells if DECIMAL_COMMA.fullmatch(c)]
    points = [c for c in cells if DECIMAL_POINT.fullmatch(c)]
    if commas and points:
        raise CardioError(f"{path}: numbers written with decimal commas ({len(commas)} cells, e.g. {commas[0]!r}) and "
                          f"decimal points ({len(points)} cells, e.g. {points[0]!r}); export it with one decimal mark")
    return "," if commas else "."


def format_text(delimiter: str, decimal: str) -> str:
    """How a CSV was read, for the log: "values separated by ';' and decimal mark ','"."""
    return f"values separated by {'tab' if delimiter == chr(9) else repr(delimiter)} and decimal mark {decimal!r}"


def read_csv_text(path: str | Path, *, duplicates: bool = False, **kw: Any) -> tuple[pd.DataFrame, str]:
    """(every cell as text, the delimiter): a CSV read with its own delimiter (csv_delimiter), a byte-order mark
    dropped and its header names stripped; a file that is not UTF-8 is read as Windows-1252 (what Excel writes on
    Windows). A file pandas cannot parse is a CardioError naming it and pandas' reason. A header naming a column
    twice is one too, unless `duplicates`: then the columns keep the header's names, the same name twice (pandas
    would rename the second "responder.1", and a reader would take the first without a word)."""
    delimiter = csv_delimiter(path)
    options = dict(sep=delimiter, dtype=str, keep_default_na=False, na_values=[""], index_col=False, **kw)
    try:
        try:
            frame, header = _frame(path, "utf-8-sig", options)
        except UnicodeDecodeError:
            frame, header = _frame(path, "cp1252", options)
            logging.getLogger("cardio.run").info("%s: not UTF-8; read as Windows-1252", path)
    except (ValueError, pd.errors.ParserError) as e:
        raise CardioError(f"{path}: unreadable CSV ({' '.join(str(e).split())[:200]})") from None
    written = header if len(header) == frame.shape[1] else [None] * frame.shape[1]
    names = [str(c if w is None else w).replace("\ufeff", "").strip() for c, w in zip(frame.columns, written)]
    twice = {n: [i + 1 for i, m in enumerate(names) if m == n] for n in names if names.count(n) > 1}
    if twice and not duplicates:
        raise CardioError(f"{path}: the header names {_twice_text(twice)}; keep one column of each name")
    frame.columns = names
    return frame, delimiter


def _frame(path: str | Path, encoding: str, options: dict) -> tuple[pd.DataFrame, list[str | None]]:
    """The table and its header row as written (read apart: pandas renames a repeated name); None for an empty
    header cell, which keeps pandas' name ("Unnamed: 3": a spreadsheet's trailing separators)."""
    header = pd.read_csv(path, encoding=encoding, header=None, nrows=1, **options)
    return pd.read_csv(path, encoding=encoding, **options), [None if pd.isna(c) else str(c) for c in header.iloc[0]]


def _twice_text(twice: dict[str, list[int]]) -> str:
    return ", ".join(f"{n!r} {len(at)} times (columns {', '.join(map(str, at))})" for n, at in twice.items())


@dataclass(frozen=True)
class Column:
    """One column of a cohort table.

    kind: text | number | integer | binary (0/1, yes/no, true/false) | category (one of `values`) |
    path (a file inside the cohort folder) | date (ISO 8601). A `target` is a label the models learn:
    an empty cell is a missing label (masked), never a problem. A path column may be absent from the
    CSV when `default` gives the file name, e.g. "maps/{record_id}" with `suffixes` (".npy",) tried in order.
    `files` (a path column) gives the other files the record a cell names consists of, from that file (a WFDB
    header -> its signal and annotation files): the check for a record under several patients compares their bytes
    too.
    """

    name: str
    kind: str = "number"
    required: bool = False
    target: bool = False
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    default: str | None = None
    suffixes: tuple[str, ...] = ()
    description: str = ""
    files: Callable[[Path], Iterable[Path]] | None = None
    aliases: tuple[str, ...] = ()  # other headers exports give it ("QRS_duration" for qrs_ms): named as its typo

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "category" and not self.values:
            raise ValueError(f"column {self.name!r}: a category column lists its values")


@dataclass(frozen=True)
class Schema:
    """A plugin's cohort table: its file name, its columns, and the level predictions are made at.

    level: record | study | patient; `aggregate` (mean, max, logit_mean: cardio_stats.aggregate_scores)
    turns the scores of a level's records into one. Columns not declared are kept as they are. `response`
    (cardio_response.volumetric.VolumetricResponse) derives the outcome, the schema's one target, by the papers' rule
    and checks the given one.
    """

    columns: tuple[Column, ...]
    table: str = "labels.csv"
    level: str = "record"
    aggregate: str = "mean"
    #: a cardio_response.volumetric.VolumetricResponse: read_table derives and checks the outcome by it
    response: Any = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"schema level must be one of {LEVELS}, got {self.level!r}")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"schema declares a column twice: {names}")
        if self.response is not None and len(self.targets) != 1:
            raise ValueError(f"a schema with a response rule declares one target column, not {self.targets}")

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.target)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def describe(self) -> pd.DataFrame:
        """The schema as a table (docs, `cardio new-cohort`): name, kind, required, target, allowed, description."""
        rows = []
        for c in (Column("patient_id", "text", required=True, description="the patient; splits group by it"),
                  Column("study_id", "text", description="one visit of the patient (default: one per record)"),
                  Column("record_id", "text", description="one row's data (default: the study, else the patient)"),
                  *self.columns):
            allowed = ", ".join(map(str, c.values)) if c.values else (
                "0/1" if c.kind == "binary" else _range_text(c.low, c.high) if c.kind in ("number", "integer") else "")
            rows.append({"column": c.name, "kind": c.kind, "required": c.required, "target": c.target,
                         "allowed": allowed, "description": c.description})
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Problem:
    """One problem of a cohort: the file, the CSV line (header = line 1) and the column where it is. `readable`: the
    file the row names is sound (a copy under another patient): a plugin's readers still open it."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None
    readable: bool = False

    def __str__(self) -> str:  # escaped: a file name or cell it quotes cannot forge a line (printable)
        where = ", ".join(p for p in (f"line {self.line}" if self.line else "",
                                      f"column {self.column!r}" if self.column else "") if p)
        return printable(f"{self.file}: {where + ': ' if where else ''}{self.message}")


class CohortProblems(CardioError):
    """Every problem found in a cohort; its text is the first one and how many more there are."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem(s); `cardio validate` lists them all)" if more else ""
        super().__init__(f"{self.problems[0]}{suffix}")


class Problems:
    """Collects the problems of one cohort file; plugins add their own row checks to the same list."""

    def __init__(self, file: str | Path):
        self.file = str(file)
        self.items: list[Problem] = []
        self.root = f"{os.path.normpath(Path(file).parent.absolute())}{os.sep}"
        self.passed: set[tuple[int, str]] = set()  # (line, column) a table-level problem names already

    def add(self, message: str, line: int | None = None, column: str | None = None, readable: bool = False) -> None:
        """A problem of the table; a file inside the cohort folder is named by its path there (videos/a.dcm)."""
        self.items.append(Problem(self.file, message.replace(self.root, ""), line, column, readable))

    def refused(self, *columns: str) -> set[int]:
        """Lines whose file in one of `columns` is already a problem a reader must not open (absent, outside the
        folder, unreadable), or one a table-level problem names already (`passed`: the rows of a file shared by
        several patients, after its first few): the plugins' record checks pass them by."""
        return ({p.line for p in self.items if p.column in columns and p.line is not None and not p.readable}
                | {line for line, column in self.passed if column in columns})

    def rows(self, mask: Any, message: str, column: str | None = None, limit: int = 10) -> None:
        """One problem per flagged row (the first `limit`, then one line counting the rest)."""
        flagged = np.flatnonzero(np.asarray(mask, dtype=bool))
        for i in flagged[:limit]:
            self.add(message, int(i) + 2, column)
        if flagged.size > limit:
            self.add(f"{flagged.size - limit} more row(s): {message}", None, column)

    def raise_if_any(self) -> None:
        if self.items:  # in file order: table-wide problems first, then by line, each "N more rows" last
            raise CohortProblems(sorted(self.items, key=lambda p: p.line if p.line is not None else
                                        (0 if p.column is None else 10**9)))


#: What differs between two problems of one kind: a number (a line, a count), a name it quotes (not the column's), a
#: file's path. The rest (the file, the column, what is wrong) is the kind.
_VARYING = re.compile(r"(?<!column )'[^']*'|\"[^\"]*\"|\S*/\S*|\S+\.[A-Za-z0-9]{1,5}\b|\d[\d,.]*")
#: Problems of one kind `cardio validate` prints before it counts the rest.
SHOWN_OF_A_KIND = 20


def capped(problems: Iterable[str], limit: int = SHOWN_OF_A_KIND) -> list[str]:
    """The problem lines to print: of each kind (a line with its numbers, quoted names and paths left out), the
    first `limit`, then one line "... and 99,980 more of this kind", where the last one shown stood. A table of
    100,000 rows with one fault each prints 21 lines, not 100,000."""
    shown: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    where: dict[str, int] = {}
    for line in problems:
        kind = _VARYING.sub("_", line)
        counts[kind] += 1
        if counts[kind] <= limit:
            shown.append(line)
            where[kind] = len(shown)
    for kind, at in sorted(where.items(), key=lambda item: -item[1]):  # from the end: the positions stay right
        if counts[kind] > limit:
            shown.insert(at, f"... and {counts[kind] - limit:,} more of this kind")
    return shown


def _range_text(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "a number"
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()


def _typed(values: pd.Series, col: Column, problems: Problems, decimal: str = ".") -> pd.Series:
    """The column as its kind (NaN where empty); every unreadable or out-of-range cell is a problem. `decimal` ","
    reads a number column's decimal commas (a ";"- or tab-separated table, checked by read_table)."""
    empty = _blank(values)
    text = values.astype(str).str.strip()
    if col.kind in ("text", "path"):
        return text.where(~empty, None)
    if col.kind == "binary":
        mapped = text.str.lower().map(_YES_NO)
        bad = ~empty & mapped.isna().to_numpy()
        problems.rows(bad, f"must be 0/1 (or yes/no), found {_examples(values[bad])}; code it 1 or 0, or leave it "
                           "empty where unknown", col.name)
        return mapped.where(~empty & ~bad).astype(float)
    if col.kind == "category":
        allowed = {str(v).lower(): v for v in col.values}
        mapped = text.str.lower().map(allowed)
        bad = ~empty & mapped.isna().to_numpy()
        problems.rows(bad, f"must be one of {list(col.values)}, found {_examples(values[bad])}", col.name)
        return mapped.where(~empty & ~bad)
    if col.kind == "date":
        parsed = pd.to_datetime(text.where(~empty, None), errors="coerce", format="ISO8601")
        bad = ~empty & parsed.isna().to_numpy()
        problems.rows(bad, f"must be a date (YYYY-MM-DD), found {_examples(values[bad])}", col.name)
        return parsed
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    number = pd.to_numeric(text.where(~empty, None), errors="coerce")
    bad = ~empty & ~np.isfinite(number.to_numpy(dtype=float, na_value=np.nan))
    comma = values[bad].astype(str).str.strip().str.fullmatch(DECIMAL_COMMA.pattern).any()
    hint = ("; a decimal comma: write a point, or save the table with ';' between values" if comma else
            "; write the number alone (no unit, no text), or leave the cell empty where it is unknown")
    problems.rows(bad, f"must be a finite number, found {_examples(values[bad])}{hint}", col.name)
    if col.kind == "integer":
        frac = ~empty & ~bad & (number.fillna(0) % 1 != 0).to_numpy()
        problems.rows(frac, f"must be a whole number, found {_examples(values[frac])}", col.name)
        bad |= frac
    ok = ~empty & ~bad
    out_low = ok & (number < col.low).to_numpy() if col.low is not None else np.zeros(len(values), bool)
    out_high = ok & (number > col.high).to_numpy() if col.high is not None else np.zeros(len(values), bool)
    out = out_low | out_high
    problems.rows(out, f"must be {_range_text(col.low, col.high)}, found {_examples(values[out])}", col.name)
    return number.where(ok & ~out).astype(float)


def _examples(values: pd.Series, n: int = 3) -> str:
    shown = [str(v) for v in pd.unique(values)[:n]]
    return ", ".join(repr(v) for v in shown) + (" ..." if values.nunique() > n else "")


def _hierarchy(table: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """patient_id, study_id and record_id as text, defaults filled, each level nested in the one above."""
    for c in HIERARCHY:
        if c in table.columns:
            empty = _blank(table[c])
            if c == "patient_id" or not empty.all():
                problems.rows(empty, "is empty", c)
            table[c] = table[c].astype(str).str.strip().where(~empty, None)
    pid = table["patient_id"].fillna("")
    if "study_id" not in table.columns or table["study_id"].isna().all():
        table["study_id"] = table["record_id"] if "record_id" in table.columns else pid
    if "record_id" not in table.columns or table["record_id"].isna().all():
        base = table["study_id"].fillna("")
        k = base.groupby(base).cumcount() + 1
        table["record_id"] = base.where(k == 1, base + "#" + k.astype(str))
    dup = table["record_id"].duplicated(keep=False).to_numpy() & table["record_id"].notna().to_numpy()
    problems.rows(dup, "record_id appears on more than one row (each row is one record)", "record_id")
    for child, parent in (("study_id", "patient_id"), ("record_id", "study_id")):
        parents = table.groupby(child)[parent].nunique()
        shared = table[child].isin(parents.index[parents > 1]).to_numpy()
        problems.rows(shared, f"one {child} belongs to several {parent} values", child)
    return table


def _file(root: Path, value: str, col: Column, allow_outside: bool, log: logging.Logger | None) -> tuple[Path, str]:
    """(path, problem or ''): the file a cell names, inside the cohort folder unless allowed, that exists."""
    root = Path(os.path.normpath(Path(root).absolute()))
    path = Path(os.path.normpath(root / value))  # an absolute value replaces root
    candidates = [path] if path.suffix or not col.suffixes else [path.with_name(path.name + s) for s in col.suffixes]
    found = next((p for p in candidates if p.is_file()), candidates[0])
    # A symlink inside the folder that points outside it is an outside path as well.
    inside = found.is_relative_to(root) and (not found.exists() or found.resolve().is_relative_to(root.resolve()))
    if not inside:
        if not allow_outside:
            return found, f"names {value!r}, outside the cohort folder; set {OUTSIDE_SWITCH}: true to allow it"
        (log or logging.getLogger("cardio.run")).warning("reading a file outside the cohort folder: %s", found)
    if not found.is_file():
        tried = "{" + ",".join(col.suffixes) + "}" if len(candidates) > 1 else ""
        return found, f"names {value}{tried}, which is not a file in {root}"
    return found, ""


def _paths(table: pd.DataFrame, root: Path, col: Column, problems: Problems, allow_outside: bool,
           log: logging.Logger | None) -> pd.Series:
    given = table[col.name] if col.name in table.columns else pd.Series([None] * len(table), dtype=object)
    ids = {k: table[k].tolist() for k in HIERARCHY}  # once, not a pandas lookup per row and column
    out: list[str | None] = []
    for i, value in enumerate(given):
        value = None if value is None or pd.isna(value) or not str(value).strip() else str(value).strip()
        if value is None and col.default is not None:
            value = col.default.format(**{k: ids[k][i] for k in HIERARCHY})
        if value is None:
            if col.required:
                problems.add("names no file", i + 2, col.name)
            out.append(None)
            continue
        path, problem = _file(root, str(value), col, allow_outside, log)
        if problem:
            problems.add(problem, i + 2, col.name)
        out.append(str(path))
    return pd.Series(out, index=table.index, dtype=object)


HEAD_BYTES = 1 << 16  # the first bytes hashed before a whole file: most same-size files differ there


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(HEAD_BYTES), digest_size=16).digest()


def _whole(path: str) -> bytes:
    with open(path, "rb") as f:  # streamed in blocks: a clip or a volume is never held whole
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).digest()


def _collide(paths: Iterable[str], key: Callable[[str], Hashable]) -> list[list[str]]:
    groups: dict[Hashable, list[str]] = defaultdict(list)
    for p in paths:
        groups[key(p)].append(p)
    return [g for g in groups.values() if len(g) > 1]


def same_content(paths: Iterable[str]) -> tuple[list[list[str]], int]:
    """(groups of two or more files holding the same bytes, files opened). Files are grouped by size, then by a
    hash of their first 64 KiB, then of the whole file: only files whose size collides are opened at all."""
    sized = _collide(paths, os.path.getsize)
    heads = [g for group in sized for g in _collide(group, _head)]
    return [g for group in heads for g in _collide(group, _whole)], sum(map(len, sized))


def _record_files(col: Column, cell: str, root: Path) -> list[str]:
    """The real paths of every file one cell's record names: the file itself and, through `col.files`, the files it
    names in turn (a WFDB header's signal and annotation files), those inside the cohort folder (the plugin's own
    checks name the others)."""
    inside = Path(os.path.realpath(root))
    others = [os.path.realpath(f) for f in (col.files(Path(cell)) if col.files else ())]
    return list(dict.fromkeys([os.path.realpath(cell), *(f for f in others if os.path.isfile(f)
                                                          and Path(f).is_relative_to(inside))]))


def _shared_files(table: pd.DataFrame, root: Path, schema: Schema, problems: Problems,
                  log: logging.Logger | None, same: int = 3) -> None:
    """A file, or files with the same bytes, named by rows of several patients: a record filed under a second
    patient is counted twice and can sit on both sides of a split. Every file a record names is compared (a WFDB
    copy renamed has a new header and the same .dat). One patient's records may share a file. The problem names
    files and lines, never the patients' ids; the rows after a group's first `same` are passed by the record checks
    (a table naming 3 files from 100,000 rows reads 9 records, not 100,000)."""
    named: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # real path -> (line, patient, column)
    # Rows already refused for their file (outside the folder) or their ids (a duplicated record id names one
    # default file twice) are not compared: that problem is the one to fix.
    flagged = {(p.line, p.column) for p in problems.items} | {(p.line, None) for p in problems.items
                                                              if p.column in HIERARCHY}
    for col in (c for c in schema.columns if c.kind == "path" and c.name in table.columns):
        for i, (value, pid) in enumerate(zip(table[col.name], table["patient_id"])):
            if value is not None and pid is not None and not {(i + 2, col.name), (i + 2, None)} & flagged \
                    and os.path.isfile(value):
                for f in _record_files(col, str(value), root):
                    named[f].append((i + 2, str(pid), col.name))
    try:  # an empty file is a truncated one, named by the plugin's reader, not a shared record
        groups, opened = same_content(p for p in named if os.path.getsize(p) > 0)
    except OSError as e:
        problems.add(f"a file it names cannot be read: {e}")
        return
    grouped = {p for g in groups for p in g}
    groups += [[p] for p in named if p not in grouped]
    told: set[tuple[int, ...]] = set()  # the rows a problem names: a copied record's files share one problem
    for group in sorted(groups, key=lambda g: min(named[p][0][0] for p in g)):
        rows = sorted({(line, pid, col, p) for p in group for line, pid, col in named[p]})
        lines = tuple(dict.fromkeys(line for line, *_ in rows))
        if len({pid for _, pid, _, _ in rows}) < 2 or lines in told:
            continue
        told.add(lines)
        _shared_problem(problems, root, group, rows, same)
    (log or logging.getLogger("cardio.run")).info(
        "cohort files: %d named, %d of them compared by content (their sizes collide), %d shared by several "
        "patients", len(named), opened, len(told))


def _shared_problem(problems: Problems, root: Path, group: list[str], rows: list[tuple[int, str, str, str]],
                    same: int) -> None:
    """One problem naming the files of a shared group and the lines naming them (no patient id: docs/security.md);
    the rows after its first `same` lines are passed by the record checks (Problems.passed)."""
    patients = len({pid for _, pid, _, _ in rows})
    what = "one file is" if len(group) == 1 else f"{len(group)} files with the same content are"
    listed = "; ".join(f"{_shown(root, p)} (line {line})" for line, _, _, p in rows[:10])
    more = f"; and {len(rows) - 10} more row(s)" if len(rows) > 10 else ""
    problems.add(f"{what} named by {patients} patients: {listed}{more}; a record belongs to one patient: give each "
                 "row its own patient's file, or remove the copy", rows[0][0], rows[0][2], readable=True)
    later = set(list(dict.fromkeys(line for line, *_ in rows))[same:])
    problems.passed.update((line, col) for line, _, col, _ in rows if line in later)


def _shown(root: Path, path: str) -> str:
    absolute = Path(os.path.normpath(Path(root).absolute()))
    return os.path.relpath(path, absolute) if Path(path).is_relative_to(absolute) else path


def _loose(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def _near(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` most likely misspells: the same letters and digits, else difflib's closest (ratio 0.8)."""
    by_key = {_loose(c): c for c in candidates}
    if _loose(name) in by_key:
        return by_key[_loose(name)]
    close = difflib.get_close_matches(_loose(name), list(by_key), n=1, cutoff=0.8)
    return by_key[close[0]] if close else None


def _named(raw: pd.DataFrame, schema: Schema, problems: Problems, log: logging.Logger | None) -> pd.DataFrame:
    """The table's columns under the schema's names: a header is the declared name it equals but for case and the
    spaces around it ("Patient_ID " is patient_id), said once in the log; two headers meaning one name (the same name
    written twice among them) are a problem: which of them holds the values cannot be told."""
    declared = {n.casefold(): n for n in (*HIERARCHY, *(c.name for c in schema.columns))}
    names = [declared.get(c.casefold(), c) for c in raw.columns]
    renamed = {c: n for c, n in zip(raw.columns, names) if c != n}
    twice = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    for n in twice:
        at = [i + 1 for i, m in enumerate(names) if m == n]
        problems.add(f"columns {[raw.columns[i - 1] for i in at]} (header columns {', '.join(map(str, at))}) all "
                     f"mean {n!r}: which one holds its values cannot be told; keep one")
    if renamed:
        (log or logging.getLogger("cardio.run")).info(
            "%s: header(s) read as the schema names them (case and spaces aside): %s", problems.file,
            ", ".join(f"{c!r} as {n!r}" for c, n in renamed.items()))
    raw.columns = names
    return raw.loc[:, ~pd.Index(names).duplicated()]


def _columns(raw: pd.DataFrame, schema: Schema, problems: Problems) -> list[str]:
    """Every missing and every unknown column with its near-match, named together in one problem; the required
    columns missing (their rows' cells are not checked again). An unknown column is one the schema does not declare
    that nearly matches a declared column the table lacks (a typo); others are kept as the table's own columns."""
    # A target column may be absent: a cohort to predict has no labels (a run's checks refuse an empty target).
    needed = ["patient_id", *(c.name for c in schema.columns
                              if c.required and not c.target and not (c.kind == "path" and c.default))]
    declared = [*HIERARCHY, *(c.name for c in schema.columns)]
    absent = [c for c in declared if c not in raw.columns]
    aliases = {_loose(a): c.name for c in schema.columns for a in c.aliases if c.name in absent}
    guesses = {c: g for c in raw.columns if c not in declared and (g := aliases.get(_loose(c)) or _near(c, absent))}
    meant = {g: c for c, g in guesses.items()}
    missing = [c for c in needed if c not in raw.columns]
    parts = []
    if missing:
        hints = [f"{meant[c]!r} for {c!r}" for c in missing if c in meant]
        parts.append(f"lacks column(s) {missing}" + (f" (did you mean {', '.join(hints)}?)" if hints else ""))
    unknown = [c for c, g in guesses.items() if g not in missing]
    if unknown:
        parts.append("column(s) " + ", ".join(f"{c!r} (did you mean {guesses[c]!r}?)" for c in unknown)
                     + " are not columns of this table: rename them (as they are, none is read as the column it "
                       "resembles)")
    if parts:
        problems.add("; ".join(parts) + f"; it has {list(raw.columns)}")
    return missing


def _number_format(raw: pd.DataFrame, schema: Schema, delimiter: str, problems: Problems) -> str:
    """The decimal mark of the table's number columns (decimal_mark). A table writing both marks is one problem
    naming where the fewer stand (which cell meant what cannot be told: "1.060" may be a thousand and sixty); its
    cells are then typed with the more common mark, so that they are not each named again."""
    numbers = [c.name for c in schema.columns if c.kind in ("number", "integer") and c.name in raw.columns]
    cells = pd.concat([raw[c].dropna().astype(str) for c in numbers]) if numbers else pd.Series(dtype=str)
    try:
        return decimal_mark(cells, delimiter, problems.file)
    except CardioError as e:
        comma = {c: raw[c].astype(str).str.strip().str.fullmatch(DECIMAL_COMMA.pattern).fillna(False) for c in numbers}
        point = {c: raw[c].astype(str).str.strip().str.fullmatch(DECIMAL_POINT.pattern).fillna(False) for c in numbers}
        more = "," if sum(int(v.sum()) for v in comma.values()) >= sum(int(v.sum()) for v in point.values()) else "."
        fewer = point if more == "," else comma
        where = [f"{c!r} line {int(np.flatnonzero(m.to_numpy())[0]) + 2}" for c, m in fewer.items() if m.any()]
        problems.add(f"{str(e).removeprefix(f'{problems.file}: ')}; the {'points' if more == ',' else 'commas'} are "
                     f"in column(s) {', '.join(where[:10])}")
        return more


def _one_value_per_unit(table: pd.DataFrame, schema: Schema, problems: Problems, limit: int = 10) -> None:
    """A target predicted per patient (or per study) has one value per patient (study): a line whose value differs
    from an earlier line of its patient is a problem naming both lines."""
    unit = {"patient": "patient_id", "study": "study_id"}.get(schema.level)
    if unit is None:
        return
    lines = pd.Series(np.arange(len(table)) + 2, index=table.index)
    for target in (t for t in schema.targets if t in table.columns):
        present = table[target].notna() & table[unit].notna()
        rows = table.loc[present, [unit, target]].assign(line=lines[present])
        first = rows.groupby(unit, sort=False).transform("first")
        differ = rows[target] != first[target]
        shown = [(int(line), v, w, int(at)) for line, v, w, at in
                 zip(rows["line"][differ], rows[target][differ], first[target][differ], first["line"][differ])]
        for line, value, other, at in shown[:limit]:
            problems.add(f"{_value(value)} here, {_value(other)} on line {at} of the same {unit.split('_')[0]}: a "
                         f"{schema.level}'s records carry one {target}; correct the wrong line", line, target)
        if len(shown) > limit:
            problems.add(f"{len(shown) - limit} more line(s) whose {target} differs from their {schema.level}'s "
                         "first line", None, target)


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else repr(v)


def read_table(root: str | Path, schema: Schema, *, allow_outside: bool = False, log: logging.Logger | None = None,
               checks: Iterable[Callable[[pd.DataFrame, Problems], None]] = (),
               table: str | None = None) -> pd.DataFrame:
    """The cohort table of folder `root`, typed and checked against `schema`; raises CohortProblems.

    Returns one row per record: patient_id, study_id, record_id (text), every declared column as its
    kind (targets NaN where missing; paths absolute), and the other columns as read. `checks` run on
    the typed table and add the plugin's own row problems (its record checks: read_records) to the same list.
    """
    root = Path(root).expanduser()
    csv = root / (table or schema.table)
    if not root.is_dir():
        raise CardioError(f"cohort folder {root} does not exist")
    if not csv.is_file():
        raise CardioError(f"{csv}: cohort table not found (write it with `cardio new-cohort`)")
    raw, delimiter = read_csv_text(csv, duplicates=True)
    problems = Problems(csv)
    raw = _named(raw, schema, problems, log)
    missing = _columns(raw, schema, problems)
    if "patient_id" in missing:  # no row can be placed: the other problems wait for it
        problems.raise_if_any()
    if raw.empty:
        problems.add("holds no rows (a header only)")
        problems.raise_if_any()
    decimal = _number_format(raw, schema, delimiter, problems)
    if (delimiter, decimal) != (",", "."):
        (log or logging.getLogger("cardio.run")).info("%s: read as a CSV with %s", csv,
                                                      format_text(delimiter, decimal))
    out = _hierarchy(raw.copy(), problems)
    for col in schema.columns:
        if col.kind == "path" and col.name in missing:  # named once, as missing: no row names a file
            out[col.name] = None
            continue
        if col.kind == "path":
            out[col.name] = _paths(out, root, col, problems, allow_outside, log)
            continue
        if col.name not in out.columns:
            out[col.name] = np.nan if col.kind != "text" else None
            continue
        typed = _typed(out[col.name], col, problems, decimal)
        if col.required and not col.target:
            problems.rows(_blank(out[col.name]), "is empty", col.name)
        out[col.name] = typed
    _one_value_per_unit(out, schema, problems)
    _shared_files(out, root, schema, problems, log)
    if schema.response is not None:
        schema.response.apply(out, problems, schema.targets[0], log)
    for check in checks:
        check(out, problems)
    problems.raise_if_any()
    order = [*HIERARCHY, *(c for c in out.columns if c not in HIERARCHY)]
    return out[order].reset_index(drop=True)


def read_records(table: pd.DataFrame, problems: Problems, column: str, read: Callable[[Path, int], Any], *,
                 progress: Callable[..., Iterable] | None = None, desc: str = "records",
                 same: int = 3) -> dict[int, Any]:
    """Open every file of path column `column` with `read(path, row)`, a plugin's own reader (the one its run uses):
    what it returns, by row. Each CardioError it raises is a problem of that row's line, the file named by its path
    in the cohort folder, so a damaged record is listed with every other problem of the table. One problem that
    many files share (a lead none of them has) is listed for its first `same` rows, then once with the other lines.
    Rows whose file the reader already refused (absent, outside the folder) or that name none are not opened."""
    refused = problems.refused(column)
    root = Path(os.path.normpath(Path(problems.file).parent.absolute()))
    out: dict[int, Any] = {}
    found: dict[str, list[int]] = defaultdict(list)  # the message, its file left out -> lines
    shown_key = "\x00file\x00"
    rows = range(len(table))
    for i in (progress(rows, desc=desc, total=len(table)) if progress else rows):
        path = table[column].iloc[i]
        if path is None or i + 2 in refused or not os.path.isfile(path):
            continue
        try:
            out[i] = read(Path(path), i)
        except CardioError as e:
            shown = _shown(root, str(path))
            text = str(e).replace(str(path), shown)
            found[text.replace(shown, shown_key)].append(i + 2)
            if len(found[text.replace(shown, shown_key)]) <= same:
                problems.add(text, i + 2, column)
    for text, lines in found.items():
        if len(lines) > same:
            rest, what = lines[same:], text.replace(shown_key, "its file")
            problems.add(f"{len(rest)} more row(s) whose file gives the same problem ({what}): lines "
                         f"{', '.join(map(str, rest[:30]))}{' ...' if len(rest) > 30 else ''}", None, column)
    return out


def missingness(table: pd.DataFrame, targets: Iterable[str]) -> pd.DataFrame:
    """Per target: n present, n missing, the missing share, and patients with a value (cardio validate)."""
    rows = []
    for t in targets:
        present = table[t].notna() if t in table.columns else pd.Series(False, index=table.index)
        rows.append({"target": t, "n": int(present.sum()), "missing": int((~present).sum()),
                     "missing_share": float((~present).mean()) if len(table) else 0.0,
                     "patients": int(table.loc[present, "patient_id"].nunique())})
    return pd.DataFrame(rows, columns=["target", "n", "missing", "missing_share", "patients"])


def write_template(dest: str | Path, schema: Schema, plugin: str) -> list[Path]:
    """A cohort folder to fill in: the table with its header only, and a README describing every column."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise CardioError(f"{dest} already holds files; a cohort template is written into a new or empty folder")
    described = schema.describe()
    dest.mkdir(parents=True, exist_ok=True)
    table = dest / schema.table
    table.write_text(",".join(described["column"]) + "\n")
    rows = ["| column | kind | required | target | allowed | what it holds |", "|---|---|---|---|---|---|"]
    rows += [f"| `{r.column}` | {r.kind} | {'yes' if r.required else ''} | {'yes' if r.target else ''} | "
             f"{r.allowed} | {r.description} |" for r in described.itertuples()]
    paths = [c for c in schema.columns if c.kind == "path"]
    files = [f"- `{c.name}`: {c.description or 'a file'}; default `{c.default}`"
             f"{'{' + ','.join(c.suffixes) + '}' if c.suffixes else ''}" for c in paths]
    level = {"record": "each record (row)", "study": "each study (the records of one study_id together)",
             "patient": "each patient (all their records together)"}[schema.level]
    text = [f"# A {plugin} cohort", "",
            f"Fill in `{schema.table}`: one row per record. Then check it and run:", "",
            f"    cardio validate --plugin {plugin} --set cohort.dir={dest}",
            f"    cardio run --plugin {plugin} --set cohort.dir={dest}", "",
            "`cardio validate` lists every problem of the table at once (file, line, column). An empty target cell "
            "is a missing label: that record is left out of training and of that target's metrics.", "",
            f"Predictions are made for {level}; scores of several records are combined by their {schema.aggregate}. "
            "Splits keep every patient's records on one side.", "", "## Columns", "", *rows, ""]
    if files:
        text += ["## Files", "", "Paths are relative to this folder and must stay inside it "
                 "(`cohort.allow_outside_paths: true` allows others, each one logged).", "", *files, ""]
    readme = dest / "README.md"
    readme.write_text("\n".join(text))
    return [table, readme]
