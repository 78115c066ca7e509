"""A column of `subgroups_if_present` is reported where the cohort table has it and named as absent where not."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio import Cohort, Predictions
from cardio.config import resolve
from cardio_report import subgroups
from cardio_testing.harness import cpu_context


def _run(tmp_path, table: pd.DataFrame, names: list[str], maybe: list[str]):
    n = len(table)
    rng = np.random.default_rng(0)
    y = table["y"].to_numpy(float)
    pred = Predictions.from_arrays(table["record_id"], table["patient_id"], y, y + rng.normal(0, 1, n), model="m",
                                   task="crt", fold=np.arange(n) % 2).table.assign(repeat=0)
    cfg = resolve({}, sets=(f"subgroups=[{', '.join(names)}]", f"subgroups_if_present=[{', '.join(maybe)}]",
                            "stats.n_resamples=100"))
    cohort = Cohort(table, label="y")
    return subgroups.cardio_evaluate(Predictions(pred), cohort, cfg, cpu_context(tmp_path))


def test_an_optional_subgroup_is_reported_only_where_the_table_has_it(tmp_path):
    n = 80
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "record_id": [f"p{i}" for i in range(n)],
                          "y": (rng.random(n) < 0.5).astype(float), "sex": np.arange(n) % 2})
    without = _run(tmp_path / "a", table, ["sex"], ["site"])
    assert set(without.tables["AUC by subgroup"]["subgroup"]) == {"sex=0", "sex=1"}
    assert "Not in this cohort's table, so not reported: site." in without.text
    with_site = _run(tmp_path / "b", table.assign(site=np.where(np.arange(n) < 40, "A", "B")), ["sex"], ["site"])
    assert {"site=A", "site=B"} <= set(with_site.tables["AUC by subgroup"]["subgroup"])
    assert "not reported" not in with_site.text


def test_a_task_with_one_class_in_a_subgroup_leaves_the_other_tasks_reported(tmp_path):
    """perfusion_polar predicts sex and is reported by sex: among women the sex task has one class, the others not."""
    n = 80
    rng = np.random.default_rng(2)
    sex = np.arange(n) % 2
    y = (rng.random(n) < 0.5).astype(float)
    ids = [f"p{i}" for i in range(n)]
    parts = [Predictions.from_arrays(ids, ids, y, y + rng.normal(0, 1, n), model="m", task="crt", fold=sex),
             Predictions.from_arrays(ids, ids, sex.astype(float), sex + rng.normal(0, 1, n), model="m", task="male",
                                     fold=sex)]
    pred = Predictions(Predictions.concat(parts).table.assign(repeat=0))
    table = pd.DataFrame({"patient_id": ids, "record_id": ids, "y": y, "sex": sex})
    cfg = resolve({}, sets=("subgroups=[sex]", "stats.n_resamples=100"))
    section = subgroups.cardio_evaluate(pred, Cohort(table, label="y"), cfg, cpu_context(tmp_path))
    assert section is not None  # subgroups are configured
    shown = section.tables["AUC by subgroup"].set_index(["subgroup", "task"])["auc"]
    assert shown[("sex=0", "male")] == shown[("sex=1", "male")] == "skipped: one outcome class in this subgroup"
    assert not shown[("sex=0", "crt")].startswith("skipped") and not shown[("sex=1", "crt")].startswith("skipped")
