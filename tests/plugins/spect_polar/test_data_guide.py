"""docs/data/spect_polar.md shows the columns `cardio new-cohort --plugin spect_polar` writes, kept equal to the
plugin's schema, and names every file suffix the cohort table tries."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_spect_polar")

from cardio_spect_polar.cohort import RECORD_SUFFIXES
from cardio_testing.harness import invoke

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "data" / "spect_polar.md"


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| `") or line.startswith("| column")]


def test_the_guide_shows_the_columns_new_cohort_writes(tmp_path):
    result = invoke("new-cohort", "--plugin", "spect_polar", str(tmp_path / "c"))
    assert result.exit_code == 0, result.stderr
    guide = GUIDE.read_text(encoding="utf-8")
    columns = guide.split("<!-- columns:")[1].split("<!-- end of columns -->")[0]
    assert _table(columns) == _table((tmp_path / "c" / "README.md").read_text(encoding="utf-8"))
    assert len(_table(columns)) > 15
    for suffix in RECORD_SUFFIXES:
        assert f"{suffix or 'none'}" in guide.split("## File layout")[1].split("\n\n")[1]
