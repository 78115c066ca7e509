"""cardio_stats against R: pROC (AUC, DeLong var/CI, paired and unpaired roc.test) and glm/anova.

With Rscript + pROC + jsonlite installed, R is run live on the stored data sets (test ids end in
"liveR"); otherwise the values R produced earlier (reference/reference_values.json) are used ("storedR").
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio_stats import (
    delong_ci,
    delong_test,
    delong_unpaired_test,
    fit_logistic,
    likelihood_ratio_test,
    univariate_screen,
)

REF = Path(__file__).resolve().parent / "reference"
DATA = REF / "data"
STORED = REF / "reference_values.json"
ROC_TOL = 1e-9  # pROC and the midrank DeLong are the same arithmetic; R prints 15 significant digits
GLM_TOL = 1e-6  # glm's IRLS and statsmodels' Newton stop at slightly different points


def _r_available() -> bool:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False
    probe = subprocess.run([rscript, "-e", "suppressPackageStartupMessages({library(pROC); library(jsonlite)})"],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


LIVE = _r_available()
SOURCE = "liveR" if LIVE else "storedR"
ROC_SETS = sorted(p.stem for p in DATA.glob("roc_*.csv"))
LOGIT_SETS = sorted(p.stem for p in DATA.glob("logit_*.csv"))


def _read(name: str) -> pd.DataFrame:
    # pandas 3 parses floats round-trip by default: the same decimal text becomes the same double as in R
    return pd.read_csv(DATA / f"{name}.csv")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    if not LIVE:
        return json.loads(STORED.read_text())
    out = tmp_path_factory.mktemp("r") / "reference.json"
    rscript = shutil.which("Rscript")
    assert rscript is not None  # LIVE means Rscript is on the PATH
    subprocess.run([rscript, str(REF / "make_reference.R"), str(DATA), str(out)], check=True,
                   capture_output=True, timeout=300)
    return json.loads(out.read_text())


def test_enough_reference_data_sets():
    assert len(ROC_SETS) >= 20
    assert len(LOGIT_SETS) >= 5
    tied = [n for n in ROC_SETS if _read(n)["score1"].duplicated().any()]
    assert len(tied) >= 10  # ties are the hard case for DeLong


@pytest.mark.skipif(not LIVE, reason="Rscript with pROC not installed: stored values used elsewhere")
def test_stored_values_are_what_the_script_produces(reference):
    stored = json.loads(STORED.read_text())

    def flat(x, prefix=""):
        if isinstance(x, dict):
            for k, v in x.items():
                yield from flat(v, f"{prefix}/{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from flat(v, f"{prefix}[{i}]")
        else:
            yield prefix, x

    live, kept = dict(flat(reference)), dict(flat(stored))
    assert live.keys() == kept.keys()
    for key, value in live.items():
        if isinstance(value, float):
            assert math.isclose(value, kept[key], rel_tol=1e-12, abs_tol=1e-15), key
        elif key not in ("/r_version", "/proc_version"):
            assert value == kept[key], key


@pytest.mark.parametrize("name", ROC_SETS, ids=[f"{n}-{SOURCE}" for n in ROC_SETS])
def test_delong_matches_proc(name, reference):
    r = reference["roc"][name]
    d = _read(name)
    assert len(d) == r["n"]
    e1, e2 = delong_ci(d.y, d.score1), delong_ci(d.y, d.score2)
    e90 = delong_ci(d.y, d.score1, level=0.90)
    assert e1.estimate == pytest.approx(r["auc1"], abs=ROC_TOL)
    assert e2.estimate == pytest.approx(r["auc2"], abs=ROC_TOL)
    assert e1.extra["var"] == pytest.approx(r["var1"], abs=ROC_TOL)
    assert e2.extra["var"] == pytest.approx(r["var2"], abs=ROC_TOL)
    for est, (lo, _, hi) in ((e1, r["ci95_1"]), (e90, r["ci90_1"]), (e2, r["ci95_2"])):
        assert est.ci_low == pytest.approx(lo, abs=ROC_TOL)
        assert est.ci_high == pytest.approx(hi, abs=ROC_TOL)
    t = delong_test(d.y, d.score1, d.score2)
    assert t.statistic == pytest.approx(r["paired_z"], abs=ROC_TOL)
    assert t.p_value == pytest.approx(r["paired_p"], abs=ROC_TOL)


@pytest.mark.parametrize("sets", ["consecutive-pairs"], ids=[f"consecutive-pairs-{SOURCE}"])
def test_unpaired_delong_matches_proc(sets, reference):
    pairs = reference["unpaired"]
    assert len(pairs) >= 20
    for pair in pairs:
        a, b = _read(pair["a"]), _read(pair["b"])
        t = delong_unpaired_test(a.y, a.score1, b.y, b.score1)
        assert t.statistic == pytest.approx(pair["z"], abs=ROC_TOL), (pair, SOURCE)
        assert t.p_value == pytest.approx(pair["p"], abs=ROC_TOL), (pair, SOURCE)


@pytest.mark.parametrize("name", LOGIT_SETS, ids=[f"{n}-{SOURCE}" for n in LOGIT_SETS])
def test_logistic_matches_glm(name, reference):
    r = reference["logistic"][name]
    d = _read(name)
    full = fit_logistic(d, "y", ["x1", "x2", "x3", "x4"])
    reduced = fit_logistic(d, "y", ["x1"])
    for model, ref in ((full, r["full"]), (reduced, r["reduced"])):
        np.testing.assert_allclose(model.result.params.to_numpy(), ref["coef"], atol=GLM_TOL, rtol=0)
        np.testing.assert_allclose(model.result.bse.to_numpy(), ref["se"], atol=GLM_TOL, rtol=0)
        np.testing.assert_allclose(model.result.pvalues.to_numpy(), ref["p"], atol=GLM_TOL, rtol=0)
        assert model.llf == pytest.approx(ref["loglik"], abs=GLM_TOL)
        assert model.aic == pytest.approx(ref["aic"], abs=GLM_TOL)
        np.testing.assert_allclose(model.table["or"], np.exp(ref["coef"][1:]), rtol=GLM_TOL)
    lr = likelihood_ratio_test(reduced, full)
    assert lr.statistic == pytest.approx(r["anova"]["deviance"], abs=GLM_TOL)
    assert lr.df == r["anova"]["df"]
    assert lr.p_value == pytest.approx(r["anova"]["p"], abs=GLM_TOL)
    screen = univariate_screen(d, "y", ["x1", "x2", "x3", "x4"]).set_index("variable")
    for v, ref in r["univariate"].items():
        assert screen.loc[v, "coef"] == pytest.approx(ref["coef"][1], abs=GLM_TOL)
        assert screen.loc[v, "se"] == pytest.approx(ref["se"][1], abs=GLM_TOL)
        assert screen.loc[v, "p_value"] == pytest.approx(ref["p"][1], abs=GLM_TOL)
        assert screen.loc[v, "or"] == pytest.approx(math.exp(ref["coef"][1]), rel=GLM_TOL)
