"""The synthetic echo cohort: beating-heart A4C-, A2C- and PLAX-like cine loops with planted CMR labels.

Each view shows an elliptical left ventricle inside an ultrasound fan, with speckle, burned-in text and a sweeping
ECG trace outside the fan. Regional wall-motion abnormality (WMA) is reduced inward motion of the wall regions whose
AHA segments lie in the affected coronary territory. LGE, T1, T2 and ECV are drawn from WMA and each other with no
visible signal unless `truth.lge_brightness` > 0. A4C and A2C are written as DICOM, PLAX as AVI, and every clip is
read back through cardio_imaging.cine by the loader, like a user's files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import write_csv
from cardio_echo_cmr.settings import EchoSettings, Synthetic
from cardio_fusion.patients import check_multimodal_patients
from cardio_imaging import aha17
from cardio_imaging.cine import write_dicom_cine, write_video

VIEWS = ("A4C", "A2C", "PLAX")
# Wall regions of each view: (centre angle in degrees around the LV centre, image coordinates, 0 = right,
# 90 = down towards the base) and the AHA segments each region shows.
VIEW_REGIONS: dict[str, list[tuple[int, tuple[int, ...]]]] = {
    "A4C": [(180, (3, 9)), (225, (14,)), (315, (16,)), (0, (6, 12)), (270, (17,))],
    "A2C": [(180, (4, 10)), (225, (15,)), (315, (13,)), (0, (1, 7)), (270, (17,))],
    "PLAX": [(270, (2, 8)), (90, (5, 11))],
}
VIEW_SEGMENTS = aha17.VIEW_SEGMENTS  # the regions above draw exactly these segments
assert all(sorted(VIEW_SEGMENTS[v]) == sorted({s for _, segs in r for s in segs}) for v, r in VIEW_REGIONS.items())
DEFAULT_TRUTH = {"wma_fraction": 0.4, "wma_motion_reduction": 0.8, "lge_given_wma": 0.7, "lge_without_wma": 0.1,
                 "lge_brightness": 0.0, "t1_ms": 1020.0, "t1_sd": 35.0, "t1_lge_shift": 25.0, "t2_ms": 53.0,
                 "t2_sd": 4.0, "ecv_pct": 28.0, "ecv_sd": 3.5, "ecv_lge_shift": 3.0}


def truth_text(truth: dict | None) -> str:
    t = {**DEFAULT_TRUTH, **(truth or {})}
    return ("synthetic truth: WMA in {wma_fraction:.0%} of patients (one coronary territory), its wall regions move "
            "{wma_motion_reduction:.0%} less; LGE probability {lge_given_wma} with WMA and {lge_without_wma} without, "
            "LGE brightness {lge_brightness} (0 = invisible); T1 {t1_ms}+/-{t1_sd} ms (+{t1_lge_shift} with LGE), "
            "T2 {t2_ms}+/-{t2_sd} ms (no planted effect), ECV {ecv_pct}+/-{ecv_sd}% (+{ecv_lge_shift} with LGE); "
            "tissue labels have no visible signal of their own").format(**t)


def render_view(view: str, affected: set[int], rng: np.random.Generator, *, n_frames: int, height: int,
                width: int, reduction: float, lge_brightness: float = 0.0, lge: bool = False,
                period: float = 16.0, contraction: float = 0.3) -> np.ndarray:
    """(T, H, W) uint8 cine of one view: fan, LV wall moving with the cardiac phase, text and ECG outside.
    contraction: the share by which a normal wall moves inward at end-systole (the cavity's area falls by
    1 - (1 - contraction)^2)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    apex_x, apex_y = width / 2, 2.0
    r_fan = np.hypot(x - apex_x, y - apex_y)
    ang_fan = np.degrees(np.arctan2(x - apex_x, y - apex_y))
    fan = (r_fan < 0.8 * height) & (np.abs(ang_fan) < 38)
    cx, cy = width / 2, 0.42 * height
    ax_long, ax_short = (0.28 * height, 0.15 * width) if view != "PLAX" else (0.14 * height, 0.28 * width)
    theta = np.degrees(np.arctan2(y - cy, x - cx)) % 360
    # motion amplitude per pixel angle: 1 in normal regions, 1 - reduction in affected ones (smooth by angle)
    amp = np.ones_like(theta)
    for centre, segs in VIEW_REGIONS[view]:
        if affected.intersection(segs):
            d = np.abs((theta - centre + 180) % 360 - 180)
            amp -= reduction * np.clip(1 - d / 50, 0, 1)
    rho = np.hypot((x - cx) / ax_short, (y - cy) / ax_long)
    phase0 = rng.uniform(0, 2 * np.pi)
    speckle_bg = rng.uniform(0.15, 0.35, (height, width))
    frames = np.zeros((n_frames, height, width), np.float32)
    for t in range(n_frames):
        squeeze = 0.5 * (1 - np.cos(2 * np.pi * t / period + phase0))  # 0 (diastole) .. 1 (systole)
        endo = 1.0 - contraction * amp * squeeze
        wall = (rho > endo) & (rho < endo + 0.35)
        img = speckle_bg * rng.uniform(0.7, 1.0, (height, width))
        img[wall] = rng.uniform(0.55, 0.95, int(wall.sum()))
        if lge and lge_brightness:
            img[wall & (amp < 1)] += lge_brightness
        img[rho <= endo] *= 0.25
        img[~fan] = 0
        frames[t] = img
    frames = np.clip(frames * 255, 0, 255).astype(np.uint8)
    frames[:, 2:6, 2:int(width * 0.25)] = 230                          # burned-in text, static
    ecg_y = height - 4
    for t in range(n_frames):                                           # ECG trace sweeping along the bottom
        sweep = int((t + 1) / n_frames * (width - 8))
        frames[t, ecg_y - 1:ecg_y + 1, 4:4 + sweep] = 200
    return frames


#: The baseline characteristics drawn for Table 1, near the paper's cohort (its Table 1: age 56.0 (17.9), 41.8%
#: female, BMI 26.2, hypertension 37.7%, hyperlipidemia 28.5%, diabetes 16.5%), from a stream of their own (the clips
#: and labels are the same bytes with or without them) and independent of every finding: they describe, never predict.
BASELINE_STREAM = 56


def baseline_characteristics(n_patients: int, seed: int) -> list[dict]:
    """Each patient's age, sex, BMI and risk factors, drawn as the paper's cohort reports them."""
    rng = np.random.default_rng([int(seed), BASELINE_STREAM])
    age = np.clip(rng.normal(56.0, 17.9, n_patients), 18, 95)
    bmi = np.clip(rng.lognormal(np.log(25.5), 0.22, n_patients), 15, 60)
    flags = {k: rng.random(n_patients) < p for k, p in (("female", 0.418), ("hypertension", 0.377),
                                                          ("hyperlipidemia", 0.285), ("diabetes", 0.165))}
    return [{"age": round(float(age[i]), 1), "bmi": round(float(bmi[i]), 1), **{k: int(v[i]) for k, v in flags.items()}}
            for i in range(n_patients)]


def write_cohort(root: Path, n_patients: int, seed: int, *, n_frames: int = 32, height: int = 64, width: int = 80,
                 frame_time_ms: float | tuple[float, ...] = 33.3, truth: dict | None = None,
                 segments: bool = False, views: tuple[str, ...] = VIEWS) -> Path:
    """labels.csv (one row per clip: here one clip per view of each patient's one study; SCHEMA of cohort.py) and
    the videos under videos/; returns root.

    frame_time_ms: one value, or a tuple the patients take in turn (patient i: item i % len); every video lasts
    n_frames x 33.3 ms with a heartbeat every 16 x 33.3 ms, so a 60 fps video has twice the frames of a 30 fps one.
    segments: the per-view labels as the 17-segment report (wma_s1..17, lge_s1..17) instead of wma_view/lge_view.
    views: the views written (a run configured for fewer views reads a cohort of those only).
    """
    t = {**DEFAULT_TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    territories = list(aha17.TERRITORIES)
    baseline = baseline_characteristics(n_patients, seed)
    for i in range(n_patients):
        pid = f"P{i:04d}"
        wma = rng.random() < t["wma_fraction"]
        affected = set(aha17.TERRITORIES[territories[rng.integers(len(territories))]]) if wma else set()
        lge = rng.random() < (t["lge_given_wma"] if wma else t["lge_without_wma"])
        t1 = rng.normal(t["t1_ms"] + t["t1_lge_shift"] * lge, t["t1_sd"])
        t2 = rng.normal(t["t2_ms"], t["t2_sd"])
        ecv = rng.normal(t["ecv_pct"] + t["ecv_lge_shift"] * lge, t["ecv_sd"])
        ft = frame_time_ms[i % len(frame_time_ms)] if isinstance(frame_time_ms, tuple) else frame_time_ms
        files = _write_clips(root, pid, views, affected, lge, rng, t, n_frames=n_frames, height=height, width=width,
                             frame_time_ms=ft)
        for view, name in files.items():
            view_wma = bool(affected.intersection(VIEW_SEGMENTS[view]))
            row = {"patient_id": pid, "study_id": f"S{i:04d}", "view": view, "file": name,
                   "wma_view": int(view_wma), "wma_global": int(wma), "lge_view": int(lge and view_wma),
                   "lge_global": int(lge), "t1_ms": round(float(t1), 1), "t2_ms": round(float(t2), 1),
                   "ecv_pct": round(float(ecv), 2), **baseline[i]}
            if segments:  # LGE lies in the hypokinetic territory
                del row["wma_view"], row["lge_view"]
                row.update({f"wma_s{k}": int(k in affected) for k in range(1, 18)})
                row.update({f"lge_s{k}": int(lge and k in affected) for k in range(1, 18)})
            rows.append(row)
    write_csv(root / "labels.csv", pd.DataFrame(rows))
    return root


def _write_clips(root: Path, pid: str, views: tuple[str, ...], affected: set[int], lge: bool,
                 rng: np.random.Generator, t: dict, *, n_frames: int, height: int, width: int,
                 frame_time_ms: float, uid_seed: str = "") -> dict[str, str]:
    """One clip per view of a patient's study under root/videos/ (A4C as DICOM, A2C as RLE DICOM, PLAX as AVI):
    {view: its path relative to root}. uid_seed: the DICOM UIDs derive from it, the patient and the view (the same
    call writes the same bytes); empty: random UIDs."""
    per_beat = 33.3 / frame_time_ms  # frames of this video per frame of a 30 fps one
    out = {}
    for view in views:
        frames = render_view(view, affected, rng, n_frames=round(n_frames * per_beat), height=height,
                             width=width, reduction=t["wma_motion_reduction"],
                             lge_brightness=t["lge_brightness"], lge=lge, period=16.0 * per_beat)
        name = f"{pid}_{view}" + (".avi" if view == "PLAX" else ".dcm")
        if view == "PLAX":
            write_video(root / "videos" / name, frames, fps=1000.0 / frame_time_ms)
        else:
            write_dicom_cine(root / "videos" / name, frames, frame_time_ms,
                             transfer_syntax="rle" if view == "A2C" else "explicit",
                             uid_entropy=(uid_seed, pid, view) if uid_seed else ())
        out[view] = f"videos/{name}"
    return out


CRT_STREAM = 41  # the multimodal writer's random stream: another cohort than write_cohort's for the same seed


def planted_wma(drive: np.ndarray, truth: dict) -> np.ndarray:
    """Who has WMA in the multimodal cohort, from each patient's latent drive: a drive below the normal quantile of
    `wma_fraction` (a standard-normal drive gives the embedded cohort's WMA share); monotone, a higher drive never
    looks less like a responder."""
    from scipy.special import ndtri

    fraction = float(truth["wma_fraction"])
    cut = ndtri(fraction) if 0 < fraction < 1 else (np.inf if fraction >= 1 else -np.inf)
    return np.asarray(drive, dtype=float) < cut


def planted_text(truth: dict, views: tuple[str, ...]) -> str:
    t = {**DEFAULT_TRUTH, **(truth or {})}
    return (f"WMA, a coronary territory whose wall regions move {t['wma_motion_reduction']:.0%} less, in "
            "every patient whose drive lies below the standard normal's "
            f"{t['wma_fraction']:.0%} quantile, and in no other; normal wall motion otherwise. The drive reaches the "
            f"clips ({', '.join(views)}) only through it (a higher drive: normal motion, more like a responder); the "
            "territory, the LGE, T1, T2 and ECV labels and the speckle are drawn as the embedded cohort draws them")


def write_for_patients(patients: pd.DataFrame, dest: Path, seed: int, s: EchoSettings) -> Path:
    """The echo of a multimodal CRT cohort (cardio_write_synthetic): one study per given patient with a clip of each
    configured view (`echo_cmr.views`), drawn as the embedded cohort's (`echo_cmr.synthetic`: frames, size, truth)
    from `seed`, WMA where planted_wma(drive); labels.csv holds responder as given beside the CMR columns, so that
    `--set label=responder` with a responder target reads it (and the default CMR targets still do), and truth.json
    states the planted effect. The same arguments write the same bytes. Returns labels.csv's path."""
    from cardio import CardioError
    from cardio_imaging import aha17

    check_multimodal_patients(patients, "echo_cmr")
    syn, views = s.synthetic, s.views
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise CardioError(f"echo_cmr.views {unknown}: the synthetic writer draws {list(VIEWS)}")
    t = {**DEFAULT_TRUTH, **syn.truth.as_dict()}
    wma = planted_wma(patients["drive"].to_numpy(dtype=float), t)
    responder = pd.to_numeric(patients["responder"]).astype("Int64")  # 1/0, empty where unknown
    rng = np.random.default_rng([int(seed), CRT_STREAM])
    root = Path(dest).expanduser()
    (root / "videos").mkdir(parents=True, exist_ok=True)
    territories, rows = list(aha17.TERRITORIES), []
    for pid, y, has in zip(patients["patient_id"].astype(str), responder, wma):
        affected = set(aha17.TERRITORIES[territories[rng.integers(len(territories))]]) if has else set()
        lge = bool(rng.random() < (t["lge_given_wma"] if has else t["lge_without_wma"]))
        cmr = {"wma_global": int(has), "lge_global": int(lge),
               "t1_ms": round(float(rng.normal(t["t1_ms"] + t["t1_lge_shift"] * lge, t["t1_sd"])), 1),
               "t2_ms": round(float(rng.normal(t["t2_ms"], t["t2_sd"])), 1),
               "ecv_pct": round(float(rng.normal(t["ecv_pct"] + t["ecv_lge_shift"] * lge, t["ecv_sd"])), 2)}
        files = _write_clips(root, pid, views, affected, lge, rng, t, n_frames=syn.n_frames, height=syn.height,
                             width=syn.width, frame_time_ms=33.3,
                             uid_seed=f"cardio echo_cmr multimodal {int(seed)}")
        for view, name in files.items():
            view_wma = bool(affected.intersection(VIEW_SEGMENTS[view]))
            rows.append({"patient_id": pid, "study_id": pid, "view": view, "file": name, "responder": y,
                         "wma_view": int(view_wma), "lge_view": int(lge and view_wma), **cmr})
    write_csv(root / "labels.csv", pd.DataFrame(rows))
    truth = {"generator": "cardio echo_cmr multimodal cohort", "seed": int(seed), "stream": CRT_STREAM,
             "planted": planted_text(t, views), "wma_patients": int(wma.sum()), "n_patients": len(patients)}
    (root / "truth.json").write_text(json.dumps(truth, indent=1))
    return root / "labels.csv"


def write_echonet(root: Path, n_videos: int, seed: int, *, n_frames: int = 40, size: int = 40, fps: float = 50.0,
                  splits: tuple[float, float] = (0.6, 0.8)) -> Path:
    """An EchoNet-Dynamic-layout folder: FileList.csv (FileName, EF, ESV, EDV, FrameHeight, FrameWidth, FPS,
    NumberOfFrames, Split; FileName without .avi, as the dataset has it), VolumeTracings.csv (volume_tracings) and
    Videos/<FileName>.avi (written by OpenCV), A4C-like loops
    whose cavity area falls by EF between end-diastole and end-systole (EF drawn uniformly 25-75%, the planted
    truth). The first `splits[0]` of the videos are TRAIN, up to `splits[1]` VAL, the rest TEST; returns root."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "Videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_videos):
        ef = float(rng.uniform(25, 75))
        edv = float(rng.uniform(80, 160))
        frames = render_view("A4C", set(), rng, n_frames=n_frames, height=size, width=size, reduction=0.0,
                             period=16.0 * fps / 30.0, contraction=1.0 - np.sqrt(1.0 - ef / 100.0))
        name = f"0X{seed:04X}{i:06X}"
        write_video(root / "Videos" / f"{name}.avi", frames, fps=fps)
        split = "TRAIN" if i < round(n_videos * splits[0]) else "VAL" if i < round(n_videos * splits[1]) else "TEST"
        rows.append({"FileName": name, "EF": round(ef, 2), "ESV": round(edv * (1 - ef / 100), 2), "EDV": round(edv, 2),
                     "FrameHeight": size, "FrameWidth": size, "FPS": fps, "NumberOfFrames": n_frames, "Split": split})
    write_csv(root / "FileList.csv", pd.DataFrame(rows))
    write_csv(root / "VolumeTracings.csv", pd.DataFrame(volume_tracings(rows)))
    return root


def volume_tracings(files: list[dict]) -> list[dict]:
    """VolumeTracings.csv as EchoNet-Dynamic has it (FileName with .avi, X1, Y1, X2, Y2, Frame): per video, 21 chords
    across the cavity at end-diastole (frame 0) and at end-systole, the first a long-axis line, the chord lengths
    shrinking by EF as the loop's area does. The EF profile reads only FileList.csv and the videos; the tracings are
    EchoNet's segmentation labels, written so that the folder is the real layout."""
    out = []
    for f in files:
        size, n = float(f["FrameHeight"]), int(f["NumberOfFrames"])
        for frame, scale in ((0, 1.0), (min(n - 1, round(8 * f["FPS"] / 30.0)), np.sqrt(1 - f["EF"] / 100.0))):
            half, top, bottom = 0.2 * size * scale, 0.25 * size, 0.25 * size + 0.5 * size * scale
            out.append({"FileName": f"{f['FileName']}.avi", "X1": size / 2, "Y1": top, "X2": size / 2, "Y2": bottom,
                        "Frame": frame})
            for y in np.linspace(top, bottom, 20):
                w = half * np.sqrt(max(0.0, 1 - ((y - top) / (bottom - top) * 2 - 1) ** 2))
                out.append({"FileName": f"{f['FileName']}.avi", "X1": round(size / 2 - w, 2), "Y1": round(y, 2),
                            "X2": round(size / 2 + w, 2), "Y2": round(y, 2), "Frame": frame})
    return out


def cached_cohort(cache, syn: Synthetic, views: tuple[str, ...] = VIEWS) -> Path:
    """The synthetic cohort folder in ctx.cache with a clip of each of `views` a study, written once per setting."""
    key = {k: v for k, v in syn.as_dict().items() if k != "truth"}  # n_patients, seed, n_frames, height, width
    key["truth"] = {**DEFAULT_TRUTH, **syn.truth.as_dict()}
    key["baseline"] = BASELINE_STREAM  # the cohorts written before Table 1's characteristics lack them
    if tuple(views) != VIEWS:
        key["views"] = list(views)
    return cache.get("echo_cmr_synthetic", key,
                     lambda tmp: write_cohort(tmp, syn.n_patients, syn.seed, n_frames=syn.n_frames, height=syn.height,
                                              width=syn.width, truth=syn.truth.as_dict(), views=tuple(views)))
