"""Bad ECG inputs through the real CLI: one error line naming the file, exit 2, nothing written before changed.

Every case fails while loading the cohort, before any pretraining (so MIT-BIH DS2 is never predicted here).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_ecg_transfer")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardio import CardioError
from cardio.testing import check_refused, checksums, invoke
from cardio_ecg_transfer import records
from cardio_ecg_transfer.synthetic import write_synthetic_cohort


@pytest.fixture(scope="module")
def good_cohort(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ecg_cohort")
    write_synthetic_cohort(d, n_patients=12, seed=5, fs=360, seconds=4, leads=("II", "V1"))
    return d


def _edit_csv(d: Path, **changes) -> None:
    table = pd.read_csv(d / "cohort.csv", dtype=str)
    for (row, col), value in changes.get("cells", {}).items():
        table.loc[row, col] = value
    table = table.drop(columns=changes.get("drop", []))
    table.to_csv(d / "cohort.csv", index=False)


def _header_fs(d: Path, fs: str) -> None:
    hea = d / "ecg" / "crt002.hea"
    first, *rest = hea.read_text().splitlines()
    parts = first.split()
    parts[2] = fs
    hea.write_text("\n".join([" ".join(parts), *rest]) + "\n")


def _csv_ecg_with_text(d: Path) -> None:
    pd.DataFrame({"II": ["0.1", "abc", "0.3"] * 400}).to_csv(d / "ecg" / "text.csv", index=False)
    _edit_csv(d, cells={(1, "ecg"): "ecg/text.csv"})


# Should a case ever get past loading, it must not pretrain: that would predict MIT-BIH DS2, the test set.
NO_PRETRAINING = ("--set", "pretrain.enabled=false", "--set", "finetune.transfer=false", "--set", "train.epochs=1")

CASES = [
    ("path-parent", lambda d: _edit_csv(d, cells={(0, "ecg"): "../elsewhere/crt001"}), [], "outside the cohort folder"),
    ("path-absolute", lambda d: _edit_csv(d, cells={(0, "ecg"): "/etc/hostname"}), [], "outside the cohort folder"),
    ("label-0-1-2", lambda d: _edit_csv(d, cells={(0, "responder"): "2"}), [], "must hold 0 or 1"),
    ("label-yes-no", lambda d: _edit_csv(d, cells={(0, "responder"): "yes"}), [], "not numeric"),
    ("label-missing", lambda d: _edit_csv(d, drop=["responder"]), [], "no label column 'responder'"),
    ("patient-id-missing", lambda d: _edit_csv(d, drop=["patient_id"]), [], "lacks column"),
    ("file-absent", lambda d: _edit_csv(d, cells={(3, "ecg"): "ecg/none"}), [], "no ECG record"),
    ("fs-1e9", lambda d: _header_fs(d, "1000000000"), [], "crt002"),
    ("fs-50", lambda d: _header_fs(d, "50"), [], "below the 100 Hz"),
    ("fs-text", lambda d: _header_fs(d, "fast"), [], "crt002"),
    ("dat-truncated", lambda d: (d / "ecg" / "crt004.dat").write_bytes((d / "ecg" / "crt004.dat").read_bytes()[:300]),
     [], "truncated"),
    ("hea-garbage", lambda d: (d / "ecg" / "crt005.hea").write_text("\x00\x01 not a header\n"), [], "crt005"),
    ("hea-empty", lambda d: (d / "ecg" / "crt005.hea").write_text(""), [], "crt005"),
    ("csv-ecg-text", _csv_ecg_with_text, [], "text.csv"),
    ("cohort-csv-empty", lambda d: (d / "cohort.csv").write_text(""), [], "cohort.csv"),
    ("cohort-csv-binary", lambda d: (d / "cohort.csv").write_bytes(b"\xff\xfe\x00\x00garbage"), [], "cohort.csv"),
    ("lead-unknown", None, ["--set", "data.lead=V7"], "no lead named 'V7'"),
    ("lead-index-out-of-range", None, ["--set", "data.lead=5"], "lead index 5 out of range"),
    # the column the label is derived from, named as a covariate: refused before any model sees it
    ("covariate-is-outcome", None, ["--set", "baselines.covariates=[qrs_ms, lvesv_reduction_pct]"],
     "baselines.covariates names 'lvesv_reduction_pct'"),
]


@pytest.mark.parametrize("case_id,corrupt,sets,names", CASES, ids=[c[0] for c in CASES])
def test_bad_ecg_input_is_one_line_and_changes_nothing(good_cohort, tmp_path, case_id, corrupt, sets, names):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    if corrupt is not None:
        corrupt(d)
    before = checksums(d)
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"), "--set", f"data.cohort_dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "cv.folds=2", *NO_PRETRAINING, *sets)
    check_refused(result, names)
    assert checksums(d) == before


def test_outside_paths_only_with_the_switch(good_cohort, tmp_path):
    d = shutil.copytree(good_cohort, tmp_path / "cohort")
    shutil.copytree(d / "ecg", tmp_path / "elsewhere")
    _edit_csv(d, cells={(0, "ecg"): "../elsewhere/crt001", (1, "ecg"): str(tmp_path / "elsewhere" / "crt002")})
    with pytest.raises(CardioError, match="outside the cohort folder"):
        records.load_cohort(d, fs=360, lead="II")
    loaded = records.load_cohort(d, fs=360, lead="II", allow_outside=True)
    assert len(loaded.table) == 12


def test_lead_by_index_or_name_from_the_command_line(good_cohort):
    """`--set data.lead=1` (an index) and `--set data.lead=V1` (a name) pass the config check and pick V1."""
    from cardio.testing import plugin_config

    for value in ("1", "V1"):
        cfg = plugin_config("ecg_transfer", [f"data.lead={value}"])
        got = records.load_cohort(good_cohort, fs=360, lead=cfg["data"]["lead"])
        ref = records.load_cohort(good_cohort, fs=360, lead="V1")
        assert all(np.array_equal(got.signals[k], ref.signals[k]) for k in ref.signals)
    default = records.load_cohort(good_cohort, fs=360, lead=plugin_config("ecg_transfer")["data"]["lead"])
    ii = records.load_cohort(good_cohort, fs=360, lead="II")
    assert all(np.array_equal(default.signals[k], ii.signals[k]) for k in ii.signals)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_header_text_is_read_or_refused(tmp_path, text):
    (tmp_path / "r.hea").write_text(text)
    try:
        records.read_ecg(tmp_path / "r", fs=360, lead=None)
    except CardioError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_csv_ecg_text_is_read_or_refused(tmp_path, text):
    (tmp_path / "e.csv").write_text(text)
    try:
        records.read_ecg(tmp_path / "e.csv", fs=360, lead=None, source_fs=250)
    except CardioError:
        pass
