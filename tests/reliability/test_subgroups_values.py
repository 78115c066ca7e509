"""Reliability, family "subgroups": subgroups come from any column of the cohort table, with its values as written
(issue 43).

`--set subgroups=[site]` on ecg_transfer's cohort, whose predictions are averaged per patient, reported every
patient as `site=(missing)`: the per-patient predictions were joined to the table by record id, which a patient id
never matches. Tested here through the core's own subgroup section on a patient-level cohort (plain text, integers
and missing values, as object and pandas string columns) and end to end on ecg_transfer's synthetic cohort.
"""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from cardio import CardioError, Cohort, Predictions
from cardio.config import core_defaults
from cardio.study.levels import at_level
from cardio_report.subgroups import SEVERAL, cardio_evaluate
from cardio_stats.subgroups import MISSING_LEVEL, by_subgroup, level_text
from cardio_testing.harness import cpu_context, invoke

#: How a text column may be held: Python objects, pandas' str dtype, its python storage, and pyarrow where installed.
STRING_DTYPES = ["object", "str", "string[python]",
                 *(["string[pyarrow]"] if importlib.util.find_spec("pyarrow") else [])]


def _cohort(dtype: str) -> tuple[Cohort, Predictions]:
    """20 patients of two records each (patient level, scores averaged per patient), like ecg_transfer's cohort."""
    rng = np.random.default_rng(0)
    n = 20
    pid = [f"pt{p:02d}" for p in range(n) for _ in range(2)]
    site = pd.Series([["A", "B", " B ", None][p % 4] for p in range(n) for _ in range(2)], dtype=dtype)
    table = pd.DataFrame({
        "patient_id": pid, "study_id": [f"crt{i:03d}" for i in range(2 * n)],
        "record_id": [f"crt{i:03d}" for i in range(2 * n)], "site": site,
        "centre": [float(p % 3 + 1) for p in range(n) for _ in range(2)],   # an integer column, typed as numbers
        "ward": pd.array([p % 2 + 10 for p in range(n) for _ in range(2)], dtype="Int64"),
        "label": [float(p % 5 in (1, 3)) for p in range(n) for _ in range(2)]})
    table.loc[table["patient_id"] == "pt05", "centre"] = np.nan
    table.loc[table["record_id"] == "crt001", "ward"] = 99  # pt00's two records disagree
    cohort = Cohort(table, loader=lambda rid: np.zeros(1), label="label", level="patient")
    y = table["label"].to_numpy()
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, len(y)), 0, 1)
    preds = Predictions.concat([Predictions.from_arrays(table["record_id"], table["patient_id"], y, score ** k,
                                                        model=f"m{k}", task="label", fold="fold0", repeat=0)
                                for k in (1, 2)])  # two models: a level's n counts patients, not rows
    return cohort, at_level(preds, cohort)


@pytest.mark.parametrize("dtype", STRING_DTYPES)
def test_subgroups_take_the_values_as_written_at_the_patient_level(tmp_path, dtype):
    cohort, preds = _cohort(dtype)
    assert set(preds.table["record_id"]) == set(cohort.table["patient_id"])  # scored per patient
    config = {**core_defaults(), "subgroups": ["site", "centre", "ward"], "label": "label"}
    config["stats"] = {**config["stats"], "n_resamples": 100}
    section = cardio_evaluate(predictions=preds, cohort=cohort, config=config, ctx=cpu_context(tmp_path))
    assert section is not None  # subgroups are configured
    table = section.tables["AUC by subgroup"]
    # patients per level: " B " is B as written (spaces around it dropped), None and NaN are missing, 1.0 is 1, and
    # the patient whose two records disagree is counted apart; a level of one patient is listed as skipped
    assert set(table["model"]) == {"m1", "m2", ""}
    assert dict(zip(table["subgroup"], table["n"])) == {
        "site=A": 5, "site=B": 10, f"site={MISSING_LEVEL}": 5, "centre=1": 7, "centre=2": 7, "centre=3": 5,
        f"centre={MISSING_LEVEL}": 1, "ward=10": 9, "ward=11": 10, f"ward={SEVERAL}": 1}
    assert list(dict.fromkeys(table["subgroup"]))[:3] == ["site=A", "site=B", f"site={MISSING_LEVEL}"]
    assert {e["subgroup"] for e in section.estimates} >= {"site=A", "site=B", "centre=1", "ward=11"}
    assert "1 patient(s) hold several values of ward" in section.text


def test_level_text_writes_values_as_the_table_does():
    assert [level_text(v) for v in ("A", " B ", 1.0, 2, np.int64(3), 0.5, np.nan, None, pd.NA, "", True)] == \
        ["A", "B", "1", "2", "3", "0.5", None, None, None, None, "True"]
    df = pd.DataFrame({"c": [10, 2, 1, None, 2], "y": range(5)})
    assert list(by_subgroup(df, "c", len)) == ["1", "2", "10", MISSING_LEVEL]  # numbers by value, missing last


def test_a_subgroup_column_the_predictions_already_have_is_refused(tmp_path):
    cohort, preds = _cohort("object")
    config = {**core_defaults(), "subgroups": ["patient_id"], "label": "label"}
    with pytest.raises(CardioError, match=r"subgroups: column\(s\) \['patient_id'\] name a column of the predictions"):
        cardio_evaluate(predictions=preds, cohort=cohort, config=config, ctx=cpu_context(tmp_path))


@pytest.mark.slow
def test_site_subgroups_on_ecg_transfers_own_cohort(tmp_path):
    """The case of the corpus: ecg_transfer's synthetic cohort with `site` set to A/B, an integer column and
    missing values, run with `--set subgroups=[site,centre]` (no ResNet: only the comparators, to stay fast)."""
    pytest.importorskip("cardio_ecg_transfer")
    from cardio_ecg_transfer.synthetic import write_synthetic_cohort

    d = tmp_path / "cohort"
    write_synthetic_cohort(d, n_patients=16, seed=4, fs=250, seconds=5, leads=("II",))
    table = pd.read_csv(d / "cohort.csv", dtype=str, keep_default_na=False)
    table["site"] = ["A", "B"] * 8
    table["centre"] = ["1", "2", "3", ""] * 4
    table.to_csv(d / "cohort.csv", index=False)
    result = invoke("run", "--plugin", "ecg_transfer", "--out", str(tmp_path / "run"), "--set", f"cohort.dir={d}",
                    "--set", f"cache_dir={tmp_path / 'cache'}", "--set", "subgroups=[site,centre]",
                    "--set", "cv.folds=2", "--set", "stats.n_resamples=100", "--set", "ecg_transfer.fs=250",
                    "--set", "ecg_transfer.pretrain.enabled=false", "--set", "ecg_transfer.finetune.transfer=false",
                    "--set", "ecg_transfer.finetune.scratch=false", "--set", "stats.reference=null",
                    "--set", "ecg_transfer.baselines.svm.enabled=false",
                    "--set", "ecg_transfer.baselines.rf.enabled=false",
                    "--set", "ecg_transfer.baselines.logistic.enabled=false",
                    "--set", "report.figures=false", "--set", "explain=false", "--set", "final_model=false")
    assert result.exit_code == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    section = next(s for s in report["sections"] if s["title"] == "Subgroups")
    rows = section["tables"]["AUC by subgroup"]["data"]  # [subgroup, model, task, n, auc]
    # patients per level (a level with too few of one outcome is listed as skipped, with its n)
    assert {row[0]: row[3] for row in rows} == {"site=A": 8, "site=B": 8, "centre=1": 4, "centre=2": 4,
                                                "centre=3": 4, f"centre={MISSING_LEVEL}": 4}, rows
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {e["subgroup"] for e in metrics["estimates"] if e.get("subgroup")} >= {"site=A", "site=B"}
