"""The embedded synthetic cohort: patients with known risk factors and flow reserve, and their polar maps.

Every map is a (3, size, size) bull's-eye image (rest perfusion %, stress perfusion %, myocardial
flow reserve) laid out on the AHA 17-segment model of `cardio.aha17` (apex in the centre, anterior
up, septum left). It is written as .npy maps plus labels.csv and read back through the loader a
user folder goes through (cohort.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from cardio import aha17

N_SEGMENTS = aha17.N_SEGMENTS
SEGMENT_TASKS = [f"mfr_seg{i:02d}" for i in range(1, N_SEGMENTS + 1)]
RISK_TASKS = ["impaired_mfr", "sex_male", "smoking", "hypertension", "dyslipidemia", "diabetes"]
CHANNELS = ("rest", "stress", "mfr")
IMPAIRED_MFR = 2.0  # global MFR below this is impaired
GENERATOR_VERSION = 3  # bump when synthesize() changes, so that cached cohorts are rewritten
# The planted effects (config `perfusion.truth`; these are its defaults). Log-MFR effects are per patient;
# attenuation and septal brightness are % of the rest-map maximum; smoking_texture scales a zero-mean patchiness
# that no segment mean can see (0 by default: a positive value plants a "ResNet sees what the 17-segment
# regression cannot" result, the paper's own conclusion, into the cohort).
DEFAULT_TRUTH = {"mfr_median": 2.6, "log_mfr_sd": 0.18, "log_mfr_diabetes": -0.22, "log_mfr_smoking": -0.06,
                 "log_mfr_hypertension": -0.10, "log_mfr_dyslipidemia": -0.08, "log_mfr_female": 0.08,
                 "log_mfr_age_per_year": -0.008, "defect_fraction": 0.33, "attenuation_sex_typical": 10.0,
                 "attenuation_other": 4.0, "septum_hypertension": 2.5, "smoking_texture": 0.0}


def truth_of(truth: dict | None) -> dict:
    """The planted effects: DEFAULT_TRUTH updated by `truth`; an unknown key or a non-number is refused."""
    from cardio import CardioError

    out = dict(DEFAULT_TRUTH)
    for k, v in (truth or {}).items():
        if k not in DEFAULT_TRUTH:
            raise CardioError(f"perfusion.truth.{k} is not a planted effect; use one of {sorted(DEFAULT_TRUTH)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise CardioError(f"perfusion.truth.{k} must be a finite number, got {v!r}")
        out[k] = float(v)
    if not 0 <= out["defect_fraction"] <= 1 or out["mfr_median"] <= 0 or out["log_mfr_sd"] < 0:
        raise CardioError("perfusion.truth: defect_fraction must lie in [0, 1], mfr_median > 0, log_mfr_sd >= 0")
    return out


def truth_text(truth: dict | None) -> str:
    """The planted effects as the report states them ("synthetic truth: ...")."""
    t = truth_of(truth)
    return ("synthetic truth: log global MFR = log({mfr_median:g}) {log_mfr_diabetes:+g} diabetes "
            "{log_mfr_smoking:+g} smoking {log_mfr_hypertension:+g} hypertension {log_mfr_dyslipidemia:+g} "
            "dyslipidemia {log_mfr_female:+g} female {log_mfr_age_per_year:+g} per year of age over 63 "
            "+ N(0, {log_mfr_sd:g}); impaired MFR = global MFR < 2.0; a territorial flow defect in a share "
            "{defect_fraction:g} of patients; rest attenuation up to {attenuation_sex_typical:g}% in the "
            "sex-typical wall (anterior in women, inferior in men) and up to {attenuation_other:g}% in the other; "
            "septal brightness up to {septum_hypertension:g}% more in hypertension; smoking texture "
            "{smoking_texture:g} (invisible to segment means)").format(**t)


def _wall(ang: np.ndarray, r: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth bump of the myocardium around angle `centre` (degrees), away from the apex."""
    return np.exp(-0.5 * (((ang - centre + 180) % 360 - 180) / width) ** 2) * (r > 0.3)


def synthesize(n: int, size: int, seed: int, truth: dict | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients with known risk factors and flow reserve, and their (n, 3, size, size) polar maps.

    Effects built in (sizes: `truth`, see DEFAULT_TRUTH), so a model can be checked against them: MFR
    falls with diabetes, smoking, hypertension, dyslipidemia and age, women have a higher MFR; a third of patients has a
    territorial flow defect; rest perfusion shows sex-specific attenuation (anterior wall in women,
    inferior wall in men); hypertension brings a relatively brighter septum (hypertrophy); smokers
    may have a patchier rest perfusion (a texture, not a segment-mean effect; 0 by default). Every effect has
    patient-to-patient variability and look-alikes in other patients (attenuation artefacts,
    some septal brightness, some patchiness), so that no risk factor is trivially readable.
    """
    t = truth_of(truth)
    rng = np.random.default_rng(seed)
    seg = aha17.image_labels(size)
    inside = seg > 0
    age = np.clip(rng.normal(63, 10, n), 30, 90)
    male = rng.random(n) < 0.6
    smoking = rng.random(n) < 0.3
    htn = rng.random(n) < 0.5
    dyslip = rng.random(n) < np.where(htn, 0.6, 0.4)
    diabetes = rng.random(n) < np.where(htn, 0.35, 0.15)
    log_mfr = (np.log(t["mfr_median"]) + t["log_mfr_diabetes"] * diabetes + t["log_mfr_smoking"] * smoking
               + t["log_mfr_hypertension"] * htn + t["log_mfr_dyslipidemia"] * dyslip
               + t["log_mfr_age_per_year"] * (age - 63) + t["log_mfr_female"] * ~male
               + rng.normal(0, t["log_mfr_sd"], n))
    global_mfr = np.exp(log_mfr)
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    r = np.hypot(xx - c, yy - c) / (size / 2.0)
    ang = (np.degrees(np.arctan2(c - yy, xx - c)) + 360.0) % 360.0
    anterior, inferior, septal = _wall(ang, r, 90, 35.0), _wall(ang, r, 270, 35.0), _wall(ang, r, 180, 40.0)
    maps = np.zeros((n, 3, size, size), dtype=np.float32)
    seg_mfr = np.zeros((n, N_SEGMENTS))
    territories = list(aha17.TERRITORIES)
    for i in range(n):
        factor = np.exp(rng.normal(0, 0.06, N_SEGMENTS))
        if rng.random() < t["defect_fraction"]:
            terr = aha17.TERRITORIES[rng.choice(territories)]
            factor[np.asarray(terr) - 1] *= rng.uniform(0.5, 0.8)
        seg_mfr[i] = global_mfr[i] * factor
        mfr_px = np.where(inside, seg_mfr[i][np.clip(seg, 1, None) - 1], 0.0)
        mfr_px = gaussian_filter(mfr_px, 0.8) + rng.normal(0, 0.05, (size, size))
        rest = 80.0 + rng.normal(0, 2.0, (size, size))
        # soft-tissue attenuation of variable depth: breast (anterior) mostly in women, diaphragm
        # (inferior) mostly in men, and an attenuation artefact at a random site in anyone
        typical, other = t["attenuation_sex_typical"], t["attenuation_other"]
        rest -= (rng.uniform(0, other if male[i] else typical) * anterior
                 + rng.uniform(0, typical if male[i] else other) * inferior)
        site = rng.uniform(0, 360)
        rest -= rng.uniform(0, 6) * _wall(ang, r, site, 30.0)
        # hypertrophy in hypertension: a relatively brighter septum, of variable degree
        rest += (rng.uniform(0, 2) + rng.uniform(0, t["septum_hypertension"]) * htn[i]) * septal
        rest = gaussian_filter(rest, 0.7)
        flow = np.clip(mfr_px / max(mfr_px[inside].max(), 1e-6), 0.1, None) ** 0.7
        # Both maps are scaled to 100% at the maximum of the texture-free map, so that the texture
        # below changes the pattern, not the segment means.
        rest_scale, stress_scale = rest[inside].max(), (rest * flow)[inside].max()
        # patchy uptake, more so in smokers: a zero-mean texture rather than a segment-level change
        patchiness = rng.uniform(0.6, 1.6) + t["smoking_texture"] * smoking[i]
        rest = rest + gaussian_filter(rng.normal(0, 3.0, (size, size)), 1.0) * patchiness * 2.0
        stress = rest * flow / max(stress_scale, 1e-6) * 100.0 + rng.normal(0, 1.5, (size, size))
        rest = rest / max(rest_scale, 1e-6) * 100.0
        for ch, m in enumerate((rest, stress, mfr_px)):
            maps[i, ch] = np.where(inside, m, 0.0)
    table = pd.DataFrame({
        "patient_id": [f"PF{i + 1:04d}" for i in range(n)], "age": age.round(1), "sex_male": male.astype(int),
        "smoking": smoking.astype(int), "hypertension": htn.astype(int), "dyslipidemia": dyslip.astype(int),
        "diabetes": diabetes.astype(int)})
    for s, name in enumerate(SEGMENT_TASKS):
        table[name] = seg_mfr[:, s].round(4)
    table["global_mfr"] = seg_mfr.mean(axis=1).round(4)
    table["impaired_mfr"] = (table["global_mfr"] < IMPAIRED_MFR).astype(int)
    return table, maps


def write_cohort(table: pd.DataFrame, maps: np.ndarray, root: Path) -> Path:
    """Write maps/<patient_id>.npy (3, H, W: rest, stress, MFR) and labels.csv under root (a new folder)."""
    root = Path(root)
    (root / "maps").mkdir(parents=True, exist_ok=True)
    for pid, m in zip(table["patient_id"], maps):
        np.save(root / "maps" / f"{pid}.npy", m.astype(np.float32))
    table.to_csv(root / "labels.csv", index=False)
    return root


def cohort_key(n: int, size: int, seed: int, truth: dict | None = None) -> dict:
    """What the synthetic cohort depends on: its size, seed, planted effects, and where the AHA segments lie."""
    return {"n_patients": int(n), "size": int(size), "seed": int(seed), "truth": truth_of(truth),
            "aha17_levels": list(aha17.LEVELS)}


def cached_cohort(cache, n: int, size: int, seed: int, truth: dict | None = None) -> Path:
    """The synthetic cohort's folder in a cardio.Cache: written once per key, atomically, then reused."""
    def build(tmp: Path) -> None:
        table, maps = synthesize(n, size, seed, truth)
        write_cohort(table, maps, tmp)

    return cache.get("perfusion_polar", cohort_key(n, size, seed, truth), build, version=GENERATOR_VERSION)
