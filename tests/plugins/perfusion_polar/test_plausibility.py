"""Signal plausibility of a perfusion study (issue 55): values a rest/stress/MFR study cannot hold, a map that
contradicts its own row, one study under two patients by content. Each is one problem line naming the map, listed
by the table checks that `cardio validate` and a run share (cohort.read_cohort)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("cardio_perfusion_polar")

from cardio.data.cohort import CohortProblems
from cardio_imaging import aha17
from cardio_perfusion_polar import cohort, synthetic
from cardio_perfusion_polar.polar_table import sample_image, write_table


@pytest.fixture()
def folder(tmp_path):
    table, maps = synthetic.synthesize(20, 32, seed=55)
    return synthetic.write_cohort(table, maps, tmp_path / "c"), table, maps


def _problems(root) -> str:
    with pytest.raises(CohortProblems) as err:
        cohort.read_cohort(root, size=32)
    return "\n".join(map(str, err.value.problems))


def _save(root, pid: str, m: np.ndarray) -> None:
    np.save(root / "maps" / f"{pid}.npy", m.astype(np.float32))


def test_a_clean_cohort_passes(folder):
    root, table, _ = folder
    assert len(cohort.read_cohort(root, size=32)) == len(table)


def test_implausible_values_are_named_by_map(folder):
    root, _, maps = folder
    _save(root, "PF0002", maps[1] * np.array([0.01, 1, 1])[:, None, None])   # rest in fractions
    _save(root, "PF0003", maps[2] * np.array([1, 1, 10])[:, None, None])     # MFR x 10
    _save(root, "PF0004", maps[3][[0, 0, 2]])                                # the rest scan given as stress
    text = _problems(root)
    assert "line 3, column 'map': PF0002.npy holds a rest map peaking at 1.0" in text and "multiply by 100" in text
    assert "line 4, column 'map': PF0003.npy holds an MFR map of median" in text
    assert "line 5, column 'map': PF0004.npy holds a stress map equal to its rest map" in text


def test_global_mfr_against_the_segments(folder):
    root, table, _ = folder
    t = table.copy()
    t.loc[6, "global_mfr"] = round(10 * t.loc[6, "global_mfr"], 4)
    t.to_csv(root / "labels.csv", index=False)
    assert "line 8, column 'global_mfr': global_mfr" in _problems(root)


def test_a_mirrored_map_is_named_where_its_segments_show_it(folder):
    root, table, maps = folder
    labels = aha17.image_labels(32)
    given = table[synthetic.SEGMENT_TASKS].to_numpy(float)
    # the study whose segments differ most between septum and lateral wall (a territorial defect shows mirroring)
    errors = [np.abs(aha17.segment_values(m[2][:, ::-1], labels) - g).mean() / g.mean() for m, g in zip(maps, given)]
    i = int(np.argmax(errors))
    assert errors[i] > 2 * cohort.MIRROR_MISMATCH
    _save(root, table["patient_id"][i], maps[i][:, :, ::-1])
    assert f"line {i + 2}, column 'map': {table['patient_id'][i]}.npy: its MFR map matches the row's mfr_seg01-17 " \
           "only mirrored left-right" in _problems(root)


def test_one_study_re_exported_under_a_new_patient(folder):
    root, table, maps = folder
    write_table(sample_image(maps[5], 16, 32), root / "maps" / "PF9001.csv")   # other bytes, another format
    extra = table.iloc[[5]].assign(patient_id="PF9001", map="maps/PF9001.csv")
    pd.concat([table.assign(map=""), extra]).to_csv(root / "labels.csv", index=False)
    text = _problems(root)
    assert "maps/PF0006.npy (line 7, patient 'PF0006') and maps/PF9001.csv (line 22, patient 'PF9001') hold one " \
           "study" in text


def test_a_second_study_of_one_patient_is_not_a_copy(tmp_path):
    table, maps = synthetic.synthesize(30, 32, seed=8, second_scans=0.5)
    root = synthetic.write_cohort(table, maps, tmp_path / "c")
    out = cohort.read_cohort(root, size=32)
    assert len(out) == len(table)
