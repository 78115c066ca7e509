"""cardio_imaging.cine: every photometric interpretation and transfer syntax the reader claims, AVI/MP4 round trips,
the one-line errors, sector masking, and the four real echo clips."""
from __future__ import annotations

import numpy as np
import pytest

from cardio import CardioError
from cardio_imaging.cine import Cine, read_cine, sector_mask, to_gray, write_dicom_cine, write_video


def smooth_rgb(t: int = 5, h: int = 32, w: int = 40) -> np.ndarray:
    """Smooth colour gradients that move between frames (lossy codecs and 4:2:2 chroma keep them close)."""
    y, x = np.mgrid[0:h, 0:w].astype(float)
    frames = []
    for k in range(t):
        r = 128 + 100 * np.sin((x + 3 * k) / 9)
        g = 128 + 100 * np.cos((y - 2 * k) / 7)
        b = 60 + 2.5 * x + k
        frames.append(np.stack([r, g, b], -1))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


CLAIMS = [
    ("explicit", "MONOCHROME2", 0), ("explicit", "RGB", 0), ("explicit", "YBR_FULL", 2),
    ("explicit", "YBR_FULL_422", 8), ("explicit", "PALETTE COLOR", 0),
    ("rle", "MONOCHROME2", 0), ("rle", "RGB", 0), ("rle", "YBR_FULL", 2), ("rle", "PALETTE COLOR", 0),
    ("jpeg_baseline", "MONOCHROME2", 4), ("jpeg_baseline", "YBR_FULL", 6), ("jpeg_baseline", "YBR_FULL_422", 8),
]


@pytest.mark.parametrize("syntax,photometric,tol", CLAIMS)
def test_dicom_round_trip(tmp_path, syntax, photometric, tol):
    frames = smooth_rgb()
    path = write_dicom_cine(tmp_path / "c.dcm", frames, 33.3, photometric=photometric, transfer_syntax=syntax)
    cine = read_cine(path)
    assert isinstance(cine, Cine) and cine.source == "dicom" and cine.photometric == photometric
    assert cine.frame_time_ms == pytest.approx(33.3)
    assert cine.frames.dtype == np.uint8
    uid = {"explicit": "1.2.840.10008.1.2.1", "rle": "1.2.840.10008.1.2.5", "jpeg_baseline": "1.2.840.10008.1.2.4.50"}
    assert cine.transfer_syntax == uid[syntax]
    if photometric == "MONOCHROME2":
        assert cine.frames.shape == (5, 32, 40)
        expected = to_gray(frames)
    elif photometric == "PALETTE COLOR":
        # indices are the grey values; the LUT maps them through sqrt / identity / square ramps (16 bit -> 8 bit)
        ramp = np.arange(256) / 255.0
        lut = np.stack([ramp ** 0.5, ramp, ramp ** 2], -1)
        expected = (np.round(lut * 65535).astype(np.uint16) >> 8).astype(np.uint8)[to_gray(frames)]
    else:
        assert cine.frames.shape == (5, 32, 40, 3)
        expected = frames
    err = np.abs(cine.frames.astype(int) - expected.astype(int))
    assert err.mean() <= tol + 0.01, err.mean()
    if tol == 0:
        assert err.max() == 0


def test_unsupported_combination_is_refused(tmp_path):
    with pytest.raises(CardioError, match="PALETTE COLOR"):
        write_dicom_cine(tmp_path / "x.dcm", smooth_rgb(), 20, photometric="PALETTE COLOR",
                         transfer_syntax="jpeg_baseline")


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_round_trip(tmp_path, suffix):
    frames = smooth_rgb(t=12, h=48, w=64)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=25)
    cine = read_cine(path, need_frame_time=True)
    assert cine.source == suffix[1:] and cine.frames.shape == frames.shape
    assert cine.frame_time_ms == pytest.approx(40.0, rel=1e-3)
    assert np.abs(cine.frames.astype(int) - frames.astype(int)).mean() < 6
    # greyscale input is written as three equal channels and reads back close to itself
    gray = to_gray(frames)
    back = to_gray(read_cine(write_video(tmp_path / f"g{suffix}", gray, fps=25)).frames)
    assert np.abs(back.astype(int) - gray.astype(int)).mean() < 4


def test_npy(tmp_path):
    arr = smooth_rgb()
    np.save(tmp_path / "c.npy", arr)
    cine = read_cine(tmp_path / "c.npy")
    assert cine.source == "npy" and cine.frame_time_ms is None and np.array_equal(cine.frames, arr)
    with pytest.raises(CardioError, match="no frame timing"):
        read_cine(tmp_path / "c.npy", need_frame_time=True)


def test_frame_time_sources(tmp_path):
    import pydicom

    path = write_dicom_cine(tmp_path / "c.dcm", smooth_rgb(), 40.0)
    for tag, value, expected in (("FrameTimeVector", [0, 20, 20, 20, 20], 20.0), ("CineRate", 50, 20.0),
                                 ("RecommendedDisplayFrameRate", 25, 40.0)):
        ds = pydicom.dcmread(path)
        del ds.FrameTime
        setattr(ds, tag, value)
        ds.save_as(tmp_path / f"{tag}.dcm")
        assert read_cine(tmp_path / f"{tag}.dcm").frame_time_ms == pytest.approx(expected)
    ds = pydicom.dcmread(path)
    del ds.FrameTime
    ds.save_as(tmp_path / "none.dcm")
    assert read_cine(tmp_path / "none.dcm").frame_time_ms is None
    with pytest.raises(CardioError, match=r"none\.dcm: no frame timing"):
        read_cine(tmp_path / "none.dcm", need_frame_time=True)


def test_errors_name_the_file(tmp_path, monkeypatch):
    import pydicom

    path = write_dicom_cine(tmp_path / "c.dcm", smooth_rgb(), 40.0)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(CardioError, match=r"nopix\.dcm: DICOM has no pixel data"):
        read_cine(tmp_path / "nopix.dcm")

    one = write_dicom_cine(tmp_path / "single.dcm", smooth_rgb(t=1), 40.0)
    with pytest.raises(CardioError, match=r"single\.dcm: 1 frame\(s\), a cine needs at least 2"):
        read_cine(one)
    assert read_cine(one, min_frames=1).frames.shape == (1, 32, 40)

    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(CardioError, match=r"empty\.avi: empty video"):
        read_cine(tmp_path / "empty.avi")
    (tmp_path / "junk.avi").write_bytes(b"RIFF0000AVI garbage" * 10)
    with pytest.raises(CardioError, match=r"junk\.avi"):
        read_cine(tmp_path / "junk.avi")
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(CardioError, match=r"junk\.dcm"):
        read_cine(tmp_path / "junk.dcm")
    with pytest.raises(CardioError, match=r"absent\.dcm: cine file not found"):
        read_cine(tmp_path / "absent.dcm")

    # a JPEG file when no JPEG plug-in is installed: hide them from pydicom's decoder
    jpeg = write_dicom_cine(tmp_path / "j.dcm", smooth_rgb(), 40.0, photometric="YBR_FULL_422",
                            transfer_syntax="jpeg_baseline")
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGBaseline8Bit

    decoder = get_decoder(JPEGBaseline8Bit)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    monkeypatch.setattr(type(decoder), "missing_dependencies",
                        property(lambda self: ["pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"]))
    with pytest.raises(CardioError, match=r"j\.dcm: no installed decoder .*pip install .*pylibjpeg-libjpeg"):
        read_cine(jpeg)


def test_sector_mask_ignores_burned_in_text_and_ecg():
    """A moving fan-shaped sector, static text and a sweeping thin ECG line below it."""
    rng = np.random.default_rng(0)
    t, h, w = 16, 120, 160
    y, x = np.mgrid[0:h, 0:w]
    angle = np.degrees(np.arctan2(x - 80, y - 5))
    sector = (np.hypot(x - 80, y - 5) < 90) & (np.abs(angle) < 35)
    frames = np.zeros((t, h, w), np.uint8)
    for k in range(t):
        frames[k][sector] = rng.integers(30, 200, sector.sum())
        frames[k, 3:12, 2:40] = 255                  # burned-in text block, static
        frames[k, 108 + (k % 3), 10:10 + 8 * k] = 220  # ECG trace drawn frame by frame
    mask = sector_mask(frames)
    assert not mask[3:12, 2:40].any()
    assert not mask[105:115].any()
    inside = sector & (np.hypot(x - 80, y - 5) < 85) & (np.abs(angle) < 32)
    assert mask[inside].mean() > 0.95
    assert (mask & ~sector).sum() < 0.1 * sector.sum()  # the smoothing widens the edge by a few pixels
    # with text only (the sector dark and still), nothing moves and every pixel is kept
    assert sector_mask(np.repeat(frames[:1], 4, 0)).all()


REAL = {
    "color3d_jpeg_baseline.dcm": ((120, 480, 640, 3), "YBR_FULL_422", 33.333),
    "examples_ybr_color.dcm": ((30, 240, 320, 3), "YBR_FULL_422", 33.333),
    "US-PAL-8-10x-echo.dcm": ((10, 430, 600, 3), "PALETTE COLOR", 76.0),
    "US-MONO2-8-8x-execho.dcm": ((8, 120, 128), "MONOCHROME2", 100.0),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_clips(echo_dicom_dir, name):
    shape, photometric, frame_ms = REAL[name]
    cine = read_cine(echo_dicom_dir / name, need_frame_time=True)
    assert cine.frames.shape == shape and cine.frames.dtype == np.uint8
    assert cine.photometric == photometric and cine.frame_time_ms == pytest.approx(frame_ms)
    if name.startswith(("color3d", "examples")):
        assert cine.pixel_spacing_mm == pytest.approx((0.5105, 0.5105), abs=1e-3)
    mask = sector_mask(cine.frames)
    assert mask.shape == shape[1:3] and 0.15 < mask.mean() < 0.9


def test_plax_ecg_trace_is_outside_the_mask(echo_dicom_dir):
    cine = read_cine(echo_dicom_dir / "US-PAL-8-10x-echo.dcm")
    gray = to_gray(cine.frames)
    mask = sector_mask(cine.frames)
    # the ECG trace: bright pixels in rows 365-400 (below the sector, which ends near row 355)
    ecg = np.zeros(mask.shape, bool)
    ecg[365:400] = gray[:, 365:400].max(0) > 60
    assert ecg.sum() > 300
    assert not (mask & ecg).any()
    # the burned-in text at the top left is out too, and the colour-flow box is in
    assert not mask[:120, :120].any()
    assert mask[150:250, 250:330].mean() > 0.9
