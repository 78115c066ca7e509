"""Phase analysis: Fourier phase, histogram statistics, segments of cardio_imaging.aha17, figures, refusals."""
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cardio_spect_polar")

from cardio import CardioError
from cardio_imaging import aha17
from cardio_spect_polar import phase
from cardio_spect_polar.dicom_io import read_volume
from cardio_spect_polar.phantom import make_phantom

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("CARDIO_DATA") or os.environ.get("CARDIO_SHARED_DATA") or REPO.parent / "shared" / "data")
REAL_NM = SHARED / "spect_nm" / "NM-MONO2-16-13x-heart.dcm"


def _curves(phi_deg, gates, harmonics_shape=None, offset=50.0, amp=10.0):
    t = (np.arange(gates) + 0.5) / gates
    x = 2 * np.pi * t[None, :] - np.radians(phi_deg)[:, None]
    if harmonics_shape is None:
        return offset + amp * np.cos(x)
    return offset + amp * (np.cos(x) + harmonics_shape * np.cos(2 * x))


@pytest.mark.parametrize("gates", [8, 16])
def test_first_harmonic_phase_is_exact_on_cosines(gates):
    rng = np.random.default_rng(1)
    phi = rng.uniform(0, 360, 500)
    got, amp = phase.fourier_phase(_curves(phi, gates), harmonics=1)
    assert np.max(phase.circular_abs_error(got, phi)) < 1e-9
    np.testing.assert_allclose(amp, 10.0 / 50.0, rtol=1e-9)


def test_three_harmonic_phase_is_the_time_of_the_maximum():
    rng = np.random.default_rng(2)
    phi = rng.uniform(0, 360, 300)
    # symmetric waveform cos x + 0.2 cos 2x peaks at x = 0, i.e. at t = phi / 360
    got, _ = phase.fourier_phase(_curves(phi, 8, harmonics_shape=0.2), harmonics=3)
    assert np.max(phase.circular_abs_error(got, phi)) < 0.05
    # an asymmetric curve: its first-harmonic phase and its 3-harmonic maximum differ, as they should
    t = (np.arange(16) + 0.5) / 16
    x = 2 * np.pi * t
    curve = 10 + np.cos(x - 1.0) + 0.6 * np.cos(2 * x - 0.3)
    fine = np.linspace(0, 1, 36000, endpoint=False)
    xf = 2 * np.pi * fine
    true_max = fine[np.argmax(np.cos(xf - 1.0) + 0.6 * np.cos(2 * xf - 0.3))] * 360
    got3, _ = phase.fourier_phase(curve[None], harmonics=3)
    got1, _ = phase.fourier_phase(curve[None], harmonics=1)
    assert phase.circular_abs_error(got3[0], true_max) < 0.05
    assert phase.circular_abs_error(got1[0], np.degrees(1.0)) < 1e-9


def test_too_few_gates_for_the_harmonics_is_an_error():
    with pytest.raises(CardioError, match="gate"):
        phase.fourier_phase(np.ones((3, 5)), harmonics=3)


def test_psd_pbw_on_known_distributions_and_across_the_wrap():
    samples = 100.0 + (np.arange(2000) + 0.5) * 80.0 / 2000  # uniform on [100, 180)
    st = phase.phase_statistics(samples)
    assert st["psd"] == pytest.approx(80.0 / np.sqrt(12), abs=0.01)
    assert st["pbw"] == pytest.approx(0.95 * 80.0, abs=0.1)
    wrapped = (samples + 220.0) % 360.0  # the same distribution straddling 360 -> 0
    st2 = phase.phase_statistics(wrapped)
    assert st2["psd"] == pytest.approx(st["psd"], abs=1e-9)
    assert st2["pbw"] == pytest.approx(st["pbw"], abs=1e-9)
    # two-point distribution: half at 120, half at 160 -> SD 20
    two = np.r_[np.full(500, 120.2), np.full(500, 160.2)]
    assert phase.phase_statistics(two)["psd"] == pytest.approx(20.0, abs=1e-9)


def test_peak_entropy_and_histogram():
    rng = np.random.default_rng(3)
    samples = np.r_[rng.normal(200, 5, 1800), rng.uniform(0, 360, 200)] % 360
    st = phase.phase_statistics(samples)
    assert abs(st["peak"] - 200) < 4
    assert st["histogram"].sum() == samples.size and st["histogram"].shape == (360,)
    assert phase.phase_statistics(np.full(100, 42.5))["entropy"] == pytest.approx(0.0)
    assert phase.phase_statistics(np.arange(360) + 0.5)["entropy"] == pytest.approx(1.0)
    batch = phase.phase_statistics(np.stack([samples.reshape(40, 50), samples.reshape(40, 50)[::-1]]))
    assert batch["psd"].shape == (2,) and batch["psd"][0] == pytest.approx(batch["psd"][1])


def test_segments_are_the_core_aha17_model_on_the_phase_grid():
    """segments17 is the circular mean phase over cardio_imaging.aha17's cells of the plugin's (rings, sectors) grid."""
    labels = aha17.polar_labels(phase.RINGS, phase.SECTORS)
    values = np.arange(1, 18) * 20.0
    np.testing.assert_allclose(phase.segment_phases(values[labels - 1]), values % 360, atol=1e-9)
    # a map that is late (200 deg) only in the core's basal inferolateral segment (5) moves segment 5 alone
    ph = np.where(labels == 5, 200.0, 100.0)
    res = phase.result_from_phase_map(ph)
    assert res.segments17[4] == pytest.approx(200.0) and np.allclose(np.delete(res.segments17, 4), 100.0)
    # circular: 350 and 10 degrees average to 0, not 180
    alternating = np.where(np.arange(phase.SECTORS)[None, :] % 2, 350.0, 10.0) * np.ones((phase.RINGS, 1))
    assert phase.circular_abs_error(phase.segment_phases(alternating)[16], 0.0) < 1e-9


def test_volume_analysis_uses_the_core_segments_on_any_grid():
    res = phase.phase_analysis(make_phantom(3, pattern="lbbb", dyssynchrony=120).volume, rings=16, sectors=32)
    labels = aha17.polar_labels(16, 32)
    for s in (1, 9, 14, 17):
        cells = np.radians(res.phase_map[labels == s])
        expect = np.degrees(np.arctan2(np.sin(cells).mean(), np.cos(cells).mean())) % 360
        assert res.segments17[s - 1] == pytest.approx(expect, abs=1e-6)
    with pytest.raises(CardioError, match="no cell in AHA segment"):
        phase.result_from_phase_map(np.zeros((3, 8)))  # too coarse for 17 segments: a clear error


def test_phase_analysis_batch_matches_single_and_reports_geometry():
    vols = np.stack([make_phantom(s, pattern="focal", dyssynchrony=100).volume for s in range(3)])
    batch = phase.phase_analysis_batch(vols, chunk=2)
    for v, b in zip(vols, batch):
        one = phase.phase_analysis(v)
        np.testing.assert_allclose(one.phase_map, b.phase_map)
        assert one.psd == pytest.approx(b.psd)
        assert b.phase_map.shape == (32, 64) and b.segments17.shape == (17,)
        assert b.perfusion_map is not None and b.perfusion_map.max() == pytest.approx(100.0)
        assert 0 < b.geometry["apex_slice"] < b.geometry["base_slice"] < v.shape[1]


def test_three_harmonic_analysis_runs_on_a_volume():
    ph = make_phantom(4, pattern="lbbb", dyssynchrony=90)
    r1, r3 = phase.phase_analysis(ph.volume, 1), phase.phase_analysis(ph.volume, 3)
    assert r3.harmonics == 3
    # the phantom's thickening is symmetric, so both definitions estimate the same truth
    assert phase.circular_abs_error(r3.phase_map, ph.true_phase).mean() < 20
    assert phase.circular_abs_error(r1.phase_map, ph.true_phase).mean() < 12


def test_bad_volumes_are_refused():
    good = make_phantom(5).volume.astype(np.float32)
    with pytest.raises(CardioError, match="one gate"):
        phase.phase_analysis(good[:1])
    nan = good.copy()
    nan[2, 5, 10, 10] = np.nan
    with pytest.raises(CardioError, match="NaN"):
        phase.phase_analysis(nan, sources=["study.npy"])
    with pytest.raises(CardioError, match="zero"):
        phase.phase_analysis(np.zeros_like(good))
    dead_gate = good.copy()
    dead_gate[3] = 0
    with pytest.raises(CardioError, match=r"gate\(s\) \[4\]"):
        phase.phase_analysis(dead_gate)
    with pytest.raises(CardioError, match="harmonic"):
        phase.phase_analysis(good[:5], harmonics=3)
    with pytest.raises(CardioError, match="shape"):
        phase.phase_analysis(good[0])


def test_ready_phase_map_summary():
    ph = make_phantom(6, pattern="focal", dyssynchrony=120, noise=False)
    res = phase.result_from_phase_map(ph.true_phase, source="map.npy")
    assert res.psd == pytest.approx(ph.true_psd) and res.pbw == pytest.approx(ph.true_pbw)
    with pytest.raises(CardioError, match="map.npy"):
        phase.result_from_phase_map(np.full((4, 4), np.nan), source="map.npy")


@pytest.mark.skipif(not REAL_NM.is_file(), reason=f"real NM DICOM not found at {REAL_NM} (set CARDIO_DATA)")
def test_real_non_gated_nm_file_loads_but_phase_analysis_refuses_it():
    vol = read_volume(REAL_NM)
    assert not vol.gated
    with pytest.raises(CardioError, match="no gates") as err:
        phase.phase_analysis(vol)
    assert REAL_NM.name in str(err.value) and "not gated" in str(err.value)


def test_bullseye_and_histogram_figures(tmp_path):
    from cardio_report.figures import Figure
    from cardio_spect_polar import phase_figures

    res = phase.phase_analysis(make_phantom(7, pattern="lbbb", dyssynchrony=120).volume)
    fig = phase_figures.plot_phase_summary(res, title="phantom")
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.name == "polar"]) == 2
    fig.savefig(tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 10_000
    assert res.perfusion_map is not None
    assert isinstance(phase_figures.plot_bullseye(res.perfusion_map, kind="perfusion"), Figure)
    assert isinstance(phase_figures.plot_bullseye(res.amplitude_map, kind="amplitude"), Figure)
    assert isinstance(phase_figures.plot_phase_histogram((res.phase_map + 200) % 360), Figure)  # wrapped band
    with pytest.raises(CardioError, match="2-D"):
        phase_figures.plot_bullseye(np.zeros(10))
    with pytest.raises(CardioError, match="kind"):
        phase_figures.plot_bullseye(res.phase_map, kind="strain")
