"""Table 1 with the tests the papers state (issue 56): Student t and Pearson chi-square for every variable, never the
adaptive switch to Kruskal–Wallis or Fisher; He et al.'s (SPECT) CKD p 0.786 is the Yates-corrected chi-square of its
counts, which Fisher's exact test (0.652) does not give."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardio_stats import StatsError, note_on_tests, table_one


def _spect_ckd() -> pd.DataFrame:
    y = np.r_[np.ones(45), np.zeros(57)]  # He et al. Table 1: 45 responders, 57 non-responders
    ckd = np.r_[np.ones(3), np.zeros(42), np.ones(2), np.zeros(55)]  # CKD 3 (6.7%) vs 2 (3.5%), p 0.786
    age = np.random.default_rng(0).exponential(10, 102)  # skewed: the adaptive table would switch its test
    return pd.DataFrame({"responder": y, "ckd": ckd, "age": age})


def test_the_papers_tests_reproduce_the_papers_p():
    df = _spect_ckd()
    paper = table_one(df, "responder", ["age"], ["ckd"], tests="student-chi2").set_index("variable")
    assert paper.loc["ckd", "test"] == "chi-square (Yates)" and round(paper.loc["ckd", "p_value"], 3) == 0.786
    assert paper.loc["age", "test"] == "Student t-test" and paper.loc["age", "summary"] == "mean (SD)"
    adaptive = table_one(df, "responder", ["age"], ["ckd"]).set_index("variable")
    assert adaptive.loc["ckd", "test"] == "Fisher exact" and round(adaptive.loc["ckd", "p_value"], 3) == 0.652
    assert adaptive.loc["age", "test"] == "Kruskal–Wallis"
    plain = table_one(df, "responder", ["age"], ["ckd"], tests="student-chi2", yates=False).set_index("variable")
    assert plain.loc["ckd", "test"] == "chi-square (Pearson, uncorrected)" and plain.loc["ckd", "p_value"] < 0.5


def test_the_note_names_every_test_and_a_wrong_set_is_refused():
    t = table_one(_spect_ckd(), "responder", ["age"], ["ckd"])
    assert note_on_tests(t) == "P-values: Kruskal–Wallis (age); Fisher exact (ckd)."
    with pytest.raises(StatsError, match="Table 1 tests must be one of"):
        table_one(_spect_ckd(), "responder", ["age"], ["ckd"], tests="paper")  # type: ignore[arg-type]  # an untyped caller
