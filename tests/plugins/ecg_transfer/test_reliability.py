"""Bad ECG inputs through the real CLI: one error line naming the file or key, exit 2, nothing written before changed.

Every case fails before any pretraining on MIT-BIH: the runs set ecg_transfer.pretrain.enabled=false and
finetune.transfer=false, and the few cases that need the prepare stage point data.mitdb_dir at a
folder of synthetic records (or at none), so MIT-BIH DS2 is never predicted here.
"""
from __future__ import annotations

import functools
import json
import pickle
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardio import CardioError
from cardio_ecg_transfer import cohort_table, mitdb, records
from cardio_ecg_transfer.synthetic import write_synthetic_cohort
from cardio_testing.harness import check_refused, checksums, invoke

# Small and fast, and never a look at MIT-BIH: no pretraining, no transfer model, no ResNet at all; no figures,
# explanation or final model either (the runs that finish are read for their log only).
FAST = ("--set", "cv.folds=2", "--set", "ecg_transfer.pretrain.enabled=false",
        "--set", "ecg_transfer.finetune.transfer=false", "--set", "stats.reference=null",
        "--set", "ecg_transfer.finetune.scratch=false",
        "--set", "ecg_transfer.baselines.svm.enabled=false", "--set", "train.epochs=1",
        "--set", "ecg_transfer.finetune.epochs=1", "--set", "report.figures=false", "--set", "explain=false",
        "--set", "final_model=false")


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ecg_cohort")
    write_synthetic_cohort(d, n_patients=12, seed=5, fs=360, seconds=4, leads=("II", "V1"))
    return d


def _run(cohort: Path, out: Path, *sets: str):
    return invoke("run", "--plugin", "ecg_transfer", "--out", str(out), "--set", f"cohort.dir={cohort}",
                  "--set", f"cache_dir={out.parent / 'cache'}", *FAST, *sets)


# ------------------------------------------------------------------ ways to damage a cohort

# The outcome is derived from lvesv_reduction_pct where the label is empty and checked where both are given (issue
# 56): the cases of a missing, empty or one-class label empty the reduction too, so that the label is what they test.
def _edit_csv(d: Path, cells: dict | None = None, drop: tuple = (), add: dict | None = None) -> None:
    table = pd.read_csv(d / "cohort.csv", dtype=str, keep_default_na=False)
    for (row, col), value in (cells or {}).items():
        table.loc[row, col] = value
    for col, value in (add or {}).items():
        table[col] = value
    table.drop(columns=list(drop)).to_csv(d / "cohort.csv", index=False)


def _record_field(d: Path, index: int, value: str, record: str = "crt002") -> None:
    """Set field `index` of a header's record line (0 name, 1 signals, 2 rate, 3 samples)."""
    hea = d / "ecg" / f"{record}.hea"
    first, *rest = hea.read_text().splitlines()
    parts = first.split()
    parts[index] = value
    hea.write_text("\n".join([" ".join(parts), *rest]) + "\n")


def _header_lines(d: Path, keep, record: str = "crt002") -> None:
    hea = d / "ecg" / f"{record}.hea"
    hea.write_text("\n".join(keep(hea.read_text().splitlines())) + "\n")


def _dat(d: Path, content, record: str = "crt002") -> None:
    dat = d / "ecg" / f"{record}.dat"
    dat.write_bytes(content(dat.read_bytes()))


def _other_ecg(d: Path, name: str, write, fs: str | None = "360") -> None:
    """Row 1's ECG becomes ecg/<name>, written by write(path); its rate goes in an fs column."""
    write(d / "ecg" / name)
    fs_col = [""] * len(pd.read_csv(d / "cohort.csv"))
    if fs is not None:
        fs_col[1] = fs
    _edit_csv(d, cells={(1, "ecg"): f"ecg/{name}"}, add={"fs": fs_col})


def _csv_ecg(values, fs: str | None = "360", header: str = "II"):
    return lambda d: _other_ecg(d, "x.csv", lambda p: pd.DataFrame({header: values}).to_csv(p, index=False), fs)


def _raw_ecg(name: str, content: bytes, fs: str | None = "360"):
    return lambda d: _other_ecg(d, name, lambda p: p.write_bytes(content), fs)


def _npy_ecg(array):
    return lambda d: _other_ecg(d, "x.npy", lambda p: np.save(p, array, allow_pickle=True))


def _short_ecg(d: Path) -> None:
    """A tenth of a second of ECG: readable, but no beat to cut."""
    x = np.sin(np.arange(36) / 5)[:, None]
    wfdb.wrsamp("crt002", fs=360, units=["mV"], sig_name=["II"], p_signal=x, fmt=["16"], write_dir=str(d / "ecg"))


def _ecg_like(seconds: float, fs: float) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return (np.exp(-0.5 * ((t % 0.8 - 0.4) / 0.012) ** 2) + 0.05 * np.sin(2 * np.pi * 0.3 * t))[:, None]


def _fake_mitdb(d: Path, damage) -> None:
    """tmp/mitdb: synthetic records named like MIT-BIH's DS1 records 101 and 106, not MIT-BIH itself;
    `damage` spoils the annotations of 101, which pretraining reads (as a fitting or a validation record)."""
    root = d.parent / "mitdb"
    root.mkdir()
    for name in ("101", "106"):
        wfdb.wrsamp(name, fs=360, units=["mV"], sig_name=["MLII"], p_signal=_ecg_like(10, 360), fmt=["212"],
                    write_dir=str(root))
        wfdb.wrann(name, "atr", sample=np.arange(144, 3600, 288), symbol=["N"] * 12, write_dir=str(root))
    damage(root / "101.atr")


def _annotation_past_the_end(atr: Path) -> None:
    wfdb.wrann("101", "atr", sample=np.array([144, 432, 99_999]), symbol=["N"] * 3, write_dir=str(atr.parent))


def _weights(d: Path, payload) -> None:
    import torch

    if isinstance(payload, bytes):
        (d.parent / "weights.pt").write_bytes(payload)
    else:
        torch.save(payload, d.parent / "weights.pt")


def _cohort_csv_header_only(d: Path) -> None:
    (d / "cohort.csv").write_text((d / "cohort.csv").read_text().splitlines()[0] + "\n")


def _outside_file(d: Path) -> None:
    shutil.copytree(d / "ecg", d.parent / "elsewhere")


def _path_to_parent(d: Path) -> None:
    _outside_file(d)
    _edit_csv(d, cells={(0, "ecg"): "../elsewhere/crt001"})


def _dat_named_outside(d: Path) -> None:
    _outside_file(d)
    _header_lines(d, lambda L: [L[0], *[ln.replace("crt002.dat", "../../elsewhere/crt002.dat") for ln in L[1:]]])


def _dat_symlink_outside(d: Path) -> None:
    _outside_file(d)
    (d / "ecg" / "crt002.dat").unlink()
    (d / "ecg" / "crt002.dat").symlink_to(d.parent / "elsewhere" / "crt002.dat")


PRETRAIN_ON_FAKE_MITDB = ("--set", "ecg_transfer.pretrain.enabled=true", "--set", "ecg_transfer.finetune.transfer=true",
                          "--set", "ecg_transfer.pretrain.records=[101, 106]",
                          "--set", "ecg_transfer.mitdb_dir={tmp}/mitdb")
WEIGHTS = ("--set", "ecg_transfer.pretrain.enabled=true", "--set", "ecg_transfer.finetune.transfer=true",
           "--set", "ecg_transfer.pretrain.weights_file={tmp}/weights.pt")

# (id, damage(cohort folder) or None, extra --set arguments ({tmp} is the case's folder), what the line names)
CASES = [
    # paths in the cohort table: kept inside the cohort folder
    ("path-parent", _path_to_parent, [],
     "outside the cohort folder"),
    ("path-absolute", lambda d: _edit_csv(d, cells={(0, "ecg"): "/etc/hostname"}), [], "outside the cohort folder"),
    ("file-absent", lambda d: _edit_csv(d, cells={(3, "ecg"): "ecg/none"}), [],
     "line 5, column 'ecg': names ecg/none{.hea,.csv,.npy,.dcm,.xml,.edf}, which is not a file"),
    ("ecg-is-a-folder", lambda d: _edit_csv(d, cells={(3, "ecg"): "ecg"}), [], "line 5, column 'ecg': names ecg{"),
    # an empty cell, or no ecg column, names the record_id: not a file in the cohort folder's top level
    ("ecg-cell-empty", lambda d: _edit_csv(d, cells={(2, "ecg"): " "}), [], "line 4, column 'ecg': names crt003{"),
    ("ecg-column-missing", lambda d: _edit_csv(d, drop=("ecg",)), [],
     "line 2, column 'ecg': names crt001{.hea,.csv,.npy,.dcm,.xml,.edf}, which is not a file in "),
    # WFDB: a record is its header and the signal files the header names, inside the cohort folder
    ("dat-named-outside", _dat_named_outside, [],
     "WFDB record crt002 names the signal file '../../elsewhere/crt002.dat', outside the cohort folder"),
    ("dat-symlink-outside", _dat_symlink_outside, [],
     "line 3, column 'ecg': WFDB record crt002 names the signal file 'crt002.dat', outside the cohort folder"),
    ("ecg-unsupported-suffix", _raw_ecg("x.txt", b"1\n2\n"), [], "x.txt"),
    # the cohort table itself
    ("cohort-csv-missing", lambda d: (d / "cohort.csv").unlink(), [], "cohort.csv"),
    ("cohort-csv-empty", lambda d: (d / "cohort.csv").write_text(""), [], "cohort.csv"),
    ("cohort-csv-binary", lambda d: (d / "cohort.csv").write_bytes(b"\xff\xfe\x00\x00garbage"), [], "cohort.csv"),
    ("cohort-csv-header-only", _cohort_csv_header_only, [], "cohort.csv"),
    ("patient-id-missing", lambda d: _edit_csv(d, drop=("patient_id",)), [], "lacks column"),
    # the hierarchy patient -> study -> record (no record_id column is no problem: the patient names the record)
    ("study-of-two-patients", lambda d: _edit_csv(d, add={"study_id": ["s1", "s1", *(f"s{i}" for i in range(2, 12))]}),
     [], "line 2, column 'study_id': one study_id belongs to several patient_id values"),
    ("record-id-empty", lambda d: _edit_csv(d, cells={(4, "record_id"): ""}), [],
     "line 6, column 'record_id': is empty"),
    ("record-id-duplicated", lambda d: _edit_csv(d, cells={(1, "record_id"): "crt001"}), [],
     "line 2, column 'record_id': record_id appears on more than one row (each row is one record)"),
    ("patient-id-empty", lambda d: _edit_csv(d, cells={(3, "patient_id"): " "}), [],
     "line 5, column 'patient_id': is empty"),
    # the outcome: 0 or 1 (yes/no), both present; an empty cell is a missing label (masked), not a problem
    # without the outcome column the cohort loads as unlabelled (cardio predict takes it); cardio run refuses it
    ("label-missing", lambda d: _edit_csv(d, drop=("responder", "lvesv_reduction_pct", "lvesv_followup")), [],
     "target column(s) ['responder'] hold no value at all"),
    ("label-0-1-2", lambda d: _edit_csv(d, cells={(0, "responder"): "2"}), [],
     "line 2, column 'responder': must be 0/1 (or yes/no), found '2'"),
    ("label-half", lambda d: _edit_csv(d, cells={(0, "responder"): "0.5"}), [], "found '0.5'"),
    ("label-text", lambda d: _edit_csv(d, cells={(0, "responder"): "improved"}), [], "found 'improved'"),
    ("label-all-empty", lambda d: _edit_csv(d, add={"responder": "", "lvesv_reduction_pct": "", "lvesv_followup": ""}),
     [],
     "hold no value at all"),
    ("label-one-class", lambda d: _edit_csv(d, add={"responder": "1", "lvesv_reduction_pct": "", "lvesv_followup": ""}),
     [],
     "'responder' is constant"),
    ("label-contradicts-the-rule", lambda d: _edit_csv(d, cells={(0, "responder"): "1", (0, "lvesv_followup"): "",
                                                                 (0, "lvesv_reduction_pct"): "3.0"}), [],
     "column 'responder': 1 of 12 row(s) contradict the papers' rule (LVESV reduction >= 15% at 6 ± 1 months): "
     "line 2 (1 at 3.0%)"),
    ("label-differs-within-a-patient", lambda d: _edit_csv(d, cells={(1, "patient_id"): "pt001",
                                                                     (0, "responder"): "1", (1, "responder"): "0"}),
     [], "line 3, column 'responder': 0 here, 1 on line 2 of the same patient"),
    # covariates the schema declares: numbers and 0/1, every bad cell a problem of the table
    ("covariate-qrs-text", lambda d: _edit_csv(d, cells={(2, "qrs_ms"): "abc"}), [],
     "line 4, column 'qrs_ms': must be a finite number, found 'abc'"),
    ("covariate-lvef-over-100", lambda d: _edit_csv(d, cells={(0, "lvef"): "135"}), [],
     "line 2, column 'lvef': must be 0 to 100, found '135'"),
    ("covariate-lbbb-text", lambda d: _edit_csv(d, cells={(3, "lbbb"): "maybe"}), [],
     "line 5, column 'lbbb': must be 0/1 (or yes/no), found 'maybe'"),
    ("covariate-named-in-config-text", lambda d: _edit_csv(d, add={"nyha": "III"}),
     ["--set", "ecg_transfer.baselines.covariates=[qrs_ms, nyha]"],
     "must be a finite number, found 'III'; write the number alone (no unit, no text), or leave the cell empty "
     "where it is unknown (and 10 more problem(s)"),  # 12 rows: 10 by line, then a count
    ("problems-listed-at-once", lambda d: _edit_csv(d, cells={(2, "qrs_ms"): "abc", (4, "ecg"): "ecg/none",
                                                             (0, "responder"): "2"}), [], "(and 2 more problem(s)"),
    ("covariate-is-outcome", None, ["--set", "ecg_transfer.baselines.covariates=[qrs_ms, lvesv_reduction_pct]"],
     "baselines.covariates names 'lvesv_reduction_pct'"),
    # WFDB headers
    ("fs-1e9", lambda d: _record_field(d, 2, "1000000000"), [], "crt002.hea"),
    ("fs-50", lambda d: _record_field(d, 2, "50"), [], "below the 100 Hz"),
    ("fs-text", lambda d: _record_field(d, 2, "fast"), [], "crt002.hea"),
    ("fs-negative", lambda d: _record_field(d, 2, "-360"), [], "crt002.hea: sampling rate '-360'"),
    ("fs-nan", lambda d: _record_field(d, 2, "nan"), [], "crt002.hea: sampling rate 'nan'"),
    ("signals-99999999999", lambda d: _record_field(d, 1, "99999999999"), [], "declares 99999999999 signal(s)"),
    ("skew-99999999999", lambda d: _header_lines(d, lambda L: [L[0], *[ln.replace(" 16 ", " 16:99999999999 ")
                                                                     for ln in L[1:]]]), [], "crt002.hea: a skew"),
    ("signal-line-missing", lambda d: _header_lines(d, lambda lines: lines[:2]), [], "crt002.hea"),
    ("multi-segment", lambda d: _header_lines(d, lambda lines: ["crt002/2 2 360 1440", "a 720", "b 720"]), [],
     "crt002.hea: a multi-segment"),
    ("hea-garbage", lambda d: (d / "ecg" / "crt005.hea").write_text("\x00\x01 not a header\n"), [], "crt005"),
    ("hea-empty", lambda d: (d / "ecg" / "crt005.hea").write_text(""), [], "crt005"),
    ("hea-comments-only", lambda d: (d / "ecg" / "crt005.hea").write_text("# nothing else\n"), [],
     "crt005.hea: not a WFDB header"),
    ("fmt-unknown", lambda d: _header_lines(d, lambda L: [L[0], *[ln.replace(" 16 ", " 999 ") for ln in L[1:]]]),
     [], "crt002"),
    # WFDB signal files
    ("dat-truncated", lambda d: _dat(d, lambda b: b[:300], "crt004"), [], "truncated"),
    ("dat-empty", lambda d: _dat(d, lambda b: b""), [], "crt002.dat: truncated"),
    ("dat-missing", lambda d: (d / "ecg" / "crt002.dat").unlink(), [], "crt002.dat"),
    ("dat-all-nan", lambda d: _dat(d, lambda b: b"\x00\x80" * (len(b) // 2)), [], "crt002.hea: lead II holds no"),
    ("ecg-too-short", _short_ecg, [], "crt002.hea: lead II holds 0.10 s of signal"),
    # CSV and NumPy ECGs
    ("csv-ecg-text", _csv_ecg(["0.1", "abc", "0.3"] * 400), [], "x.csv"),
    ("csv-ecg-all-nan", _csv_ecg([np.nan] * 1440), [], "x.csv: lead II holds no finite sample"),
    ("csv-ecg-mostly-nan", _csv_ecg([np.nan, np.nan, 0.5] * 480), [], "x.csv: lead II is mostly missing"),
    ("csv-ecg-flat", _csv_ecg([0.25] * 1440), [], "x.csv: lead II is a flat line"),
    ("csv-ecg-1e300", _csv_ecg(list(_ecg_like(4, 360)[:, 0] * 1e300)), [], "x.csv: lead II holds values beyond"),
    ("csv-ecg-header-only", _raw_ecg("x.csv", b"II\n"), [], "x.csv"),
    ("csv-ecg-binary", _raw_ecg("x.csv", b"\xff\xfe\x00\x01garbage\x00"), [], "x.csv"),
    ("csv-ecg-no-rate", _csv_ecg(list(_ecg_like(4, 360)[:, 0]), fs=None), [],
     "line 3, column 'fs': x.csv is a .csv ECG: its sampling rate (Hz) goes in this column"),
    ("csv-ecg-rate-text", _csv_ecg(list(_ecg_like(4, 360)[:, 0]), fs="fast"), [],
     "line 3, column 'fs': must be a finite number, found 'fast'"),
    ("csv-ecg-rate-1e9", _csv_ecg(list(_ecg_like(4, 360)[:, 0]), fs="1e9"), [],
     "line 3, column 'fs': must be 100 to 20000, found '1e9'"),
    ("csv-ecg-no-such-lead", _csv_ecg(list(_ecg_like(4, 360)[:, 0]), header="V5"), ["--set", "ecg_transfer.lead=II"],
     "x.csv: no lead named 'II'; the file has ['V5']"),
    ("npy-pickled", _npy_ecg(np.array([{"a": 1}], dtype=object)), [], "x.npy"),
    ("npy-3d", _npy_ecg(np.zeros((3, 3, 3))), [], "x.npy"),
    ("npy-garbage", _raw_ecg("x.npy", b"garbage"), [], "x.npy"),
    # data settings
    ("lead-unknown", None, ["--set", "ecg_transfer.lead=V7"], "no lead named 'V7'; the file has ['II', 'V1']"),
    ("lead-index-out-of-range", None, ["--set", "ecg_transfer.lead=5"], "lead index 5 out of range"),
    ("lead-negative", None, ["--set", "ecg_transfer.lead=-1"], "ecg_transfer.lead"),
    ("lead-true", None, ["--set", "ecg_transfer.lead=true"], "ecg_transfer.lead"),
    ("lead-list", None, ["--set", "ecg_transfer.lead=[1]"], "ecg_transfer.lead"),
    ("data-fs-0", None, ["--set", "ecg_transfer.fs=0"], "ecg_transfer.fs"),
    ("data-fs-huge", None, ["--set", "ecg_transfer.fs=1000000000"], "ecg_transfer.fs"),
    # keys of earlier versions: one line naming the new key
    ("old-key-cohort-dir", None, ["--set", "data.cohort_dir={tmp}/cohort"],
     "data.cohort_dir (--set) has moved: use cohort.dir"),
    ("old-key-lead", None, ["--set", "data.lead=V1"], "data.lead (--set) has moved: use ecg_transfer.lead"),
    ("old-key-section", None, ["--set", "finetune.epochs=2"], "use ecg_transfer.finetune.epochs"),
    # MIT-BIH for pretraining (a folder of synthetic records, never MIT-BIH itself), and weights files
    ("mitdb-missing", None, ["--set", "ecg_transfer.pretrain.enabled=true",
                             "--set", "ecg_transfer.finetune.transfer=true",
                             "--set", "ecg_transfer.mitdb_dir={tmp}/nowhere"], "nowhere"),
    ("mitdb-annotations-truncated", lambda d: _fake_mitdb(d, lambda atr: atr.write_bytes(atr.read_bytes()[:7])),
     PRETRAIN_ON_FAKE_MITDB, "101.atr"),
    ("mitdb-annotations-garbage", lambda d: _fake_mitdb(d, lambda atr: atr.write_bytes(b"\xff" * 40)),
     PRETRAIN_ON_FAKE_MITDB, "101.atr"),
    # a copy that is not MIT-BIH's published bytes is refused by its SHA-256 before it is parsed (issue 55)
    ("mitdb-annotation-past-the-end", lambda d: _fake_mitdb(d, _annotation_past_the_end), PRETRAIN_ON_FAKE_MITDB,
     "MIT-BIH file(s) differ from the published ones (SHA-256): 101.hea, 101.dat, 101.atr"),
    ("weights-missing", None, WEIGHTS, "weights.pt"),
    ("weights-pickled", lambda d: _weights(d, pickle.dumps({"arch": "resnet18", "state_dict": Fraction(1, 3)})),
     WEIGHTS, "weights.pt is not a readable cardio checkpoint"),
    ("weights-garbage", lambda d: _weights(d, b"garbage" * 10), WEIGHTS, "weights.pt is not a readable"),
    ("weights-other-arch", lambda d: _weights(d, {"arch": "resnet50", "state_dict": {}}), WEIGHTS,
     "weights.pt holds resnet50 weights"),
]


@pytest.mark.parametrize("case_id,damage,sets,names", CASES, ids=[c[0] for c in CASES])
def test_bad_ecg_input_is_one_line_and_changes_nothing(good_cohort, tmp_path, case_id, damage, sets, names):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    if damage is not None:
        damage(d)
    before = checksums(tmp_path)  # the cohort, and the MIT-BIH folder or weights file of the case
    result = _run(d, tmp_path / "run", *(s.replace("{tmp}", str(tmp_path)) for s in sets))
    check_refused(result, names)
    after = checksums(tmp_path)
    assert {f: after.get(f) for f in before} == before, "a refused run changed files that were already there"


def test_corpus_is_large():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


# ------------------------------------------------------------------ paths outside the cohort folder

def test_outside_paths_refused_by_default_accepted_and_logged_with_the_switch(good_cohort, tmp_path):
    shutil.copytree(good_cohort / "ecg", tmp_path / "elsewhere")
    relative, absolute = "../elsewhere/crt001", str(tmp_path / "elsewhere" / "crt002")
    cohorts = {}
    for name, cells in {"relative": {(0, "ecg"): relative}, "absolute": {(1, "ecg"): absolute},
                        "both": {(0, "ecg"): relative, (1, "ecg"): absolute}}.items():
        cohorts[name] = shutil.copytree(good_cohort, tmp_path / name)
        _edit_csv(cohorts[name], cells=cells)
    before = checksums(tmp_path)

    switch = "set cohort.allow_outside_paths: true to allow it"
    check_refused(_run(cohorts["relative"], tmp_path / "run-relative"),
                  f"line 2, column 'ecg': names {relative!r}, outside the cohort folder; {switch}")
    check_refused(_run(cohorts["absolute"], tmp_path / "run-absolute"),
                  f"line 3, column 'ecg': names {absolute!r}, outside the cohort folder; {switch}")
    result = _run(cohorts["both"], tmp_path / "run", "--set", "cohort.allow_outside_paths=true")
    assert result.exit_code == 0, result.stderr[-2000:]
    log = (tmp_path / "run" / "run.log").read_text()
    for path in (tmp_path / "elsewhere" / "crt001.hea", f"{absolute}.hea"):  # a WFDB record: its header
        assert f"WARNING reading a file outside the cohort folder: {path}\n" in log
        assert f"outside the cohort folder: {path}" in result.stderr
    assert log.count("outside the cohort folder") == 2
    after = checksums(tmp_path)
    assert {f: after.get(f) for f in before} == before


# ------------------------------------------------------------------ data.lead: a name or a 0-based index

def test_lead_by_index_or_name_end_to_end(good_cohort, tmp_path):
    """`--set ecg_transfer.lead=1` and `--set ecg_transfer.lead=V1` pass the config check, run the study and read
    lead V1; the default (null) reads lead II. (The bad leads are cases of the corpus above.)"""
    from cardio_testing.harness import plugin_config

    logs = {}
    for value in ("1", "V1"):
        out = tmp_path / f"lead-{value}"
        result = _run(good_cohort, out, "--set", f"ecg_transfer.lead={value}")
        assert result.exit_code == 0, result.stderr[-2000:]
        logs[value] = [ln.split(" ", 1)[1] for ln in (out / "run.log").read_text().splitlines() if "featurize:" in ln]
    assert logs["1"] == logs["V1"] and len(logs["1"]) == 1

    def signals(*sets):
        lead = plugin_config("ecg_transfer", sets)["ecg_transfer"]["lead"]
        return cohort_table.load_cohort(good_cohort, fs=360, lead=lead).signals

    v1, ii = signals("ecg_transfer.lead=V1"), signals()
    for got in (signals("ecg_transfer.lead=1"), v1):
        assert all(np.array_equal(got[k], v1[k]) for k in v1)
    assert all(np.array_equal(ii[k], records.read_wfdb(good_cohort / "ecg" / k, lead="II").signal) for k in ii)
    assert not any(np.array_equal(ii[k], v1[k]) for k in ii)


def test_lead_by_index_on_the_synthetic_cohort_takes_the_standard_order(tmp_path):
    from cardio_ecg_transfer import cohort_ecg
    from cardio_testing.harness import cpu_context, plugin_config

    cfg = plugin_config("ecg_transfer", ["ecg_transfer.synthetic.n_patients=4", "ecg_transfer.synthetic.seconds=3",
                                         "ecg_transfer.lead=6"])
    ctx = cpu_context(tmp_path)
    source, synthetic = cohort_ecg.cohort_source(cfg, ctx)
    header = wfdb.rdheader(str(next((source / "ecg").glob("*.hea")).with_suffix("")))
    assert synthetic and header.sig_name[6] == "V1" and len(header.sig_name) == 7
    with pytest.raises(CardioError, match="ecg_transfer.lead = 12: the synthetic cohort has the 12 standard leads"):
        cohort_ecg.cohort_source(plugin_config("ecg_transfer", ["ecg_transfer.lead=12"]), ctx)


# ------------------------------------------------------------------ MIT-BIH annotations (a DS1 record)

def test_damaged_annotations_of_a_mitdb_record_are_refused(mitdb_dir, tmp_path):
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb_dir / f"101.{ext}", tmp_path / f"101.{ext}")
    good = records.read_wfdb(tmp_path / "101", fs=360, lead=0, annotator="atr")
    atr = tmp_path / "101.atr"
    data = atr.read_bytes()
    atr.write_bytes(data[: len(data) // 2 + 1])  # cut inside a two-byte word
    with pytest.raises(CardioError, match=r"101\.atr: unreadable WFDB annotation file"):
        mitdb.load_mitdb(tmp_path, records=["101"])
    # the first annotation's code (the top 6 bits of its first word) set to 42, which WFDB leaves undefined
    word = int.from_bytes(data[:2], "little")
    atr.write_bytes(((42 << 10) | (word & 0x3FF)).to_bytes(2, "little") + data[2:])
    with pytest.raises(CardioError, match=r"101\.atr: damaged WFDB annotation file: 1 annotation\(s\) with a code"):
        records.read_wfdb(tmp_path / "101", fs=360, lead=0, annotator="atr")
    samples, symbols = good.annotations()
    late = np.r_[samples[:-1], 650_000 + 10]  # the record has 650,000 samples
    wfdb.wrann("101", "atr", sample=late, symbol=list(symbols), write_dir=str(tmp_path))
    with pytest.raises(CardioError, match=r"101\.atr: damaged WFDB annotation file: an annotation at sample 650010"):
        records.read_wfdb(tmp_path / "101", fs=250, lead=0, annotator="atr")


def test_damaged_pretraining_results_of_a_resumed_run_are_refused(tmp_path):
    """A resumed run reads back the results its finished pretraining left (and pretrains nothing)."""
    from cardio_ecg_transfer import pretrain
    from cardio_testing.harness import cpu_context, plugin_config

    config = plugin_config("ecg_transfer", ["ecg_transfer.mitdb_dir=/nowhere"])
    ctx = cpu_context(tmp_path)
    pretrain.weights_path(config, ctx).write_bytes(b"weights")
    results = Path(ctx.checkpoint_dir) / pretrain.RESULTS_NAME.format(arch=config["ecg_transfer"]["pretrain"]["arch"])
    for text, says in (("{not json", "is not a readable pretraining results file"), ("[1, 2]", "(it lacks ['arch'"),
                       ('{"arch": "resnet18"}', "it lacks ['accuracy'"), (b"\xff\xfe", "not a readable")):
        results.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(CardioError) as refused:
            pretrain.pretrain(config, ctx)
        assert f"{results} " in str(refused.value) and says in str(refused.value)


def test_each_architecture_of_a_run_reads_back_its_own_pretraining(tmp_path):
    """finetune.archs pretrains several ResNets in one run: a resumed run gives each its own weights, results and
    figure (they once shared pretrain_results.json, so every architecture reported the last one's results)."""
    from cardio_ecg_transfer import pretrain
    from cardio_testing.harness import cpu_context, plugin_config

    config = plugin_config("ecg_transfer", ["ecg_transfer.mitdb_dir=/nowhere"])
    ctx = cpu_context(tmp_path)
    for k, arch in enumerate(("resnet18", "resnet34")):
        pretrain.weights_path(config, ctx, arch).write_bytes(b"weights")
        result = {key: None for key in pretrain.RESULT_KEYS} | {"arch": arch, "macro_f1": 0.5 + k / 10}
        (Path(ctx.checkpoint_dir) / pretrain.RESULTS_NAME.format(arch=arch)).write_text(json.dumps(result))
    for k, arch in enumerate(("resnet18", "resnet34")):
        got = pretrain.pretrain(config, ctx, arch)  # /nowhere has no MIT-BIH: it must not pretrain
        assert got.results is not None  # the finished pretraining's, read back
        assert got.weights.name == f"pretrained-{arch}.pt" and got.results["arch"] == arch
        assert got.results["macro_f1"] == 0.5 + k / 10


# ------------------------------------------------------------------ properties of the readers

_TOKENS = st.one_of(st.sampled_from(["", "0", "1", "2", "-1", "360", "250.5", "360/10(2)", "1e9", "nan", "-360",
                                     "99999999999", "16", "212", "999", "16x9999", "16:99999999999", "16+9999",
                                     "200(0)/mV", "0/mV", "~", "r.dat", "../r.dat", "II", "#"]),
                    st.text(alphabet="0123456789.-+e/()x:_ ~#abc\t", max_size=10))


@st.composite
def _damaged_record(draw):
    """A valid two-lead header and signal file, then a few fields, lines and bytes changed."""
    good_header, dat, good_atr = _good_record()
    lines = [ln.split() for ln in good_header.decode().splitlines()]
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.integers(0, len(lines) - 1))
        if lines[row]:
            lines[row][draw(st.integers(0, len(lines[row]) - 1))] = draw(_TOKENS)
    if draw(st.booleans()):
        del lines[draw(st.integers(0, len(lines) - 1))]
    header = "\n".join(" ".join(ln) for ln in lines) + "\n"
    if draw(st.integers(0, 9)) == 0:
        header = draw(st.text(max_size=200))
    cut = draw(st.one_of(st.none(), st.integers(0, len(dat))))
    if cut is not None:
        dat = dat[:cut]
    for pos, byte in draw(st.lists(st.tuples(st.integers(0, max(len(dat) - 1, 0)), st.integers(0, 255)),
                                   max_size=3)):
        if dat:
            dat = dat[:pos] + bytes([byte]) + dat[pos + 1:]
    atr = good_atr[: draw(st.integers(0, len(good_atr)))] + draw(st.binary(max_size=6))
    return header, dat, atr


@functools.cache
def _good_record() -> tuple[bytes, bytes, bytes]:
    """The header, signal and annotation bytes of a valid two-lead record (2 s at 360 Hz, two beats)."""
    two_leads = np.c_[_ecg_like(2, 360), -_ecg_like(2, 360)]
    with tempfile.TemporaryDirectory() as folder:
        wfdb.wrsamp("r", fs=360, units=["mV", "mV"], sig_name=["II", "V1"], p_signal=two_leads, fmt=["16", "16"],
                    write_dir=folder)
        wfdb.wrann("r", "atr", sample=np.arange(144, 720, 288), symbol=["N", "V"], write_dir=folder)
        hea, dat, atr = ((Path(folder) / f"r.{ext}").read_bytes() for ext in ("hea", "dat", "atr"))
        return hea, dat, atr


LEADS = st.one_of(st.none(), st.integers(-2, 3), st.sampled_from(["II", "V1", "v1", "V6", "1", ""]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_damaged_record(), LEADS, st.sampled_from([250, 360, 500]), st.booleans())
def test_any_damaged_wfdb_record_is_read_or_refused(tmp_path, record, lead, fs, annotations):
    header, dat, atr = record
    (tmp_path / "r.hea").write_text(header)
    (tmp_path / "r.dat").write_bytes(dat)
    (tmp_path / "r.atr").write_bytes(atr)
    try:
        rec = records.read_wfdb(tmp_path / "r", fs=fs, lead=lead, annotator="atr" if annotations else None)
    except CardioError:
        return
    assert rec.fs == fs and len(rec.signal) and np.isfinite(rec.signal).all()
    if annotations:
        samples, symbols = rec.annotations()
        assert len(samples) == len(symbols) and np.all(samples < len(rec.signal))


_CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                   st.sampled_from(["", "abc", "1e400", "-", "0x10", "nan", "\x00"]), st.text(max_size=5))


@st.composite
def _csv_text(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=300))
    names = draw(st.lists(st.sampled_from(["II", "V1", "time", "", "a,b", "II"]) | st.text(max_size=4),
                          min_size=1, max_size=3))
    column = st.one_of(st.lists(_CELLS, min_size=len(names), max_size=len(names)),
                       st.floats(-5, 5).map(lambda v: [v] * len(names)))
    rows = draw(st.lists(column, max_size=40))
    if draw(st.booleans()):  # a real signal underneath, with some cells spoiled
        base = _ecg_like(2, 360)[:, 0]
        rows = [[v] * len(names) for v in base] + rows
    frame = pd.DataFrame(rows, columns=range(len(names))) if rows else pd.DataFrame(columns=range(len(names)))
    frame.columns = names
    return frame.to_csv(index=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_csv_text(), LEADS, st.one_of(st.sampled_from([360, 250, 1e9, 0, -1, float("nan"), 99.9, 20000]),
                                     st.floats(allow_nan=True, allow_infinity=True)))
def test_any_csv_ecg_is_read_or_refused(tmp_path, text, lead, source_fs):
    (tmp_path / "e.csv").write_text(text)
    try:
        rec = records.read_ecg(tmp_path / "e.csv", fs=360, lead=lead, source_fs=source_fs)
    except CardioError:
        return
    assert len(rec.signal) and np.isfinite(rec.signal).all()


@st.composite
def _cohort_text(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=300))
    cell = {"patient_id": st.sampled_from(["p1", "p2", "p3", "", " ", "nan"]),
            "record_id": st.sampled_from(["r1", "r2", "r3", "r4", "", "NA"]),
            "responder": st.sampled_from(["0", "1", "1.0", "2", "-1", "", "yes", "nan", "inf", "1e400"]),
            "ecg": st.sampled_from(["ecg/r1", "", "../x", "/abs/r2", "ecg/r3.csv"]),
            "fs": st.sampled_from(["360", "", "fast", "-1"])}
    columns = draw(st.lists(st.sampled_from(list(cell)), unique=True, min_size=1, max_size=len(cell)))
    rows = draw(st.lists(st.tuples(*[cell[c] for c in columns]), max_size=8))
    return pd.DataFrame(rows, columns=columns).to_csv(index=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_cohort_text())
def test_any_cohort_table_text_is_read_or_refused(tmp_path, text):
    (tmp_path / "cohort.csv").write_text(text)
    try:
        table = cohort_table.read_cohort_table(tmp_path)
    except CardioError:
        return
    assert set(table["responder"].dropna()) <= {0, 1} and not table["record_id"].duplicated().any()
