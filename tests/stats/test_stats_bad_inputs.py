"""Every public entry point refuses bad labels and scores with a StatsError saying what and how many."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from cardio_stats import (
    Estimate,
    StatsError,
    TestResult,
    auc,
    binary_metrics,
    bootstrap_ci,
    delong_ci,
    delong_test,
    delong_unpaired_test,
    roc_curve_band,
    threshold_for_sensitivity,
    youden_threshold,
)

Y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1])
S = np.linspace(0.05, 0.95, 10)

CALLS = {
    "auc": lambda y, s: auc(y, s),
    "delong_ci": lambda y, s: delong_ci(y, s),
    "delong_test": lambda y, s: delong_test(y, s, S),
    "delong_unpaired": lambda y, s: delong_unpaired_test(y, s, Y, S),
    "bootstrap": lambda y, s: bootstrap_ci(y, s, n_resamples=20),
    "band": lambda y, s: roc_curve_band(y, s, n_resamples=20),
    "youden": lambda y, s: youden_threshold(y, s),
    "sens_threshold": lambda y, s: threshold_for_sensitivity(y, s, 0.8),
    "binary_metrics": lambda y, s: binary_metrics(y, s, 0.5, n_resamples=20),
}

BAD = {
    "nan_score": (Y, np.where(np.arange(10) == 3, np.nan, S), r"1 NaN and 0 infinite value\(s\) out of 10"),
    "inf_score": (Y, np.where(np.arange(10) < 2, np.inf, S), r"0 NaN and 2 infinite value\(s\) out of 10"),
    "three_classes": (np.array([0, 1, 2] * 3 + [1]), S, r"only the two classes 0 and 1.*3 distinct"),
    "labels_1_2": (Y + 1, S, r"only the two classes 0 and 1.*\[1, 2\]"),
    "string_labels": (np.array(["a", "b"] * 5), S, "binary 0/1 or bool"),
    "nan_label": (np.where(np.arange(10) == 0, np.nan, Y), S, r"1 missing \(NaN\) label"),
    "one_class": (np.ones(10, dtype=int), S, "only one class: all 10 records are 1"),
    "length_mismatch": (Y, S[:9], "length mismatch.*9 values.*10"),
    "empty": (np.array([], dtype=int), np.array([]), "empty"),
    "two_d": (Y.reshape(2, 5), S.reshape(2, 5), "one-dimensional"),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_clear_error(call, case):
    y, s, message = BAD[case]
    if call == "delong_test" and case == "length_mismatch":
        message = "length mismatch"
    with pytest.raises(StatsError, match=message):
        CALLS[call](y, s)


def test_bool_and_float_labels_are_accepted():
    assert auc(Y.astype(bool), S) == auc(Y.astype(float), S) == auc(Y, S)


def test_delong_needs_two_per_class():
    with pytest.raises(StatsError, match="at least 2 positives and 2 negatives; got 1 positive"):
        delong_ci([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3])


def test_results_are_json_safe():
    e = Estimate("ppv", float("nan"), None, float("inf"), extra={"a": np.float32(0.5), "b": np.arange(2)}, seed=0)
    d = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert d["estimate"] is None and d["ci_high"] is None and d["extra"] == {"a": 0.5, "b": [0, 1]}
    assert list(d) == ["metric", "estimate", "ci_low", "ci_high", "level", "method", "n", "seed", "n_resamples",
                       "warnings", "extra"]
    numpy_df: Any = np.int64(2)  # a numpy integer where the field says float: to_dict must still write JSON
    t = TestResult("x", np.float64(1.5), float("nan"), "m", df=numpy_df)
    assert json.loads(json.dumps(t.to_dict(), allow_nan=False))["p_value"] is None


def test_stats_imports_without_torch():
    # a finder that refuses torch makes any `import torch` fail, as on a machine without it
    code = (
        "import sys, importlib.abc\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import cardio_stats\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
