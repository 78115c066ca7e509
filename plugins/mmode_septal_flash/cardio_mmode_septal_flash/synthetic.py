"""The embedded synthetic cohort: apical four-chamber-like B-mode sequences of one cardiac cycle and a bit.

Each patient's sequence (T, S, S) uint8 shows, in a sector, the interventricular septum between the
RV (left) and the LV (right), the LV lateral wall and the RV free wall, with speckle. Over the cycle
(R peak to R peak) the septum and the lateral wall move toward each other in systole (after aortic
valve opening, AVO) and back in early diastole. In septal-flash patients the septum also makes a
fast inward-outward motion toward the LV between mitral valve closure (MVC) and AVO, the planted
effect; its amplitude, a config value, is stated in the report. Nothing else differs between the
classes (the flash does not change the later systolic motion). The septum's 62 points are traced
on the end-diastolic frame (the first R peak) from base to apex, with annotation jitter.

Written as sequences/<id>.npy + septum/<id>.csv + labels.csv and read back through the loader a
user's folder goes through (cohort.py). The same layout holds the echo of a multimodal CRT cohort
(write_for_patients, the cardio_write_synthetic hook): there the given patients' latent drive, not
a random draw, sets who has a flash and how large it is (planted_flash), and responder is a column.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from cardio import write_csv
from cardio_fusion.patients import check_multimodal_patients
from cardio_mmode_septal_flash.geometry import N_POINTS
from cardio_mmode_septal_flash.settings import SeptalFlashSettings, Synthetic

GENERATOR_VERSION = 1  # bump when synthesize() changes, so that cached cohorts are rewritten
LEVELS = {"tissue": 45.0, "blood": 10.0, "septum": 150.0, "lateral": 135.0, "rv_wall": 110.0}


def _bump(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """sin^2 from 0 at `start` to 1 in the middle and back to 0 at `end` (0 outside)."""
    u = np.clip((t - start) / max(end - start, 1e-9), 0.0, 1.0)
    return np.sin(np.pi * u) ** 2


def _systole(t: np.ndarray, avo: float, avc: float, relax: float) -> np.ndarray:
    """Systolic excursion profile: 0 before AVO, rising to 1 at aortic valve closure, back to 0 by `relax`."""
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((t - avo) / (avc - avo), 0, 1))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - avc) / (relax - avc), 0, 1))
    return np.where(t < avc, rise, fall)


def _timing(rng: np.random.Generator, frame_time_ms: float) -> dict:
    rr = rng.uniform(750.0, 950.0)
    mvc = rng.uniform(30.0, 60.0)
    avo = mvc + rng.uniform(60.0, 90.0)
    n_cycle = int(round(rr / frame_time_ms))
    pre, post = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    return {"rr": n_cycle * frame_time_ms, "mvc": mvc, "avo": avo, "avc": avo + rng.uniform(0.25, 0.3) * rr,
            "n_cycle": n_cycle, "pre": pre, "post": post}


def sequence(rng: np.random.Generator, size: int, frame_time_ms: float, flash: float | None,
             syn: Synthetic) -> tuple[np.ndarray, np.ndarray, dict]:
    """One patient: (T, size, size) uint8 frames, (62, 2) septum points (x, y), and its timing (ms from R)."""
    s = float(size)
    tm = _timing(rng, frame_time_ms)
    n_frames = tm["pre"] + tm["n_cycle"] + 1 + tm["post"]
    t = (np.arange(n_frames) - tm["pre"]) * frame_time_ms  # ms from the first R peak
    y_base, y_apex = 0.9 * s, rng.uniform(0.14, 0.2) * s
    cx, tilt, bulge = rng.uniform(0.42, 0.48) * s, rng.uniform(-0.12, 0.12), rng.uniform(0.0, 0.03) * s
    span = (np.arange(size) - y_apex) / (y_base - y_apex)  # 0 at the apex, 1 at the base, per image row
    x_sept = cx + tilt * (np.arange(size) - 0.55 * s) - bulge * np.sin(np.pi * np.clip(span, 0, 1))
    lv_w = rng.uniform(0.28, 0.34) * s * np.sqrt(np.clip(span, 0, None))
    rv_w = rng.uniform(0.16, 0.22) * s * np.sqrt(np.clip(span - 0.1, 0, None))
    motion = 0.3 + 0.7 * np.clip(span, 0, 1)  # base and mid septum move more than the apex

    sys = _systole(t, tm["avo"], tm["avc"], tm["avc"] + 0.2 * tm["rr"])
    wobble = gaussian_filter(rng.normal(0, 1, n_frames), 2.0) * syn.motion_noise * s  # beat-to-beat jitter
    d_sept = syn.septal_excursion * s * rng.uniform(0.7, 1.3) * sys + wobble
    window = None
    if flash is not None:
        ivc = tm["avo"] - tm["mvc"]
        start = tm["mvc"] + rng.uniform(0.0, 0.15) * ivc
        window = (start, start + rng.uniform(0.7, 0.85) * ivc)
        d_sept = d_sept + flash * s * _bump(t, *window)
    d_lat = -syn.lateral_excursion * s * rng.uniform(0.7, 1.3) * sys

    xs = x_sept[None, :] + d_sept[:, None] * motion[None, :]  # (T, rows): septum centre, moving toward the LV (+x)
    xl = x_sept[None, :] + lv_w[None, :] + d_lat[:, None] * motion[None, :]
    xr = x_sept[None, :] - rv_w[None, :]
    x = np.arange(size, dtype=float)[None, None, :]
    rows = np.arange(size)[None, :, None]
    th_s, th_l, th_r = rng.uniform(0.06, 0.08) * s, 0.07 * s, 0.04 * s
    img = np.full((n_frames, size, size), LEVELS["tissue"], dtype=np.float32)
    lv = (x > xs[..., None]) & (x < xl[..., None]) & (rows > y_apex)
    rv = (x < xs[..., None]) & (x > xr[..., None]) & (rows > y_apex + 0.08 * s)
    img[lv | rv] = LEVELS["blood"]
    img[np.broadcast_to(np.abs(x - xr[..., None]) < th_r / 2, img.shape)] = LEVELS["rv_wall"]
    img[(np.abs(x - xl[..., None]) < th_l / 2) & (rows > y_apex - 0.03 * s)] = LEVELS["lateral"]
    img[(np.abs(x - xs[..., None]) < th_s / 2) & (rows > y_apex - 0.03 * s)] = LEVELS["septum"]
    img = gaussian_filter(img, (0, 0.8, 1.5))  # the point-spread function: wider across than along the beam
    speckle = gaussian_filter(rng.rayleigh(1.0, img.shape), (0, 0.6, 0.9)) / np.sqrt(np.pi / 2)
    img = img * (1 + syn.speckle * (speckle - 1)) * rng.uniform(0.8, 1.2)
    yy, xx = np.mgrid[0:size, 0:size]
    fan = (np.abs(np.degrees(np.arctan2(xx - s / 2, yy + 2.0))) < 40) & (np.hypot(xx - s / 2, yy) < 0.98 * s)
    frames = np.clip(img * fan, 0, 255).astype(np.uint8)

    ys = np.linspace(y_base - 0.03 * s, y_apex + 0.06 * s, N_POINTS)  # base to apex, end-diastole (d = 0)
    pts = np.stack([np.interp(ys, np.arange(size), x_sept), ys], axis=1) + rng.normal(0, 0.3, (N_POINTS, 2))
    timing = {"cycle_start": tm["pre"], "cycle_end": tm["pre"] + tm["n_cycle"], "mvc_ms": round(tm["mvc"], 1),
              "avo_ms": round(tm["avo"], 1), "sf_start_ms": round(window[0], 1) if window else np.nan,
              "sf_end_ms": round(window[1], 1) if window else np.nan}
    return frames, pts, timing


def _record(rng: np.random.Generator, syn: Synthetic, patient_id: str,
            flash: float | None) -> tuple[dict, np.ndarray, np.ndarray]:
    """One patient's labels.csv row, frames and septum points; `flash` is the planted amplitude (None: no flash)."""
    frames, pts, timing = sequence(rng, syn.size, syn.frame_time_ms, flash, syn)
    row = {"patient_id": patient_id, "septal_flash": int(flash is not None), "frame_time_ms": syn.frame_time_ms,
           **timing}
    return row, frames, pts


def synthesize(syn: Synthetic) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """Yield (patient row, frames, septum points) of the cohort `syn` (the `synthetic` config section)."""
    rng = np.random.default_rng(syn.seed)
    n, n_sf = syn.n_patients, syn.n_sf
    sf = np.zeros(n, dtype=int)
    sf[rng.choice(n, size=n_sf, replace=False)] = 1
    for i in range(n):
        flash = syn.flash_amplitude * rng.uniform(1 - syn.flash_spread, 1 + syn.flash_spread) if sf[i] else None
        yield _record(rng, syn, f"SF{i + 1:04d}", flash)


def write_records(root: Path, items: Iterable[tuple[dict, np.ndarray, np.ndarray]]) -> Path:
    """sequences/<id>.npy, septum/<id>.csv (x, y) and labels.csv (one row per item, in order) under root."""
    root = Path(root)
    (root / "sequences").mkdir(parents=True, exist_ok=True)
    (root / "septum").mkdir(parents=True, exist_ok=True)
    rows = []
    for row, frames, pts in items:
        np.save(root / "sequences" / f"{row['patient_id']}.npy", frames)
        write_csv(root / "septum" / f"{row['patient_id']}.csv",
                  pd.DataFrame({"x": pts[:, 0].round(2), "y": pts[:, 1].round(2)}))
        rows.append(row)
    write_csv(root / "labels.csv", pd.DataFrame(rows))
    return root


def write_cohort(syn: Synthetic, root: Path, progress=None) -> Path:
    """The embedded cohort of `syn` (the `synthetic` section) under root (a new folder)."""
    items = synthesize(syn)
    return write_records(root, progress(items, desc="synthetic A4C sequences", total=syn.n_patients)
                         if progress else items)


def planted_flash(drive: np.ndarray, syn: Synthetic) -> np.ndarray:
    """Flash amplitude per patient from the multimodal cohort's latent drive (0: no flash), monotone in the drive.

    A flash where the drive's normal CDF passes 1 - share (share = n_sf / n_patients, the embedded cohort's SF
    share), its amplitude rising with the drive's rank among those patients from flash_amplitude x (1 - spread) to
    x (1 + spread): for a standard-normal drive, the embedded cohort's share and U[1 - spread, 1 + spread] spread.
    """
    share = syn.n_sf / syn.n_patients
    if share <= 0:
        return np.zeros(len(drive))
    p = ndtr(np.asarray(drive, dtype=float))
    rank = np.clip((p - (1 - share)) / share, 0.0, 1.0)  # 0 at the cut, 1 at the highest drive
    spread = syn.flash_spread
    return np.where(p > 1 - share, syn.flash_amplitude * (1 - spread + 2 * spread * rank), 0.0)


def write_for_patients(patients: pd.DataFrame, dest: Path, seed: int, settings: SeptalFlashSettings) -> Path:
    """The echo of a multimodal CRT cohort (cardio_write_synthetic): one sequence per given patient, drawn as the
    embedded cohort's (the `synthetic` section of the plugin's config) from `seed`, with the flash of
    planted_flash(drive); labels.csv holds responder as given and septal_flash as planted. Returns its path."""
    check_multimodal_patients(patients, "mmode_septal_flash")
    syn = settings.synthetic
    flash = planted_flash(patients["drive"].to_numpy(dtype=float), syn)
    responder = pd.to_numeric(patients["responder"]).astype("Int64")  # 1/0, empty where unknown
    rng = np.random.default_rng(int(seed))

    def items() -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
        for pid, y, amplitude in zip(patients["patient_id"].astype(str), responder, flash):
            row, frames, pts = _record(rng, syn, pid, float(amplitude) if amplitude > 0 else None)
            yield {"patient_id": pid, "responder": y, **row}, frames, pts

    return write_records(Path(dest), items()) / "labels.csv"


def cached_cohort(cache, syn: Synthetic, progress=None) -> Path:
    """The synthetic cohort's folder in a cardio.Cache: written once per config, atomically, then reused."""
    key = dict(sorted(syn.as_dict().items()))
    return cache.get("mmode_septal_flash", key, lambda tmp: write_cohort(syn, tmp, progress),
                     version=GENERATOR_VERSION)
