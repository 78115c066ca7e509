"""Issue 55: on ~30 patients a training fold's data can separate the outcome (a variable predicts it exactly), and
maximum likelihood has no finite estimate. spect_polar.analysis.logistic: auto fits those models by Firth's
penalized likelihood, and the fold's facts (hence the report's selection table and text) say which."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import CardioError
from cardio_spect_polar.analysis import fit_response_models
from cardio_spect_polar.pipeline import fold_selection_table


def _separated(n: int = 24, seed: int = 0) -> pd.DataFrame:
    """A small fold: PSD above 40 in every responder and below it in every non-responder."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "responder": y,
                         "age": rng.normal(65, 8, n), "qrs_ms": rng.normal(150, 15, n),
                         "psd": np.where(y == 1, 45 + rng.random(n) * 10, 30 + rng.random(n) * 9),
                         "pbw": rng.normal(100, 20, n), "ae_01": rng.normal(size=n), "ae_02": rng.normal(size=n)})


def test_separated_fold_is_fitted_by_firth_under_auto_and_said():
    df = _separated()
    with pytest.raises(CardioError, match="separation"):
        fit_response_models(df, "responder", ["age", "qrs_ms"], ["ae_01", "ae_02"], method="ml")
    fitted = fit_response_models(df, "responder", ["age", "qrs_ms"], ["ae_01", "ae_02"], method="auto")
    assert "clinical+psd" in fitted.firth and all(fitted.models[n].method.startswith("Firth") for n in fitted.firth)
    scores = fitted.predict(df)["clinical+psd"]
    assert np.isfinite(scores).all() and scores[df["responder"] == 1].min() > scores[df["responder"] == 0].max()
    facts = {"fold0": {"variables": fitted.variables, "ae_forced": fitted.ae_forced, "firth": fitted.firth}}
    assert "clinical+psd" in fold_selection_table(facts).loc[0, "firth"]
