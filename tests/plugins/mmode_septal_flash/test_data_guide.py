"""docs/data/mmode_septal_flash.md shows the columns `cardio new-cohort --plugin mmode_septal_flash` writes, kept
equal to the plugin's schema, and its resampling snippet gives a tracing the cohort reader accepts."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np

from cardio_mmode_septal_flash import cohort
from cardio_testing.harness import invoke

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "data" / "mmode_septal_flash.md"


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `") or line.startswith("| column")]


def test_the_guide_shows_the_columns_new_cohort_writes(tmp_path):
    result = invoke("new-cohort", "--plugin", "mmode_septal_flash", str(tmp_path / "c"))
    assert result.exit_code == 0, result.stderr
    guide = GUIDE.read_text(encoding="utf-8")
    columns = guide.split("<!-- columns:")[1].split("<!-- end of columns -->")[0]
    assert _table(columns) == _table((tmp_path / "c" / "README.md").read_text(encoding="utf-8"))
    assert len(_table(columns)) == len(cohort.SCHEMA.columns) + 4  # header + the three ids


def test_the_resampling_snippet_makes_a_tracing_the_reader_accepts(tmp_path, monkeypatch):
    guide = GUIDE.read_text(encoding="utf-8")
    snippet = guide.split("With NumPy:\n\n")[1].split("\n\n")[0]
    code = "\n".join(line[6:] for line in snippet.splitlines())
    monkeypatch.chdir(tmp_path)
    os.mkdir("septum")
    y = np.linspace(300, 120, 23)  # an uneven hand tracing, base (bottom) to apex
    np.savetxt("septal_contour.csv", np.c_[300 + 0.002 * (y - 200) ** 2, y], delimiter=",", header="x,y",
               comments="")
    exec(compile(code, "guide", "exec"), {})
    points = cohort.read_septum(tmp_path / "septum" / "SF001-base.csv")
    steps = np.hypot(*np.diff(points, axis=0).T)
    assert points.shape == (62, 2) and points[0, 1] == pytest.approx(300) and points[-1, 1] == pytest.approx(120)
    assert steps.std() / steps.mean() < 0.05  # equally spaced along the septum
