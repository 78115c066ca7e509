"""Write the reference data sets (deterministic from one NumPy seed) and run make_reference.R on them.

Usage: python tests/stats/reference/make_data.py   (needs Rscript with pROC and jsonlite)
Values are written with at most 4-6 decimals so that R and NumPy parse the same text to the same doubles.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SEED = 20240601

# (n, prevalence, effect, rounding): rounding "none" = 4 decimals, "round1"/"round0" make many ties,
# "ordinal5" is a 1..5 rating (heavy ties), "binary" a two-valued score.
ROC_SETS = [
    (20, 0.50, 1.0, "none"), (25, 0.40, 0.0, "round1"), (30, 0.30, 1.5, "ordinal5"), (35, 0.50, 0.8, "round0"),
    (40, 0.20, 1.0, "none"), (45, 0.60, 2.0, "round1"), (50, 0.50, 0.5, "binary"), (60, 0.15, 1.2, "none"),
    (75, 0.40, 0.3, "ordinal5"), (80, 0.50, 1.0, "round0"), (90, 0.35, 0.7, "round1"), (100, 0.10, 1.5, "none"),
    (120, 0.50, 0.0, "none"), (150, 0.25, 1.0, "round1"), (200, 0.45, 0.6, "ordinal5"), (250, 0.30, 1.0, "none"),
    (300, 0.50, 2.5, "round1"), (400, 0.20, 0.4, "round0"), (500, 0.50, 1.0, "none"), (750, 0.12, 0.9, "round1"),
    (1000, 0.40, 0.5, "binary"), (1500, 0.30, 1.1, "none"), (2000, 0.05, 1.3, "round1"), (60, 0.50, -0.8, "none"),
]
# (n, true coefficients for x1..x4); x2 of the fourth set and x3 of the fifth carry no signal
LOGIT_SETS = [(80, (0.8, 0.03, 0.3, 0.5)), (150, (0.5, 0.05, 0.0, 1.0)), (200, (1.0, 0.0, 0.4, 0.0)),
              (300, (0.3, 0.0, 0.2, 0.8)), (500, (0.6, 0.02, 0.0, 0.3)), (1000, (0.2, 0.01, 0.1, 0.2))]


def _shape(latent: np.ndarray, rounding: str) -> np.ndarray:
    if rounding == "round1":
        return np.round(latent, 1)
    if rounding == "round0":
        return np.round(latent, 0)
    if rounding == "ordinal5":
        return np.digitize(latent, [-1.0, -0.3, 0.3, 1.0]).astype(float) + 1.0
    if rounding == "binary":
        return (latent > 0.5).astype(float)
    return np.round(latent, 4)


def make_data(rng: np.random.Generator) -> None:
    DATA.mkdir(exist_ok=True)
    for i, (n, prev, effect, rounding) in enumerate(ROC_SETS):
        y = np.zeros(n, dtype=int)
        n_pos = max(3, min(n - 3, int(round(prev * n))))
        y[rng.choice(n, n_pos, replace=False)] = 1
        latent = rng.normal(size=n) + effect * y
        other = 0.6 * latent + 0.8 * rng.normal(size=n) + 0.3 * effect * y  # a correlated second model
        frame = pd.DataFrame({"y": y, "score1": _shape(latent, rounding), "score2": _shape(other, rounding)})
        frame.to_csv(DATA / f"roc_{i:02d}.csv", index=False, float_format="%.6g")
    for i, (n, beta) in enumerate(LOGIT_SETS):
        x1 = np.round(rng.normal(size=n), 4)
        x2 = np.round(rng.normal(60, 10, size=n), 2)
        x3 = np.round(rng.exponential(1.0, size=n), 3)
        x4 = (rng.random(n) < 0.4).astype(int)
        eta = -0.5 + beta[0] * x1 + beta[1] * (x2 - 60) + beta[2] * x3 + beta[3] * x4
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
        pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "x4": x4}).to_csv(
            DATA / f"logit_{i:02d}.csv", index=False, float_format="%.6g")


def main() -> int:
    make_data(np.random.default_rng(SEED))
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("Rscript not found: data written, reference values not regenerated", file=sys.stderr)
        return 1
    subprocess.run([rscript, str(HERE / "make_reference.R"), str(DATA), str(HERE / "reference_values.json")],
                   check=True)
    print(f"wrote {DATA} and {HERE / 'reference_values.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
