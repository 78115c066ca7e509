"""The performance section hands the figures that need no estimate (calibration, decision curve, confusion matrix,
Bland–Altman) to the figure workers before it computes the statistics, so that they render meanwhile (issue 57); the
ROC figures, whose legend is the table's AUC row, come after. The sections list the figures in the report's order."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cardio import Predictions
from cardio.config import core_defaults
from cardio_report.performance import evaluate_sections
from cardio_testing.harness import cpu_context


class _Recorded:
    """A run context whose figure saves and evaluation are logged in the order they happen."""

    def __init__(self, ctx: Any) -> None:
        self.ctx, self.events = ctx, list[str]()
        self.seed = ctx.seed
        outer = self

        class Stats:
            def __getattr__(self, name: str) -> Any:
                return getattr(outer.ctx.stats, name)

            def evaluate_predictions(self, *args: Any, **kwargs: Any) -> Any:
                outer.events.append("statistics")
                return outer.ctx.stats.evaluate_predictions(*args, **kwargs)

        self.stats = Stats()

    def save_figure(self, fig: Any, name: str, dpi: int | None = None, caption: str | None = None) -> Any:
        self.events.append(name)
        return self.ctx.save_figure(fig, name, dpi=dpi, caption=caption)


def _predictions(n: int = 100) -> Predictions:
    rng = np.random.default_rng(3)
    ids = [f"p{i:03d}" for i in range(n)]
    y = (np.arange(n) % 3 == 0).astype(float)
    fold = (np.arange(n) % 5).astype(str)
    parts = [Predictions.from_arrays(ids, ids, y, 1 / (1 + np.exp(-(rng.normal(size=n) + s * y))), model=m,
                                     task="crt", fold=fold, repeat=0).table for m, s in (("a", 2.0), ("b", 0.5))]
    truth = rng.normal(50, 10, size=n)
    lvef = Predictions.from_arrays(ids, ids, truth, truth + rng.normal(size=n), model="a", task="lvef",
                                   kind="regression", fold=fold, repeat=0).table
    return Predictions(pd.concat([*parts, lvef], ignore_index=True))


def test_figures_needing_no_estimate_are_saved_before_the_statistics_and_listed_in_report_order(tmp_path):
    config = core_defaults()
    config["stats"] = {**config["stats"], "n_resamples": 50}
    ctx = _Recorded(cpu_context(tmp_path))
    sections = evaluate_sections(_predictions(), config, ctx)
    first = ctx.events.index("statistics")
    assert sorted(ctx.events[:first]) == ["bland_altman_a_lvef", "calibration_a_crt", "calibration_b_crt",
                                          "confusion_crt", "decision_curve_crt"]
    assert ctx.events[first + 1:] == ["roc_crt"]
    shown = {s.title: [p.stem for p in s.figures] for s in sections}
    assert shown["Performance"] == ["roc_crt", "bland_altman_a_lvef"]
    assert shown["Calibration, thresholds and decision curves"] == ["calibration_a_crt", "calibration_b_crt",
                                                                    "decision_curve_crt", "confusion_crt"]
