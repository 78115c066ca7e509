"""The beating-LV phantom: determinism, physiology it encodes, and recovery of its phase map."""
import numpy as np
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import CardioError
from cardio_imaging import aha17
from cardio_spect_polar import phase
from cardio_spect_polar.phantom import _thickening_wave, activation_pattern, make_phantom, scar_pattern

# benchmarks/spect_phase_phantom.py measured (8 gates, no scar, counts 80, D 0..180 degrees):
# mean absolute phase error 4-8 degrees (worst single phantom ~9); the bound keeps a margin.
MAE_BOUND_DEG = 12.0


def test_phantom_is_deterministic_and_shaped():
    a, b = make_phantom(3), make_phantom(3)
    np.testing.assert_array_equal(a.volume, b.volume)
    assert a.volume.shape == (8, 24, 48, 48) and a.volume.dtype == np.uint16
    assert a.true_phase.shape == (phase.RINGS, phase.SECTORS)
    assert make_phantom(3, gates=16).volume.shape[0] == 16
    assert not np.array_equal(make_phantom(4).volume, a.volume)


def test_thickening_wave_is_symmetric_with_first_harmonic_phase_zero():
    t = np.arange(64) / 64
    w = _thickening_wave(t)
    assert w.min() == pytest.approx(0.0, abs=1e-12) and w.max() == pytest.approx(1.0)
    spec = np.fft.rfft(w)
    assert abs(np.angle(spec[1])) < 1e-9 and np.abs(spec[4:]).max() < 1e-9  # harmonics 1 and 2 only


def test_dyssynchrony_magnitude_sets_the_spread_of_the_true_map():
    for d in (0.0, 60.0, 150.0):
        ph = make_phantom(1, pattern="lbbb", dyssynchrony=d, heterogeneity=0.0, base_phase=100.0, noise=False)
        assert np.ptp(ph.true_phase) == pytest.approx(d, abs=1e-6)
    f, params = activation_pattern("lbbb", np.random.default_rng(0))
    u, theta = aha17.polar_grid(phase.RINGS, phase.SECTORS)
    late = theta[np.argmax(f[-8:].mean(axis=0))]
    assert phase.circular_abs_error(late, params["late_angle"]) < 12  # latest wall is the requested one
    early = theta[np.argmin(f[-8:].mean(axis=0))]
    assert phase.circular_abs_error(early, 180.0) < 40  # septum earliest
    with pytest.raises(CardioError, match="pattern"):
        make_phantom(0, pattern="zigzag")


def test_partial_volume_brightening_follows_thickening():
    ph = make_phantom(2, pattern="synchronous", base_phase=157.5, heterogeneity=0.0, noise=False)
    res = phase.phase_analysis(ph.volume, keep_curves=True)
    assert res.curves is not None
    wall = res.curves[8:28].mean(axis=(0, 1))  # mid-ventricular max counts per gate
    gate_of_peak = int(np.argmax(wall))
    assert gate_of_peak == 3  # gate 3 is centred at (3 + 0.5) / 8 * 360 = 157.5 degrees
    assert wall.max() / wall.min() > 1.15  # the wall brightens as it thickens


def test_scar_lowers_counts_where_it_is():
    scar, _ = scar_pattern(25.0, np.random.default_rng(0), angle=90.0, position=0.6)
    u, _ = aha17.polar_grid(phase.RINGS, phase.SECTORS)
    area = np.sin(u * np.pi / 2)[:, None] * np.ones_like(scar)
    assert (area * scar).sum() / area.sum() == pytest.approx(0.25, abs=0.03)
    ph = make_phantom(3, pattern="synchronous", scar_burden=25.0, scar_angle=90.0, scar_position=0.6)
    res = phase.phase_analysis(ph.volume)
    core, healthy = ph.scar_map > 0.8, ph.scar_map < 0.05
    assert res.perfusion_map is not None
    assert res.perfusion_map[core].mean() < 0.8 * res.perfusion_map[healthy].mean()


@pytest.mark.parametrize("pattern,dys", [("synchronous", 0.0), ("lbbb", 90.0), ("focal", 150.0), ("random", 120.0)])
def test_phase_map_is_recovered_within_the_benchmarked_bound(pattern, dys):
    ph = make_phantom(21, pattern=pattern, dyssynchrony=dys)
    res = phase.phase_analysis(ph.volume)
    mae = phase.circular_abs_error(res.phase_map, ph.true_phase).mean()
    assert mae < MAE_BOUND_DEG, f"{pattern} D={dys}: MAE {mae:.1f} deg"
    assert abs(res.psd - ph.true_psd) < 8.0
    assert abs(res.geometry["apex_slice"] - ph.params["apex_slice"]) < 1.0
    assert abs(res.geometry["base_slice"] - ph.params["base_slice"]) < 1.0
