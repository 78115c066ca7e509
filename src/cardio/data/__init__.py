"""The data of a study: Cohort, Features and Predictions and the patient-grouped splits the core makes of them
(here), and in submodules what reads and guards it:

    cohort.py      the one cohort reader (tables, paths, the label), its schema and `cardio new-cohort`
    checks.py      checks of a loaded cohort against the study's config, before any expensive stage
    leakage.py     guards against the label leaking into features, and the null control
    cache.py       the one cache (featurized cohorts, per-cohort analyses) keyed by content
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, cast

import numpy as np
from typing_extensions import TypeVar  # a TypeVar with a default (PEP 696): typing's has none before 3.13

if TYPE_CHECKING:  # pandas is imported where a table is built: `cardio --help` needs none of it
    import pandas as pd

ID_COLUMNS = ("record_id", "patient_id")
PREDICTION_COLUMNS = ("record_id", "patient_id", "model", "task", "kind", "y_true", "y_score")
#: What a plugin's section says of a cohort `cardio synthetic-crt` wrote (Cohort.planted_effects).
SYNTHETIC_CRT = ("Synthetic cohort, written by `cardio synthetic-crt` from its shared latent response model, not by "
                 "this plugin's synthetic settings: the Cohort part states what it planted.")
#: The type of a Cohort's or a Features' `stage`: the plugin's own frozen dataclass. A plugin names it where it makes
#: and takes one (`Cohort[Exclusions]`), so its hooks read the stage typed, with no runtime check; unnamed, Any.
Stage = TypeVar("Stage", default=Any)


#: Characters a name quoted in a message must not carry raw: C0 and C1 controls (a newline starts a forged log line,
#: ESC moves the cursor), the Unicode line separators, and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` with every control character escaped as Python writes it (\\n, \\x1b, \\u202e): the one escaping of
    messages, used by CardioError and the log's format, so that a file name, column or id a message quotes cannot
    start a line of its own or rewrite the terminal. Idempotent: escaped text has nothing left to escape."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


class CardioError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with code 2. Its text has every
    control character escaped (`printable`), whatever names it quotes."""

    def __str__(self) -> str:
        return printable(super().__str__())


class LogFormat(logging.Formatter):
    """cardio's log lines ("12:00:00 INFO message"), each message escaped by `printable`: a name it quotes cannot
    forge a line. A traceback logged with exc_info stays as written, below its line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(logging.makeLogRecord({**record.__dict__, "message": printable(record.message)}))


def confined_path(root: str | Path, value: str | Path, *, allow_outside: bool = False, what: str = "file",
                  log: logging.Logger | None = None, switch: str | None = "cohort.allow_outside_paths") -> Path:
    """A path named in a cohort file, resolved against the cohort's folder and kept inside it.

    `../` escapes and absolute paths are refused unless `allow_outside` (the config switch `switch`,
    which the user sets on purpose; None where a plugin has none); each outside path allowed is logged.
    """
    # Lexical normalization, not resolve(): a symlink the user placed inside the folder stays usable.
    root = Path(os.path.normpath(Path(root).absolute()))
    path = Path(os.path.normpath(root / Path(str(value))))  # an absolute value replaces root
    if path.is_relative_to(root):
        return path
    if not allow_outside:
        how = f"; set {switch}: true to read files elsewhere" if switch else ""
        raise CardioError(f"{what} {str(value)!r} lies outside the cohort folder {root}{how}")
    (log or logging.getLogger("cardio.run")).warning("reading %s outside the cohort folder: %s", what, path)
    return path


def target_mask(table: pd.DataFrame, targets) -> pd.DataFrame:
    """True where a target has a value (the mask that travels with the labels)."""
    import pandas as pd

    return pd.DataFrame({t: table[t].notna().to_numpy() for t in targets if t in table.columns}, index=table.index)


def _require_columns(table: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CardioError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


@dataclass
class ModelState:
    """A fitted model as a bundle holds it: named arrays (weights, scaler means, coefficients) and
    JSON-safe params (thresholds, selected features, architecture); never a pickled object."""

    tensors: dict[str, Any] = field(default_factory=dict)  # name -> torch.Tensor or np.ndarray
    params: dict = field(default_factory=dict)


@dataclass
class Cohort(Generic[Stage]):
    """One row per record (record_id, patient_id, site, labels, covariates); arrays load lazily."""

    table: pd.DataFrame
    loader: Callable[[str], Any] | None = None
    label: str = "label"
    root: Path | None = None
    # What travels from load to the plugin's later stages (sampling rate and leads, scans left out): the
    # plugin's own frozen dataclass, typed and documented there. The core carries it untouched, never reads it.
    stage: Stage = cast(Stage, None)
    # Columns that define the outcome or derive from it (the label's source, follow-up measures,
    # other tasks' labels): the core refuses them as covariates and permutes them with the label.
    outcomes: tuple[str, ...] = ()
    # The labels the models learn (the label first); NaN marks a missing one (the mask). Empty: the label alone.
    targets: tuple[str, ...] = ()
    # The level predictions are reported at (record | study | patient) and how record scores aggregate to it.
    level: str = "record"
    aggregate: str = "mean"
    # What the cohort is, set once where it is loaded (the core's study load, from cohort.dir): `synthetic` for the
    # plugin's own synthetic cohort (cohort.dir null) and for one `cardio synthetic-crt` wrote; `truth` is the
    # planted effects a synthetic-crt cohort states (its truth.json, one paragraph for the report's Cohort part),
    # None where the plugin's settings made the cohort (its report states them) or for a user's cohort.
    synthetic: bool = False
    truth: str | None = None

    def __post_init__(self) -> None:
        _require_columns(self.table, ID_COLUMNS, "cohort table")
        self.targets = tuple(dict.fromkeys([self.label, *self.targets])) if self.targets else (self.label,)
        _require_columns(self.table, [c for c in self.outcomes], "cohort table (its declared outcome columns)")
        self.outcomes = tuple(self.outcomes)
        dup = self.table["record_id"].duplicated()
        if dup.any():
            raise CardioError(f"cohort table has {int(dup.sum())} duplicated record_id value(s)")
        self.table = self.table.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.table)

    def array(self, record_id: str) -> Any:
        if self.loader is None:
            raise CardioError("this cohort has no array loader")
        return self.loader(record_id)

    def subset(self, index) -> "Cohort[Stage]":
        return replace(self, table=self.table.iloc[np.asarray(index)].copy())

    def planted_effects(self, own: Callable[[], str]) -> str:
        """What a plugin's report states of the effects planted in this cohort: `own()` (the plugin's statement of
        its own synthetic cohort, from its settings) where the plugin made it, a pointer to the Cohort part where
        `cardio synthetic-crt` wrote it (the plugin's settings did not make that cohort), "" for a user's cohort."""
        if not self.synthetic:
            return ""
        if self.truth is None:
            return own()
        return SYNTHETIC_CRT

    @property
    def mask(self) -> pd.DataFrame:
        """True where a target has a value: one boolean column per target present in the table."""
        return target_mask(self.table, self.targets)


@dataclass
class Features(Generic[Stage]):
    """What the model consumes: one row of `table` per sample and `x` aligned with those rows.

    A sample may be a record or a part of one (a beat, a clip); `patient_id` groups them so
    that the core's splits never put one patient on both sides of a fold.
    """

    table: pd.DataFrame
    x: Any = None  # an array (N, ...), a dict of aligned arrays, or a path to a cache
    label: str = "label"
    # What travels from featurize to train, predict, explain and evaluate (the polar grid, the input kind, the
    # variants): the plugin's own frozen dataclass, typed and documented there; the core never reads it.
    stage: Stage = cast(Stage, None)
    # The labels the models learn, NaN where missing (empty: the label alone); rows missing all are not trained on.
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_columns(self.table, ID_COLUMNS, "features table")
        self.table = self.table.reset_index(drop=True)
        self.targets = tuple(dict.fromkeys([self.label, *self.targets])) if self.targets else (self.label,)

    @property
    def mask(self) -> pd.DataFrame:
        """True where a target has a value: one boolean column per target present in the table."""
        return target_mask(self.table, self.targets)

    def trainable(self, index) -> np.ndarray:
        """The rows of `index` with at least one target present (all-missing rows serve label-free steps only)."""
        index = np.asarray(index, dtype=int)
        mask = self.mask
        if mask.shape[1] == 0:
            return index
        return index[mask.to_numpy().any(axis=1)[index]]

    def one_class(self, rows, target: str | None = None) -> bool:
        """Whether `rows` hold fewer than two classes of a binary target (the label unless named), among the rows
        that have it. A target is binary when its values in the table are 0/1; any other (a regression, a class
        index) is never one class."""
        target = target or self.label
        if target not in self.table.columns:
            return False
        known = self.table[target].dropna()
        if not len(known) or not known.isin((0, 1)).all():
            return False
        return self.table[target].iloc[np.asarray(rows, dtype=int)].dropna().nunique() < 2

    def check_classes(self, rows, fit: str, target: str | None = None) -> None:
        """Refuse training rows that hold one class of a binary target (the label unless named): one CardioError
        line naming the fit and the target. The core checks the label of every fit before cardio_train; a plugin
        that fits a model per task checks its other tasks with it."""
        target = target or self.label
        if not self.one_class(rows, target):
            return
        values = self.table[target].iloc[np.asarray(rows, dtype=int)].dropna()
        held = f", all {values.iloc[0]:g}" if len(values) else ""
        raise CardioError(f"fit {fit}: the training rows hold one class of {target!r} ({len(values)} with a "
                          f"value{held}); use fewer cv.folds or a cohort with both classes in every fold")

    def __len__(self) -> int:
        return len(self.table)

    @property
    def y(self) -> np.ndarray:
        return self.table[self.label].to_numpy()


@dataclass
class Predictions:
    """Long table: one row per record, model and task (kind is "binary" or "regression").

    An optional `threshold` column carries the operating point chosen on the training fold.
    """

    table: pd.DataFrame

    def __post_init__(self) -> None:
        _require_columns(self.table, PREDICTION_COLUMNS, "predictions")
        self.table = self.table.reset_index(drop=True)

    @classmethod
    def from_arrays(cls, record_id, patient_id, y_true, y_score, *, model: str = "model",
                    task: str = "response", kind: str = "binary", threshold: float | None = None,
                    **extra) -> "Predictions":
        import pandas as pd

        table = pd.DataFrame({
            "record_id": np.asarray(record_id).astype(str), "patient_id": np.asarray(patient_id).astype(str),
            "model": model, "task": task, "kind": kind,
            "y_true": np.asarray(y_true, dtype=float), "y_score": np.asarray(y_score, dtype=float), **extra,
        })
        if threshold is not None:
            table["threshold"] = float(threshold)
        return cls(table)

    @classmethod
    def concat(cls, parts) -> "Predictions":
        import pandas as pd

        return cls(pd.concat([p.table for p in parts], ignore_index=True))


#: The parts of a report, in the order a paper reads: summary, who was studied (Table 1), the headline performance,
#: comparisons, calibration and decision curves, explanations, then the appendix of methods and full tables.
PARTS = ("summary", "cohort", "performance", "comparison", "calibration", "explanation", "methods")


@dataclass
class Section:
    """A piece of the report that a plugin adds from cardio_explain or cardio_evaluate.

    `part` places it in the report (one of PARTS); None puts a cardio_evaluate section with the comparisons and a
    cardio_explain section with the explanations.
    """

    title: str
    text: str = ""
    figures: list[Path] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    estimates: list[dict] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)
    part: str | None = None

    def __post_init__(self) -> None:
        if self.part is not None and self.part not in PARTS:
            raise CardioError(f"section {self.title!r}: part {self.part!r} is not one of {', '.join(PARTS)}")


@dataclass
class Fold:
    """Integer positions into Features.table; val is empty when the protocol has none."""

    name: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    repeat: int = 0
    inner: list["Fold"] = field(default_factory=list)  # cv.inner_folds: folds of this fold's training patients


def _patients(table: pd.DataFrame, label: str | None, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per patient; a patient is positive when any of their records is, and -1 when unlabelled
    (the missing label is a stratum of its own, so unlabelled patients spread over the folds too)."""
    import pandas as pd

    cols = {c: "first" for c in extra if c in table.columns}
    if label is not None:
        cols[label] = "max"
    if not cols:
        return pd.DataFrame(index=pd.Index(sorted(table["patient_id"].unique()), name="patient_id"))
    pts = table.groupby("patient_id", sort=True).agg(cols)
    if label is not None and pts[label].isna().any():
        pts[label] = pts[label].fillna(-1)
    return pts


def _class_counts(pts: pd.DataFrame, strat: str) -> pd.Series:
    """Patients per class of the label, unlabelled patients left out."""
    return pts.loc[pts[strat] != -1, strat].value_counts()


def _rows(table: pd.DataFrame, patients) -> np.ndarray:
    """Rows of these patients, ids compared as text (cv.patients reads them as text)."""
    return np.flatnonzero(table["patient_id"].astype(str).isin({str(p) for p in patients}).to_numpy())


def _rows_of_folds(table: pd.DataFrame, pts: pd.Index, parts: list[np.ndarray]) -> list[np.ndarray]:
    """_rows of each part (positions into pts) at once: the ids are turned to text and matched once, not per fold
    (nested CV makes 20 splits of a cohort)."""
    import pandas as pd

    codes = pd.Index(pts.astype(str)).get_indexer(table["patient_id"].astype(str))
    part_of = np.full(len(pts) + 1, -1)
    for i, part in enumerate(parts):
        part_of[part] = i
    row_part = part_of[codes]  # code -1 (a row whose patient is not split) reads the last entry, -1
    return [np.flatnonzero(row_part == i) for i in range(len(parts))]


def _stratify_label(table: pd.DataFrame, label: str | None) -> str | None:
    """Stratify by the label when it is a binary column; regression or multitask cohorts are not."""
    if label is None or label not in table.columns:
        return None
    values = table[label].dropna().unique()
    return label if len(values) == 2 else None


def make_folds(table: pd.DataFrame, cv: dict, label: str | None, seed: int) -> list[Fold]:
    """The split of a study: kfold, holdout, external or predefined, always grouped by patient.

    With `cv.patients` (a CSV of patient_id and the label) kfold and holdout split those patients, not the
    table's own: runs of several modalities of one cohort get the same fold for each patient, even when a
    patient misses a modality. With `cv.inner_folds: k`, each fold also carries k inner folds over its
    training patients (`Fold.inner`), made the same way, for nested schemes (fusion, choosing a setting)."""
    _require_columns(table, ID_COLUMNS, "features table")
    strat = _stratify_label(table, label) if cv.get("stratify", True) else None
    universe = _universe(table, cv, label, strat)
    pts = universe if universe is not None else _patients(table, strat)
    outer = _outer_folds(table, pts, cv, strat, seed)
    k_in = int(cv.get("inner_folds") or 0)
    if k_in:
        for fold, train_pts in outer:
            inner_pts = train_pts if train_pts is not None else _patients(table.iloc[fold.train], strat)
            fold.inner = [f for f, _ in _kfold(table, inner_pts, k_in, strat, seed + fold.repeat,
                                               f"{fold.name}-inner", fold.repeat, what="cv.inner_folds",
                                               val=fold.val)]
    return [fold for fold, _ in outer]


def _kfold(table: pd.DataFrame, pts: pd.DataFrame, k: int, strat: str | None, seed: int, prefix: str,
           repeat: int, *, what: str = "cv.folds",
           val: np.ndarray | None = None) -> list[tuple[Fold, pd.DataFrame]]:
    """k patient-grouped folds of these patients (stratified by the label when it is binary), each with its
    training patients."""
    from sklearn.model_selection import KFold, StratifiedKFold  # lazily: `cardio plugins` stays fast

    of = "the cohort" if what == "cv.folds" else f"the training part of {prefix.removesuffix('-inner')}"
    if len(pts) < k:
        raise CardioError(f"{what}={k} but {of} has only {len(pts)} patients")
    if strat is not None and _class_counts(pts, strat).min() < k:
        raise CardioError(f"{what}={k} but the rarer class of {of} has only "
                          f"{int(_class_counts(pts, strat).min())} patients; lower {what}")
    splitter = (StratifiedKFold if strat else KFold)(n_splits=k, shuffle=True, random_state=seed)
    y = pts[strat].to_numpy() if strat else np.zeros(len(pts))
    empty = np.array([], dtype=int) if val is None else val
    tests = [te for _, te in splitter.split(np.zeros(len(pts)), y)]
    rows = _rows_of_folds(table, pts.index, tests)
    every = np.sort(np.concatenate(rows))
    return [(Fold(f"{prefix}{f}", np.setdiff1d(every, rows[f]), rows[f], empty, repeat=repeat),
             pts.iloc[np.setdiff1d(np.arange(len(pts)), te)]) for f, te in enumerate(tests)]


def _outer_folds(table: pd.DataFrame, pts: pd.DataFrame, cv: dict, strat: str | None,
                 seed: int) -> list[tuple[Fold, pd.DataFrame | None]]:
    """Each fold with its training patients (None where the fold is made from rows, not patients)."""
    import pandas as pd

    method = cv["method"]
    if method == "kfold":
        k, repeats = int(cv["folds"]), int(cv.get("repeats", 1))
        return [pair for r in range(repeats)
                for pair in _kfold(table, pts, k, strat, seed + r, f"r{r}f" if repeats > 1 else "fold", r)]
    if method == "holdout":
        ratios = np.asarray(cv["ratios"], dtype=float)
        if ratios.shape != (3,) or (ratios < 0).any() or ratios[0] <= 0 or ratios[2] <= 0:
            raise CardioError(f"cv.ratios must be three numbers train:val:test, got {cv['ratios']}")
        ratios = ratios / ratios.sum()
        y = pts[strat] if strat else None
        if y is not None and (y == -1).sum() == 1:  # one unlabelled patient cannot be a stratum of its own
            y = y.replace(-1, 0)
        rest, test = split_ids(pts.index, ratios[2], y, seed)
        val = pd.Index([])
        if ratios[1] > 0:
            y_rest = y.loc[rest] if y is not None else None
            if y_rest is not None and y_rest.value_counts().min() < 2:
                y_rest = None
            rest, val = split_ids(rest, ratios[1] / (ratios[0] + ratios[1]), y_rest, seed)
        return [(Fold("holdout", _rows(table, rest), _rows(table, test), _rows(table, val)), pts.loc[rest])]
    if method == "external":
        return [(_external_fold(table, cv), None)]
    if method == "predefined":
        return [(_predefined_fold(table, cv), None)]
    raise CardioError(f"unknown cv.method {method!r}; use kfold, holdout, external or predefined")


def _external_fold(table: pd.DataFrame, cv: dict) -> Fold:
    _require_columns(table, ["site"], "features table (cv.method=external)")
    test_sites = {str(s) for s in cv.get("test_sites") or []}
    sites = set(table["site"].astype(str))
    if not test_sites or not test_sites <= sites:
        raise CardioError(f"cv.test_sites={sorted(test_sites)} must name sites of the cohort: {sorted(sites)}")
    is_test = table["site"].astype(str).isin(test_sites).to_numpy()
    both = set(table.loc[is_test, "patient_id"]) & set(table.loc[~is_test, "patient_id"])
    if both:
        raise CardioError(f"{len(both)} patient(s) have records at both training and test sites")
    return Fold("external", np.flatnonzero(~is_test), np.flatnonzero(is_test))


def _predefined_fold(table: pd.DataFrame, cv: dict) -> Fold:
    col = cv.get("column", "split")
    _require_columns(table, [col], f"features table (cv.method=predefined, cv.column={col})")
    values = table[col].astype(str).str.lower()
    unknown = set(values) - {"train", "val", "test"}
    if unknown:
        raise CardioError(f"column {col!r} may hold only train/val/test, found {sorted(unknown)}")
    per_patient = table.assign(_s=values).groupby("patient_id")["_s"].nunique()
    if (per_patient > 1).any():
        raise CardioError(f"{int((per_patient > 1).sum())} patient(s) appear in more than one split of {col!r}")
    return Fold("predefined", np.flatnonzero(values == "train"), np.flatnonzero(values == "test"),
                np.flatnonzero(values == "val"))


def _universe(table: pd.DataFrame, cv: dict, label: str | None, strat: str | None) -> pd.DataFrame | None:
    """cv.patients read as the patients to split (one row each, the label per patient, -1 unlabelled)."""
    if not cv.get("patients") or cv["method"] not in ("kfold", "holdout"):
        return None
    import pandas as pd

    path = Path(str(cv["patients"])).expanduser()
    try:
        given = pd.read_csv(path, dtype={"patient_id": str})
    except (OSError, ValueError) as e:
        raise CardioError(f"cv.patients: {path} cannot be read ({type(e).__name__})") from None
    if "patient_id" not in given.columns:
        raise CardioError(f"cv.patients: {path} has no patient_id column")
    twice = given["patient_id"].duplicated(keep=False).to_numpy().nonzero()[0]
    if len(twice):  # by line: an error names no patient id
        raise CardioError(f"cv.patients: {path} lists one patient twice (lines {twice[0] + 2} and {twice[1] + 2})")
    ours = _patients(table, strat)
    ours.index = ours.index.astype(str)
    absent = sorted(set(ours.index) - set(given["patient_id"]))
    if absent:
        raise CardioError(f"cv.patients: {len(absent)} patient(s) of the cohort are not in {path} "
                          f"(first {absent[0]!r})")
    pts = given.set_index("patient_id").sort_index()
    if strat is None:
        return pts[[]]
    if strat not in pts.columns:
        raise CardioError(f"cv.patients: {path} has no {strat!r} column, which the split stratifies by")
    pts = pts[[strat]].fillna(-1)
    labelled = ours.index[ours[strat] != -1]
    differ = [p for p in labelled if float(pts.at[p, strat]) != float(ours.at[p, strat])]
    if differ:
        raise CardioError(f"cv.patients: {len(differ)} patient(s) have another {strat} in {path} than in the "
                          f"cohort (first {differ[0]!r})")
    return pts


def split_ids(ids: pd.Index, test_size: float, stratify: pd.Series | None,
              seed: int) -> tuple[pd.Index, pd.Index]:
    """sklearn's train_test_split of these ids (stratified when given), as (train, test) ids.

    sklearn gets positions and numpy labels, never the pandas Index: it indexes an Index with `[key, ...]`,
    which an arrow-backed one (pandas 3 with pyarrow installed) refuses. The split depends only on the
    count and the labels, so it is the same as sklearn's on the ids themselves."""
    from sklearn.model_selection import train_test_split  # lazily: `cardio plugins` stays fast

    strata = None if stratify is None else stratify.to_numpy()
    train, test = train_test_split(np.arange(len(ids)), test_size=test_size, stratify=strata, random_state=seed)
    return ids[train], ids[test]


def inner_split(table: pd.DataFrame, index, fraction: float, seed: int, label: str | None = None):
    """Split training rows into (fit, validation) rows by patient, e.g. for early stopping."""
    index = np.asarray(index)
    sub = table.iloc[index]
    strat = _stratify_label(sub, label)
    pts = _patients(sub, strat)
    y = pts[strat] if strat is not None and pts[strat].value_counts().min() >= 2 else None  # -1: unlabelled
    n = len(pts)  # scikit-learn's part sizes: a part smaller than the strata is refused there, so split unstratified
    if y is not None and min(math.ceil(fraction * n), math.floor((1 - fraction) * n)) < y.nunique():
        y = None
    fit_p, val_p = split_ids(pts.index, fraction, y, seed)
    in_val = sub["patient_id"].isin(set(val_p)).to_numpy()
    return index[~in_val], index[in_val]
