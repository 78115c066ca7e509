"""The methods appendix of a K-fold run describes the rows the run has: its regression paragraph only where a task is
continuous."""
from __future__ import annotations

import pandas as pd

from cardio_report.performance import _cv_text


def _text(kinds: list[str]) -> str:
    table = pd.DataFrame({"fold": [f"fold{i % 5}" for i in range(len(kinds))], "kind": kinds})
    return _cv_text(table, {"cv": {"method": "kfold"}}, 95, {"nested_repeats": 20}, 0)


def test_a_run_of_binary_tasks_has_no_regression_paragraph_and_one_with_a_continuous_task_has_it() -> None:
    binary = _text(["binary"] * 10)
    mixed = _text(["binary"] * 5 + ["regression"] * 5)
    assert "Regression:" not in binary and "Regression:" in mixed
    assert binary.endswith("p-values are shown raw and Holm-adjusted.")
    assert mixed.replace(mixed[mixed.index("Regression:"):mixed.index("Thresholds were")], "") == binary
