"""The embedded synthetic cohort: patients with known risk factors and flow reserve, and their polar maps.

Every map is a (3, size, size) bull's-eye image (rest perfusion %, stress perfusion %, myocardial
flow reserve) laid out on the AHA 17-segment model of `cardio_imaging.aha17` (apex in the centre, anterior
up, septum left). It is written as .npy maps plus labels.csv and read back through the loader a
user folder goes through (cohort.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from cardio import write_csv
from cardio_imaging import aha17
from cardio_perfusion_polar.polar_table import Orientation, sample_image, write_table
from cardio_perfusion_polar.settings import Truth

N_SEGMENTS = aha17.N_SEGMENTS
SEGMENT_TASKS = [f"mfr_seg{i:02d}" for i in range(1, N_SEGMENTS + 1)]
RISK_TASKS = ["impaired_mfr", "sex_male", "smoking", "hypertension", "dyslipidemia", "diabetes"]
CHANNELS = ("rest", "stress", "mfr")
IMPAIRED_MFR = 2.0  # global MFR below this is impaired
GENERATOR_VERSION = 3  # bump when synthesize() changes, so that cached cohorts are rewritten
# The planted effects (config `perfusion_polar.truth`, declared by settings.Truth). Log-MFR effects are per patient;
# attenuation and septal brightness are % of the rest-map maximum; smoking_texture scales a zero-mean patchiness
# that no segment mean can see (0 by default: a positive value plants a "ResNet sees what the 17-segment
# regression cannot" result, the paper's own conclusion, into the cohort).
DEFAULT_TRUTH = Truth.defaults()


def truth_of(truth: dict | None) -> dict:
    """The planted effects: DEFAULT_TRUTH updated by `truth`; an unknown key or a non-number is refused."""
    from cardio import CardioError

    out = dict(DEFAULT_TRUTH)
    for k, v in (truth or {}).items():
        if k not in DEFAULT_TRUTH:
            raise CardioError(f"perfusion_polar.truth.{k} is not a planted effect; use one of {sorted(DEFAULT_TRUTH)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise CardioError(f"perfusion_polar.truth.{k} must be a finite number, got {v!r}")
        out[k] = float(v)
    if not 0 <= out["defect_fraction"] <= 1 or out["mfr_median"] <= 0 or out["log_mfr_sd"] < 0:
        raise CardioError("perfusion_polar.truth: defect_fraction must lie in [0, 1], mfr_median > 0, log_mfr_sd >= 0")
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


def synthesize(n: int, size: int, seed: int, truth: dict | None = None,
               second_scans: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients with known risk factors and flow reserve, and their (records, 3, size, size) polar maps.

    Effects built in (sizes: `truth`, see DEFAULT_TRUTH), so a model can be checked against them: MFR
    falls with diabetes, smoking, hypertension, dyslipidemia and age, women have a higher MFR; a third of patients has a
    territorial flow defect; rest perfusion shows sex-specific attenuation (anterior wall in women,
    inferior wall in men); hypertension brings a relatively brighter septum (hypertrophy); smokers
    may have a patchier rest perfusion (a texture, not a segment-mean effect; 0 by default). Every effect has
    patient-to-patient variability and look-alikes in other patients (attenuation artefacts,
    some septal brightness, some patchiness), so that no risk factor is trivially readable.

    `second_scans`: the share of patients with a second rest/stress study on another date (a second row
    and map: the same risk factors, two years older, global MFR drifted by a factor exp(N(0, 0.08)), its own
    segments, defect and noise). The table then has a `study_id` column (the first study's is the patient id,
    the second's `<patient_id>-2`), and the rows of second studies follow every first one. With 0 (the
    default) the table and maps are exactly those of one study per patient.
    """
    t = truth_of(truth)
    if isinstance(second_scans, bool) or not 0 <= second_scans <= 1:
        from cardio import CardioError

        raise CardioError(f"perfusion_polar.second_scans must be a share in [0, 1], got {second_scans!r}")
    rng = np.random.default_rng(seed)
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
    geometry = _geometry(size)
    scans = [_scan(rng, t, geometry, global_mfr[i], male[i], htn[i], smoking[i]) for i in range(n)]
    patients = np.arange(n)
    if second_scans > 0:
        again = np.flatnonzero(rng.random(n) < second_scans)
        drift = np.exp(rng.normal(0, 0.08, len(again)))
        scans += [_scan(rng, t, geometry, global_mfr[i] * d, male[i], htn[i], smoking[i]) for i, d in zip(again, drift)]
        patients = np.concatenate([patients, again])
    maps = np.stack([m for m, _ in scans]).astype(np.float32)
    seg_mfr = np.stack([s for _, s in scans])
    second = np.arange(len(patients)) >= n
    ids = np.array([f"PF{i + 1:04d}" for i in range(n)])[patients]
    table = pd.DataFrame({
        "patient_id": ids, "age": (age[patients] + 2.0 * second).round(1), "sex_male": male[patients].astype(int),
        "smoking": smoking[patients].astype(int), "hypertension": htn[patients].astype(int),
        "dyslipidemia": dyslip[patients].astype(int), "diabetes": diabetes[patients].astype(int)})
    if second.any():
        table.insert(1, "study_id", np.where(second, np.char.add(ids.astype(str), "-2"), ids))
    for s, name in enumerate(SEGMENT_TASKS):
        table[name] = seg_mfr[:, s].round(4)
    table["global_mfr"] = seg_mfr.mean(axis=1).round(4)
    table["impaired_mfr"] = (table["global_mfr"] < IMPAIRED_MFR).astype(int)
    return table, maps


def _geometry(size: int) -> dict:
    """The bull's-eye's segment labels, radius and angle of every pixel, and the three walls' weights."""
    seg = aha17.image_labels(size)
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    r = np.hypot(xx - c, yy - c) / (size / 2.0)
    ang = (np.degrees(np.arctan2(c - yy, xx - c)) + 360.0) % 360.0
    return {"size": size, "seg": seg, "inside": seg > 0, "r": r, "ang": ang, "anterior": _wall(ang, r, 90, 35.0),
            "inferior": _wall(ang, r, 270, 35.0), "septal": _wall(ang, r, 180, 40.0)}


def _scan(rng: np.random.Generator, t: dict, g: dict, global_mfr: float, male: bool, htn: bool,
          smoking: bool) -> tuple[np.ndarray, np.ndarray]:
    """One study's (3, size, size) maps (rest, stress, MFR) and its 17 segment MFRs."""
    size, seg, inside = g["size"], g["seg"], g["inside"]
    factor = np.exp(rng.normal(0, 0.06, N_SEGMENTS))
    if rng.random() < t["defect_fraction"]:
        terr = aha17.TERRITORIES[rng.choice(list(aha17.TERRITORIES))]
        factor[np.asarray(terr) - 1] *= rng.uniform(0.5, 0.8)
    seg_mfr = global_mfr * factor
    mfr_px = np.where(inside, seg_mfr[np.clip(seg, 1, None) - 1], 0.0)
    mfr_px = gaussian_filter(mfr_px, 0.8) + rng.normal(0, 0.05, (size, size))
    rest = 80.0 + rng.normal(0, 2.0, (size, size))
    # soft-tissue attenuation of variable depth: breast (anterior) mostly in women, diaphragm
    # (inferior) mostly in men, and an attenuation artefact at a random site in anyone
    typical, other = t["attenuation_sex_typical"], t["attenuation_other"]
    rest -= (rng.uniform(0, other if male else typical) * g["anterior"]
             + rng.uniform(0, typical if male else other) * g["inferior"])
    site = rng.uniform(0, 360)
    rest -= rng.uniform(0, 6) * _wall(g["ang"], g["r"], site, 30.0)
    # hypertrophy in hypertension: a relatively brighter septum, of variable degree
    rest += (rng.uniform(0, 2) + rng.uniform(0, t["septum_hypertension"]) * htn) * g["septal"]
    rest = gaussian_filter(rest, 0.7)
    flow = np.clip(mfr_px / max(mfr_px[inside].max(), 1e-6), 0.1, None) ** 0.7
    # Both maps are scaled to 100% at the maximum of the texture-free map, so that the texture
    # below changes the pattern, not the segment means.
    rest_scale, stress_scale = rest[inside].max(), (rest * flow)[inside].max()
    # patchy uptake, more so in smokers: a zero-mean texture rather than a segment-level change
    patchiness = rng.uniform(0.6, 1.6) + t["smoking_texture"] * smoking
    rest = rest + gaussian_filter(rng.normal(0, 3.0, (size, size)), 1.0) * patchiness * 2.0
    stress = rest * flow / max(stress_scale, 1e-6) * 100.0 + rng.normal(0, 1.5, (size, size))
    rest = rest / max(rest_scale, 1e-6) * 100.0
    maps = np.stack([np.where(inside, m, 0.0) for m in (rest, stress, mfr_px)]).astype(np.float32)
    return maps, seg_mfr


def write_cohort(table: pd.DataFrame, maps: np.ndarray, root: Path, tables: tuple[int, int] | None = None,
                 orientation: Orientation = Orientation()) -> Path:
    """Write labels.csv and each record's maps/<record_id>.npy (3, H, W: rest, stress, MFR) under root (a new
    folder); the record is named as cardio.data.cohort names it: record_id, else study_id, else patient_id.
    `tables=(rings, sectors)` writes each map as a ring x sector CSV table numbered as `orientation` says
    (maps/<record_id>.csv), as a clinical program exports it, instead."""
    root = Path(root)
    (root / "maps").mkdir(parents=True, exist_ok=True)
    names = next(table[c] for c in ("record_id", "study_id", "patient_id") if c in table.columns)
    for name, m in zip(names, maps):
        if tables:
            write_table(sample_image(m, *tables, orientation), root / "maps" / f"{name}.csv")
        else:
            np.save(root / "maps" / f"{name}.npy", m.astype(np.float32))
    write_csv(root / "labels.csv", table)
    return root


def cohort_key(n: int, size: int, seed: int, truth: dict | None = None, second_scans: float = 0.0) -> dict:
    """What the synthetic cohort depends on: its size, seed, planted effects, second studies, and where the AHA
    segments lie."""
    return {"n_patients": int(n), "size": int(size), "seed": int(seed), "truth": truth_of(truth),
            "second_scans": float(second_scans), "aha17_levels": list(aha17.LEVELS)}


def cached_cohort(cache, n: int, size: int, seed: int, truth: dict | None = None, second_scans: float = 0.0) -> Path:
    """The synthetic cohort's folder in a cardio.Cache: written once per key, atomically, then reused."""
    def build(tmp: Path) -> None:
        table, maps = synthesize(n, size, seed, truth, second_scans)
        write_cohort(table, maps, tmp)

    return cache.get("perfusion_polar", cohort_key(n, size, seed, truth, second_scans), build,
                     version=GENERATOR_VERSION)
