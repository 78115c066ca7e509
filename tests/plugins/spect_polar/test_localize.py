"""LV localisation among extracardiac uptake: liver/gut activity planted below the inferior wall is found and
left out of the phase analysis; a volume without it is analysed as before."""
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio_spect_polar import localize, phase
from cardio_spect_polar.phantom import make_phantom
from cardio_spect_polar.phase import circular_abs_error, phase_analysis

FOCAL: dict[str, Any] = {"pattern": "focal", "dyssynchrony": 120, "late_angle": 300}


def _mae(ph) -> float:
    return float(circular_abs_error(phase_analysis(ph.volume).phase_map, ph.true_phase).mean())


def test_liver_beside_the_inferior_wall_is_left_out(monkeypatch):
    clean = make_phantom(5, **FOCAL)
    liver = make_phantom(5, **FOCAL, extracardiac=1.0, extracardiac_gap_mm=10.0)
    assert liver.volume.max() > 0.9 * clean.volume.max()  # as hot as the myocardium
    assert localize.extracardiac_mask(clean.volume.mean(axis=0)) is None  # nothing beside the LV: untouched
    mask = localize.extracardiac_mask(liver.volume.astype(np.float32).mean(axis=0))
    assert mask is not None
    rows = np.nonzero(mask)[1]
    assert mask.any() and rows.mean() > liver.volume.shape[2] / 2  # below the LV (rows grow inferiorly)
    with_uptake, without = _mae(liver), _mae(clean)
    assert with_uptake < 1.3 * without and with_uptake < 12, (with_uptake, without)
    # the same phantom with the suppression switched off: the inferior rays sample the liver
    monkeypatch.setattr(phase, "suppress_extracardiac", lambda volume: (volume, 0.0))
    assert _mae(liver) > 3 * without
