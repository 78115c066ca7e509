"""The M-mode line (normal to the mid-basal septum, toward the LV), both reslice paths, the variants, augmentation."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np

from cardio import CardioError
from cardio_mmode_septal_flash import geometry, preprocess
from cardio_mmode_septal_flash.cohort import Sequence
from cardio_mmode_septal_flash.mmode import mmodes_torch, mmodes_vtk
from cardio_mmode_septal_flash.settings import MMode


def _septum(x0: float = 50.0, tilt: float = 0.0, base_y: float = 100.0, apex_y: float = 20.0) -> np.ndarray:
    """62 points from the base (bottom of the image) to the apex (top), x = x0 + tilt * (base_y - y)."""
    y = np.linspace(base_y, apex_y, geometry.N_POINTS)
    return np.stack([x0 + tilt * (base_y - y), y], axis=1)


def test_normal_points_toward_the_lv_whatever_the_point_order():
    pts = _septum()
    np.testing.assert_allclose(geometry.septal_normal(pts, "right"), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(geometry.septal_normal(pts[::-1], "right"), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(geometry.septal_normal(pts, "left"), [-1.0, 0.0], atol=1e-12)
    tilted = _septum(tilt=0.5)  # the septum leans right toward the apex
    n = geometry.septal_normal(tilted, "right")
    tangent = tilted[20] - tilted[10]
    assert abs(n @ tangent) < 1e-9 and n[0] > 0 and np.hypot(*n) == pytest.approx(1.0)
    np.testing.assert_allclose(n, np.array([2.0, 1.0]) / np.sqrt(5.0), atol=1e-9)  # tangent (1, -2)/sqrt(5)
    with pytest.raises(CardioError, match="lv_side"):
        geometry.septal_normal(pts, "up")


def test_the_papers_10th_and_20th_points_set_the_normal_and_the_15th_the_line():
    pts = _septum(x0=60.0)
    pts[[10, 15, 20], 0] += [9.0, 5.0, -9.0]  # the 11th, 16th and 21st points moved: the paper uses none of them
    np.testing.assert_allclose(geometry.septal_normal(pts, "right"), [1.0, 0.0], atol=1e-12)
    line = geometry.mmode_line(pts, width=128)
    np.testing.assert_allclose(line.centre, pts[14])
    assert [geometry.mmode_line(pts, width=128, offset=k).centre.tolist() for k in (-5, 5)] == [pts[9].tolist(),
                                                                                              pts[19].tolist()]


def test_line_crosses_the_septal_point_from_rv_to_lv():
    pts = _septum(x0=60.0, tilt=0.2)
    line = geometry.mmode_line(pts, width=128, length=0.5, rv_share=0.25)
    np.testing.assert_allclose(line.centre, pts[geometry.CENTRE_POINT])
    assert line.length == pytest.approx(64.0)
    np.testing.assert_allclose(line.centre - line.start, 16.0 * line.normal)
    assert line.start[0] < line.centre[0] < line.end[0]  # RV (left) -> septum -> LV (right)
    shifted = geometry.mmode_line(pts, width=128, offset=-5)
    np.testing.assert_allclose(shifted.centre, pts[9])  # the 10th point: five above the 15th
    np.testing.assert_allclose(shifted.normal, line.normal)  # the offsets keep the normal


def test_a_calibrated_line_is_length_mm_long_and_pixels_are_the_fallback():
    pts = _septum(x0=60.0, tilt=0.5)  # normal (2, 1) / sqrt(5): a step along it crosses columns and rows
    iso = geometry.mmode_line(pts, width=128, length=0.5, spacing_mm=(0.5, 0.5), length_mm=40.0)
    assert iso.length == pytest.approx(80.0) and iso.length_mm == 40.0
    aniso = geometry.mmode_line(pts, width=128, spacing_mm=(0.25, 0.5), length_mm=40.0)  # rows 0.25 mm, columns 0.5
    step = (aniso.end - aniso.start) / aniso.length
    mm = aniso.length * np.hypot(0.5 * step[0], 0.25 * step[1])
    assert mm == pytest.approx(40.0) and aniso.length == pytest.approx(40.0 / np.hypot(0.5 * 2, 0.25) * np.sqrt(5))
    uncalibrated = geometry.mmode_line(pts, width=128, length=0.5, spacing_mm=None, length_mm=40.0)
    assert uncalibrated.length == pytest.approx(64.0) and uncalibrated.length_mm is None
    np.testing.assert_allclose(iso.normal, uncalibrated.normal)


def _moving_edge(n_frames: int = 30, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A bright half-plane x > edge(t) whose edge moves as 40 + 12 sin(2 pi t / 29): frames and edge positions."""
    t = np.arange(n_frames)
    edge = 40.0 + 12.0 * np.sin(2 * np.pi * t / 29)
    x = np.arange(size)
    # a linear ramp one pixel wide around the edge: the exact sub-pixel position survives interpolation
    frames = np.clip(x[None, None, :] - edge[:, None, None] + 0.5, 0, 1) * 200.0 + 20.0
    return np.broadcast_to(frames, (n_frames, size, size)).round().astype(np.uint8).copy(), edge


def test_reslice_follows_a_known_moving_edge_and_both_paths_agree():
    frames, edge = _moving_edge()
    pts = _septum(x0=40.0, base_y=90.0, apex_y=5.0)
    line = geometry.mmode_line(pts, width=96, length=0.75, rv_share=0.25)  # horizontal, x from 22 to 94
    t0, t1 = 2, 27
    size = (360, 250)
    vtk_mm = mmodes_vtk(frames, [line], t0, t1, size)[0]
    fast = mmodes_torch(frames, [[line]], [(t0, t1)], size)[0, 0]
    assert vtk_mm.shape == fast.shape == size
    assert np.abs(vtk_mm.astype(int) - fast.astype(int)).max() <= 1
    # expected edge depth per column: the edge at the column's instant, linearly between frames
    tau = np.linspace(t0, t1, size[1])
    x_edge = np.interp(tau, np.arange(len(edge)), edge)
    depth_per_px = (size[0] - 1) / line.length
    expected = (x_edge - line.start[0]) * depth_per_px
    for mm in (vtk_mm, fast):
        found = (mm.astype(float) >= 120).argmax(axis=0)  # first sample past the half level
        # within a pixel of the truth (the frames themselves are rounded to whole grey levels)
        assert np.abs(found - expected).max() <= depth_per_px + 1
    assert expected.max() - expected.min() > 100  # the edge really moves across the M-mode


def test_lines_leaving_the_image_agree_with_vtk():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 40, 50)).astype(np.uint8)
    line = geometry.Line(np.array([-15.0, 3.0]), np.array([60.0, 45.0]), np.zeros(2), np.zeros(2))
    a = mmodes_vtk(frames, [line], 1, 10, (80, 60))[0]
    b = mmodes_torch(frames, [[line]], [(1, 10)], (80, 60))[0, 0]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1 and (a == 0).any()


def test_a_batch_spread_over_threads_equals_one_sequence_at_a_time():
    """Two threads take whole sequences (each op on one thread); the M-modes are those of one call per sequence, and
    torch's thread count is restored."""
    import torch

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 14, 40, 50)).astype(np.uint8)
    lines = [[geometry.Line(np.array([5.0 + i, 3.0 + j]), np.array([45.0, 30.0 + i]), np.zeros(2), np.zeros(2))
              for j in range(2)] for i in range(3)]
    cycles = [(1, 10), (2, 13), (0, 9)]
    one_by_one = np.stack([mmodes_torch(frames[i], [lines[i]], [cycles[i]], (30, 20))[0] for i in range(3)])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert np.array_equal(mmodes_torch(frames, lines, cycles, (30, 20)), one_by_one)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_offline_augmentation_gives_eleven_mmodes_along_the_septum():
    frames, _ = _moving_edge(20, 64)
    seq = Sequence(frames=frames, frame_time_ms=33.0, cycle=(1, 18), points=_septum(30.0, base_y=60.0, apex_y=4.0),
                   path=Path("s.avi"), spacing_mm=None)
    mcfg = MMode(offsets=5, length=0.6, rv_share=0.25, size=(50, 40), backend="torch", length_mm=None)
    mm = preprocess.patient_mmodes(seq, mcfg, "right")
    assert mm.shape == (11, 50, 40)
    vtk_mm = preprocess.patient_mmodes(seq, replace(mcfg, backend="vtk"), "right")
    assert np.abs(mm.astype(int) - vtk_mm.astype(int)).max() <= 1
    assert preprocess.patient_mmodes(seq, replace(mcfg, offsets=2), "right").shape[0] == 5
    with pytest.raises(CardioError, match="backend"):
        preprocess.patient_mmodes(seq, replace(mcfg, backend="numpy"), "right")


def test_cropped_variant_is_the_upper_half_and_first_half_of_the_cycle():
    mm = np.zeros((100, 80), np.uint8)
    mm[:50, :40] = 200  # upper half in depth, first half in time
    assert (preprocess.variant(mm, "cropped", 16) == 200).all()
    full = preprocess.variant(mm[None, None], "full", 20)
    assert full.shape == (1, 1, 20, 20) and full[0, 0, :10, :10].min() == 200 and full[0, 0, 10:, 10:].max() == 0
    with pytest.raises(CardioError, match="variant"):
        preprocess.variant(mm, "zoomed", 16)
