"""cardio_imaging.aha17's echo view map: which segments each view shows, and per-view findings from a segment report."""
from __future__ import annotations

import numpy as np
import pytest

from cardio import CardioError
from cardio_imaging import aha17


def test_views_cover_every_segment_once_but_the_apex():
    shown = [s for segs in aha17.VIEW_SEGMENTS.values() for s in segs]
    assert sorted(set(shown)) == list(range(1, 18))
    assert shown.count(17) == 2 and len(shown) == len(set(shown)) + 1  # the apex is in both apical views


def test_view_finding_any_positive_all_negative_else_missing():
    report = np.zeros((4, 17))
    report[1, 14 - 1] = 1            # apical septal: A4C only
    report[2, 5 - 1] = np.nan        # basal inferolateral not read: PLAX unknown, the others known
    report[3, 5 - 1], report[3, 2 - 1] = np.nan, 1   # one positive PLAX segment decides despite a missing one
    assert np.array_equal(aha17.view_finding(report, "A4C"), [0, 1, 0, 0])
    assert np.array_equal(aha17.view_finding(report, "A2C"), [0, 0, 0, 0])
    assert np.array_equal(aha17.view_finding(report, "PLAX"), [0, 0, np.nan, 1], equal_nan=True)


def test_unknown_view_and_wrong_width_are_one_line():
    with pytest.raises(CardioError, match="PSAX"):
        aha17.view_finding(np.zeros((1, 17)), "PSAX")
    with pytest.raises(CardioError, match="17 values"):
        aha17.view_finding(np.zeros((1, 16)), "A4C")
