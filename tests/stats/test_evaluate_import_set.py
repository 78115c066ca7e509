"""What the statistics service's modules and an evaluation load of statsmodels: its models from their own modules,
never `statsmodels.api`, which also loads its time series analysis and its plots (0.35 s of every evaluate stage
and of predict on a 2-core machine; issue 57). An evaluation of K-fold predictions runs every statistic a run's
evaluate stage does (calibration slopes by GLM, per-fold intercepts, agreement, thresholds, paired tests)."""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, importlib.util, json, pkgutil, sys
import numpy as np, pandas as pd
import cardio_stats
from cardio_stats.evaluate import evaluate_predictions
for m in pkgutil.iter_modules(cardio_stats.__path__):
    if m.name != "figures" or importlib.util.find_spec("matplotlib") is not None:
        importlib.import_module(f"cardio_stats.{m.name}")
rng = np.random.default_rng(0)
n = 120
y = rng.integers(0, 2, n)
frames = [pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                        "model": m, "task": "crt", "kind": "binary", "y_true": y,
                        "y_score": 1 / (1 + np.exp(-(y * shift + rng.normal(size=n)))),
                        "fold": [f"fold{i % 5}" for i in range(n)]}) for m, shift in (("a", 1.5), ("b", 0.5))]
truth = rng.normal(size=n)
frames.append(pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                            "model": "a", "task": "lvef", "kind": "regression", "y_true": truth,
                            "y_score": truth + rng.normal(scale=0.5, size=n),
                            "fold": [f"fold{i % 5}" for i in range(n)]}))
estimates, _ = evaluate_predictions(pd.concat(frames, ignore_index=True), n_resamples=50)
print(json.dumps({"metrics": sorted({e["metric"] for e in estimates}),
                  "statsmodels": sorted(m for m in sys.modules if m.startswith("statsmodels."))}))
"""


def test_the_statistics_of_an_evaluation_load_statsmodels_models_without_statsmodels_api():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # the control: the probe ran the GLM calibration and sees statsmodels' modules (the checks below can fail)
    assert "calibration_slope" in seen["metrics"] and "mae" in seen["metrics"]
    assert "statsmodels.genmod.generalized_linear_model" in seen["statsmodels"]
    assert "statsmodels.api" not in seen["statsmodels"]
    assert not [m for m in seen["statsmodels"] if m.startswith(("statsmodels.tsa", "statsmodels.graphics.tsaplots"))]
