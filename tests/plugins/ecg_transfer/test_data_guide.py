"""docs/data/ecg_transfer.md shows the columns `cardio new-cohort --plugin ecg_transfer` writes, kept equal to the
plugin's schema; its file-format table names every suffix the cohort table tries."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio.testing import invoke
from cardio_ecg_transfer.cohort_table import ECG_SUFFIXES

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "data" / "ecg_transfer.md"


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `") or line.startswith("| column")]


def test_the_guide_shows_the_columns_new_cohort_writes(tmp_path):
    result = invoke("new-cohort", "--plugin", "ecg_transfer", str(tmp_path / "c"))
    assert result.exit_code == 0, result.stderr
    guide = GUIDE.read_text(encoding="utf-8")
    columns = guide.split("<!-- columns:")[1].split("<!-- end of columns -->")[0]
    assert _table(columns) == _table((tmp_path / "c" / "README.md").read_text(encoding="utf-8"))
    for suffix in ECG_SUFFIXES:
        assert f"`{suffix}`" in guide
