"""cardio validate lists, at once, what a run would refuse or crash on: ten damages of one cohort (a truncated clip,
a label of 2, a label in words, a non-numeric T1, a per-view label in words, a missing clip, a clip outside the
folder, a text file saved as a clip, an unknown view, a study shared by two patients), each naming its file, line
and column."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr import synthetic
from cardio_testing.harness import invoke


def test_validate_lists_every_damage_at_once(tmp_path):
    root = tmp_path / "cohort"
    synthetic.write_cohort(root, 8, seed=3, n_frames=8, height=48, width=64)
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    clip = root / table.loc[0, "file"]
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # truncated
    study = table["study_id"] == table.loc[3, "study_id"]
    table.loc[study, "wma_global"] = "2"
    study = table["study_id"] == table.loc[6, "study_id"]
    table.loc[study, "lge_global"] = "abnormal"
    table.loc[9, "t1_ms"] = "high"
    table.loc[12, "wma_view"] = "abnormal"  # a crash before (issue 27 item 11)
    table.loc[15, "file"] = "videos/not_there.dcm"
    table.loc[16, "file"] = "../outside.dcm"
    (root / "videos" / "notes.dcm").write_text("a text file saved as a clip")
    table.loc[17, "file"] = "videos/notes.dcm"
    table.loc[18, "view"] = "A5C"
    table.loc[table["patient_id"] == table.loc[21, "patient_id"], "study_id"] = table.loc[0, "study_id"]
    table.to_csv(root / "labels.csv", index=False)
    result = invoke("validate", "--plugin", "echo_cmr", "--set", f"cohort.dir={root}",
                    "--set", f"cache_dir={tmp_path / 'cache'}")
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    text = "\n".join(problems)
    clip_line = next(line for line in problems if "line 2, column 'file'" in line)
    assert "truncated" in clip_line or "no decodable frames" in clip_line, clip_line
    assert "column 'wma_global': must be 0/1 (or yes/no), found '2'" in text
    assert "column 'lge_global': must be 0/1 (or yes/no), found 'abnormal'" in text
    assert "line 11, column 't1_ms': must be a finite number, found 'high'" in text
    assert "line 14, column 'wma_view': must be 0/1 (or yes/no), found 'abnormal'" in text
    for line, column in ((17, "file"), (18, "file"), (19, "file"), (20, "view")):
        assert any(f"line {line}, column '{column}'" in p for p in problems), (line, column, text)
    assert any("study" in p and "patient" in p for p in problems), text  # one study, two patients
    assert len(problems) >= 10
