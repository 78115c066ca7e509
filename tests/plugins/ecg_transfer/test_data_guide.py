"""docs/data/ecg_transfer.md shows the columns `cardio new-cohort --plugin ecg_transfer` writes, kept equal to the
plugin's schema; its file-format table names every suffix the cohort table tries."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio_ecg_transfer.cohort_table import ECG_SUFFIXES
from cardio_testing.harness import invoke

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


def test_the_guide_states_the_reading_rules_with_the_shipped_default():
    """The NaN-gap rule, the lead names and the CSV separators are written down, with the config's own default."""
    from cardio_ecg_transfer import plugin
    from cardio_ecg_transfer.records import MAX_GAP_S

    default = plugin.cardio_plugin_info().default_config["ecg_transfer"]["max_gap_s"]
    assert default == MAX_GAP_S
    guide = GUIDE.read_text(encoding="utf-8")
    for words in ("**Missing samples (NaN gaps).**", f"(default {default:g} s", "`ecg_transfer.max_gap_s`",
                  "**Lead names as clinicians write them.**", "`lead_codes.canonical_lead`", "**CSV separators.**"):
        assert words in guide, words
