"""The embedded CRT cohort (gated NM DICOM + clinical CSV, written then read back) and user cohorts.

Default cohort: `n_patients` (103, as in He et al.) heart-failure patients listed for CRT. Clinical
variables follow the paper's Table 1 (age 61 +- 13, 72.5% male, QRS 157 +- 22 ms, LVEF 29 +- 7%,
EDV 291 +- 88 ml, ESV = EDV (1 - LVEF), scar burden 27 +- 11%, NYHA II/III/IV 30/55/15%, CAD 25%,
CKD 5%, ACEI/ARB 86%, ischemia 23%, smoking 36%). Each patient's gated SPECT is a phantom
(phantom.py) whose LV size comes from EDV/LVEF, whose scar comes from the scar burden (in a
coronary territory when CAD) and whose dyssynchrony is a late-activated zone of random size
and magnitude. The late zone sits at the posterolateral wall (the usual LV-lead site) in about
half the patients and elsewhere (anterior, septal, inferior: 80-280 degrees away) in the others.

Response (LVESV reduction >= 15%) is drawn from a logistic model in which the imaging effect is
spatial: what matters is WHERE the latest zone is (cos of its angle to the posterolateral wall,
scaled by the dyssynchrony magnitude), which PSD and PBW, being invariant to rotating the phase
map, cannot see; the global dyssynchrony magnitude (what PSD/PBW measure) has its own effect
(spect_polar.synthetic.truth.dyssynchrony_per_sd); QRS, male sex, scar burden and EDV add clinical effects.
The hidden truth (late-zone angle, magnitude, true PSD/PBW) is kept in truth.csv, outside clinical.csv.

Layout of a cohort folder: clinical.csv, volumes/<id>.dcm, truth/<id>_true_phase.npy, truth.csv,
params.json. It is an entry of the run's cache (cardio.Cache, keyed by params.json's content):
written whole into a temporary folder, renamed into place, then reused by every later run.

A user cohort (cohort.dir) has the same layout: clinical.csv, read by cardio.data.cohort.read_table against SCHEMA
(one row per scan; patient -> study -> record; an empty `responder` is a missing label), and per row a volume
(NM DICOM, or .npy (gates, slices, rows, cols)) or a ready phase polar map (.npy / .csv, rings x sectors),
named in the `file` column or else found as volumes/<record_id>.<ext>.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from cardio import Cache, CardioError, Cohort, CoreSettings, write_csv
from cardio.data.cohort import Column, Problems, Schema, read_records, read_table
from cardio.data.files import npy_header
from cardio.data.same_recording import copy_problems
from cardio_imaging.same_image import same_images
from cardio_response.volumetric import VolumetricResponse, synthetic_followup
from cardio_spect_polar import plausibility
from cardio_spect_polar.dicom_io import GatedVolume, check_dicom_header, read_polar_map, read_volume, write_gated_dicom
from cardio_spect_polar.orientation import Orientation
from cardio_spect_polar.phantom import LATERAL_DEG, make_phantom
from cardio_spect_polar.phase import MIN_GATES, PhaseResult, phase_analysis_batch, result_from_phase_map
from cardio_spect_polar.settings import SpectSettings

CLINICAL_COLUMNS = ("patient_id", "responder", "age", "sex", "qrs_ms", "lvef", "edv", "esv", "scar_burden",
                    "nyha", "cad", "ckd", "acei_arb", "ischemia", "smoking", "lvesv_reduction_pct")
#: He et al.'s outcome: LVESV (the echo's ESV) reduction >= 15% at 6 ± 1 months (derived where empty, checked); a run
#: reads by the rule of its settings (spect_polar.response), of which this is the default
RESPONSE = SpectSettings().response
# Columns that define or derive from the outcome: declared as Cohort.outcomes, so the core refuses them
# as covariates and permutes them with the label in the null control.
OUTCOME_COLUMNS = RESPONSE.outcomes
COVARIATES = tuple(c for c in CLINICAL_COLUMNS[2:] if c not in OUTCOME_COLUMNS)
GENERATOR_VERSION = 4  # bump when the simulation changes, so that cached cohorts are rewritten (3: follow-up,
#                        4: reductions below 100%)
CACHE_NAMESPACE = "spect_polar"
LABEL = "responder"
SCHEMA_TABLE = "clinical.csv"  # the cohort table's file name (SCHEMA.table)
# Tried in this order when a row names no file (volumes/<record_id><suffix>); "" = a DICOM file without suffix.
RECORD_SUFFIXES = (".dcm", ".dicom", ".ima", ".npy", ".csv", "")
#: The LVESV reduction (%) a synthetic patient can reach: the latent draws are unbounded above, and at 100% the
#: follow-up volume is nothing (default settings at seed 10, 143 patients, wrote -1.7 ml and the cohort did not read).
#: Above the knee a reduction is compressed smoothly towards the ceiling; every reduction up to the knee is kept as it
#: was, so the default cohort (at most 82%) writes what it wrote before.
REDUCTION_KNEE, REDUCTION_CEILING = 85.0, 95.0
# Logistic response model; the intercept puts the response rate near the paper's 44%.
# `dyssynchrony_per_sd` is the effect of the global dyssynchrony magnitude (what PSD/PBW measure) per SD
# (45 degrees); spect_polar.synthetic.truth overrides any of these (the report states them as synthetic truth).
RESPONSE_COEF = {"intercept": -1.17, "late_lateral": 2.2, "dyssynchrony_per_sd": 0.5, "qrs_per_ms": 0.03,
                 "male": 0.6, "scar_per_pct": -0.035, "edv_per_ml": -0.003}

Progress = Callable[..., Iterable]


def _tqdm(iterable, desc: str = "", total: int | None = None):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, leave=False)


def response_coef(truth: dict | None = None) -> dict[str, float]:
    """The response model's coefficients: the defaults overridden by `truth` (spect_polar.synthetic.truth)."""
    unknown = sorted(set(truth or {}) - set(RESPONSE_COEF))
    if unknown:
        raise CardioError(f"spect_polar.synthetic.truth: unknown key(s) {unknown}; known: {sorted(RESPONSE_COEF)}")
    return {k: float((truth or {}).get(k, v)) for k, v in RESPONSE_COEF.items()}


def draw_covariates(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The clinical variables of `n` patients, as in He et al.'s Table 1 (no outcome in them)."""
    male = rng.random(n) < 0.725
    age = np.clip(rng.normal(61.3, 13.0, n), 25, 88).round()
    qrs = np.clip(rng.normal(157.3, 22.0, n), 120, 220).round()
    lvef = np.clip(rng.normal(29.3, 6.8, n), 12, 35).round(1)
    sigma = np.sqrt(np.log(1 + (88.4 / 291.2) ** 2))
    edv = np.clip(rng.lognormal(np.log(291.2) - sigma ** 2 / 2, sigma, n), 120, 550).round(1)
    esv = (edv * (1 - lvef / 100) * rng.normal(1.0, 0.03, n)).round(1)
    cad = rng.random(n) < 0.245
    ischemia = rng.random(n) < np.where(cad, 0.6, 0.11)
    scar = np.clip(rng.normal(24.0 + 9.0 * cad, 10.0, n), 3, 60).round(1)
    nyha = rng.choice([2, 3, 4], size=n, p=[0.304, 0.549, 0.147])
    ckd = rng.random(n) < 0.049
    acei = rng.random(n) < 0.863
    smoking = rng.random(n) < np.where(male, 0.44, 0.15)
    return {"age": age.astype(int), "sex": male.astype(int), "qrs_ms": qrs.astype(int), "lvef": lvef, "edv": edv,
            "esv": esv, "scar_burden": scar, "nyha": nyha, "cad": cad.astype(int), "ckd": ckd.astype(int),
            "acei_arb": acei.astype(int), "ischemia": ischemia.astype(int), "smoking": smoking.astype(int)}


def draw_imaging(rng: np.random.Generator, cad: np.ndarray) -> dict[str, np.ndarray]:
    """Imaging truth per patient: where the latest zone is, how late, how wide; where the scar is (in a
    coronary territory when `cad`); the camera's counts."""
    n = len(cad)
    lateral = rng.random(n) < 0.5
    late_angle = np.where(lateral, LATERAL_DEG + rng.normal(0, 20, n), LATERAL_DEG + rng.uniform(80, 280, n)) % 360
    late_position = rng.uniform(0.35, 0.9, n)
    width = rng.uniform(0.55, 1.1, n)
    dyssynchrony = np.clip(rng.normal(150, 45, n), 20, 250)  # independent of the site: PSD alone says little
    base_phase = rng.normal(105, 10, n)
    territory = np.where(cad, rng.choice(["LAD", "RCA", "LCX"], size=n, p=[0.45, 0.30, 0.25]), "none")
    centre = {"LAD": (120, 60), "RCA": (270, 25), "LCX": (345, 30), "none": (180, 180)}
    scar_angle = np.array([rng.normal(centre[t][0], 20) if t != "none" else rng.uniform(0, 360)
                           for t in territory]) % 360
    scar_position = np.where(territory == "LAD", rng.uniform(0.15, 0.5, n), rng.uniform(0.35, 0.85, n))
    counts = np.clip(rng.normal(80, 15, n), 40, 130)
    return {"late_angle": late_angle, "late_position": late_position, "late_width": width,
            "dyssynchrony": dyssynchrony, "base_phase": base_phase, "scar_territory": territory,
            "scar_angle": scar_angle, "scar_position": scar_position, "counts": counts}


def late_lateral(late_angle: np.ndarray, dyssynchrony: np.ndarray) -> np.ndarray:
    """The spatial imaging effect: cos of the late zone's angle to the posterolateral wall, scaled by how late."""
    return np.cos(np.radians(late_angle - LATERAL_DEG)) * dyssynchrony / (dyssynchrony + 60)


def clinical_table(ids: Sequence[str], covariates: dict[str, np.ndarray], responder: np.ndarray,
                   lvesv_reduction: np.ndarray, followup: np.random.Generator) -> pd.DataFrame:
    """The cohort table (CLINICAL_COLUMNS); the LVESV reduction is rounded so that the 15% cut stays exact. Then the
    follow-up ESV and the dates the papers' rule checks (cardio_response.volumetric), drawn from `followup`."""
    responder = np.asarray(responder).astype(bool)
    lvesv_reduction = bounded_reduction(lvesv_reduction)
    table = pd.DataFrame({
        "patient_id": list(ids), "responder": responder.astype(int), **covariates,
        "lvesv_reduction_pct": np.where(responder, np.maximum(lvesv_reduction.round(2), 15.0),
                                        np.minimum(lvesv_reduction.round(2), 14.99))})[list(CLINICAL_COLUMNS)]
    return table.assign(**synthetic_followup(followup, table["esv"].to_numpy(),
                                             table["lvesv_reduction_pct"].to_numpy(), RESPONSE))


def bounded_reduction(reduction: np.ndarray) -> np.ndarray:
    """`reduction` (%) with the values above REDUCTION_KNEE compressed below REDUCTION_CEILING (monotone, slope 1 at
    the knee): a follow-up volume is never zero or negative, and the responder's 15% cut is untouched."""
    r = np.asarray(reduction, dtype=float)
    room = REDUCTION_CEILING - REDUCTION_KNEE
    over = np.maximum(r - REDUCTION_KNEE, 0.0)  # NaN stays NaN: an unknown outcome
    return np.where(r > REDUCTION_KNEE, REDUCTION_KNEE + room * -np.expm1(-over / room), r)


def truth_table(ids: Sequence[str], imaging: dict[str, np.ndarray], **extra: np.ndarray) -> pd.DataFrame:
    """The hidden imaging truth per patient (truth.csv): draw_imaging's values, the late-lateral effect, `extra`."""
    img = imaging
    return pd.DataFrame({
        "patient_id": list(ids), "late_angle": img["late_angle"].round(2),
        "late_position": img["late_position"].round(4), "late_width": img["late_width"].round(4),
        "late_lateral": late_lateral(img["late_angle"], img["dyssynchrony"]).round(4),
        "dyssynchrony": img["dyssynchrony"].round(2), "base_phase": img["base_phase"].round(2),
        "scar_territory": img["scar_territory"], "scar_angle": img["scar_angle"].round(2),
        "scar_position": img["scar_position"].round(4), "counts": img["counts"].round(2), **extra})


def simulate_clinical(n_patients: int = 103, seed: int = 0, truth: dict | None = None,
                      esv_outliers: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clinical table with CLINICAL_COLUMNS, hidden truth per patient) for the default cohort.

    `esv_outliers` patients get an implausibly small SPECT ESV reading (12-18 ml; He et al. excluded one
    patient with 16 ml as an artefact of gated SPECT's low resolution); their phantoms are unchanged.
    """
    if n_patients < 10:
        raise CardioError(f"the synthetic cohort needs at least 10 patients, got {n_patients}")
    rng = np.random.default_rng([seed, 2020])
    n = n_patients
    ids = [f"P{i + 1:04d}" for i in range(n)]
    cov = draw_covariates(rng, n)
    img = draw_imaging(rng, cov["cad"].astype(bool))
    c = response_coef(truth)
    dyssynchrony = img["dyssynchrony"]
    logit = (c["intercept"] + c["late_lateral"] * late_lateral(img["late_angle"], dyssynchrony)
             + c["dyssynchrony_per_sd"] * (dyssynchrony - 150) / 45 + c["qrs_per_ms"] * (cov["qrs_ms"] - 157)
             + c["male"] * cov["sex"].astype(bool) + c["scar_per_pct"] * (cov["scar_burden"] - 27)
             + c["edv_per_ml"] * (cov["edv"] - 291))
    p_resp = 1 / (1 + np.exp(-logit))
    u = rng.random(n)
    responder = u < p_resp
    # Follow-up LVESV reduction (%) consistent with the draw: >= 15% exactly for responders (latent
    # logistic variable logit - logit(u), scaled); it defines the outcome and is declared as such.
    lvesv_reduction = 15.0 + 10.0 * (logit - np.log(u / (1 - u)))

    if not 0 <= esv_outliers <= n // 10:
        raise CardioError(f"spect_polar.synthetic.esv_outliers = {esv_outliers} is out of range; allowed: 0 to "
                          f"{n // 10} (a tenth of {n} patients)")
    # Drawn last, so the cohort with no outliers is the one earlier versions wrote.
    esv = cov["esv"]
    outlier_rows = rng.choice(n, size=esv_outliers, replace=False) if esv_outliers else np.zeros(0, int)
    esv[outlier_rows] = rng.uniform(12.0, 18.0, esv_outliers).round(1)
    return (clinical_table(ids, cov, responder, lvesv_reduction, np.random.default_rng([seed, 2020, 56])),
            truth_table(ids, img, p_response=p_resp.round(4)))


def cohort_params(n_patients: int = 103, seed: int = 0, gates: int = 8, slices: int = 24, size: int = 48,
                  truth: dict | None = None, esv_outliers: int = 0) -> dict:
    """Everything the synthetic cohort depends on (its cache key, and params.json in its folder)."""
    # The field of view stays 144 x 240 x 240 mm: fewer slices or pixels mean larger voxels.
    params = {"generator": "cardio spect_polar default cohort", "version": GENERATOR_VERSION,
              "n_patients": int(n_patients), "seed": int(seed), "gates": int(gates), "slices": int(slices),
              "size": int(size), "pixel_mm": round(240.0 / size, 4), "slice_mm": round(144.0 / slices, 4),
              "response_model": response_coef(truth)}
    if esv_outliers:  # absent when 0, so the cohorts cached before this option keep their key
        params["esv_outliers"] = int(esv_outliers)
    return params


def check_volume_settings(gates: int, slices: int, size: int) -> None:
    """spect_polar.synthetic's gates (8 or 16), slices (16-64) and size (32-128): one line otherwise."""
    if gates not in (8, 16):
        raise CardioError(f"the synthetic cohort is gated with 8 or 16 gates, got {gates}")
    if not (16 <= slices <= 64 and 32 <= size <= 128):
        raise CardioError(f"synthetic volumes need 16-64 slices and 32-128 pixels a side, got {slices} x {size}")


def write_default_cohort(cache: Cache, n_patients: int = 103, seed: int = 0, gates: int = 8,
                         progress: Progress | None = None, *, slices: int = 24, size: int = 48,
                         truth: dict | None = None, esv_outliers: int = 0,
                         map_items: Callable[..., list] | None = None) -> Path:
    """The default cohort's folder in a cardio.Cache (`ctx.cache`): written once, whole, then reused (map_items:
    ctx.map, the patients written over the run's CPUs)."""
    check_volume_settings(gates, slices, size)
    params = cohort_params(n_patients, seed, gates, slices, size, truth, esv_outliers)
    return cache.get(CACHE_NAMESPACE, params,
                     lambda folder: _write_cohort(folder, params, progress or _tqdm, map_items),
                     version=GENERATOR_VERSION)


def _write_cohort(folder: Path, params: dict, progress: Progress, map_items: Callable[..., list] | None) -> None:
    """Simulate the cohort and write it into a new folder (the cache renames it into place when whole)."""
    clinical, truth = simulate_clinical(params["n_patients"], params["seed"], params["response_model"],
                                        params.get("esv_outliers", 0))
    write_cohort_files(folder, clinical, truth, params, progress, map_items=map_items)


def write_cohort_files(folder: Path, clinical: pd.DataFrame, truth: pd.DataFrame, params: dict,
                       progress: Progress, stream: tuple[int, ...] = (), table: str = SCHEMA_TABLE,
                       map_items: Callable[..., list] | None = None) -> Path:
    """Write a cohort folder: per patient a gated NM DICOM of the phantom its clinical and truth rows describe
    (volumes/<id>.dcm) and its true phase map (truth/<id>_true_phase.npy); truth.csv (with the phantoms' true
    PSD/PBW), params.json, and the cohort table `table` last (written whole), which it returns.

    Each phantom's noise comes from (params' seed, the patient's row, 7, *stream) and its UIDs from the seed,
    the id and `stream` too: a cohort with another `stream` shares no scan with the default one. map_items: ctx.map
    (the patients written over the run's CPUs, the same bytes), else in turn with `progress`."""
    (folder / "volumes").mkdir(parents=True, exist_ok=True)
    (folder / "truth").mkdir(exist_ok=True)
    jobs = [(folder, i, clinical.iloc[i].to_dict(), truth.iloc[i].to_dict(), params, stream)
            for i in range(len(clinical))]
    written = (map_items or partial(_in_turn, progress=progress))(_write_patient, jobs, desc="writing SPECT cohort")
    true_psd, true_pbw = [w[0] for w in written], [w[1] for w in written]
    truth = truth.assign(true_psd=np.round(true_psd, 3), true_pbw=np.round(true_pbw, 3))
    write_csv(folder / "truth.csv", truth)
    (folder / "params.json").write_text(json.dumps(params, sort_keys=True, indent=1))
    write_csv(folder / table, clinical)
    return folder / table


def _write_patient(job: tuple[Path, int, dict, dict, dict, tuple[int, ...]]) -> tuple[float, float]:
    """One patient's gated NM DICOM and true phase map (write_cohort_files; in a worker of ctx.map, so its
    argument pickles); its phantom's true PSD and PBW."""
    folder, i, row, hid, params, stream = job
    seed, gates, pid = params["seed"], params["gates"], row["patient_id"]
    ph = make_phantom(np.random.default_rng([seed, i, 7, *stream]), pattern="focal",
                      dyssynchrony=float(hid["dyssynchrony"]), base_phase=float(hid["base_phase"]),
                      late_angle=float(hid["late_angle"]), late_position=float(hid["late_position"]),
                      width=float(hid["late_width"]), scar_burden=float(row["scar_burden"]),
                      scar_angle=float(hid["scar_angle"]), scar_position=float(hid["scar_position"]),
                      edv_ml=float(row["edv"]), lvef=float(row["lvef"]), gates=gates, slices=params["slices"],
                      size=params["size"], pixel_mm=params["pixel_mm"], slice_mm=params["slice_mm"],
                      counts=float(hid["counts"]))
    write_gated_dicom(folder / "volumes" / f"{pid}.dcm", ph.volume, pixel_spacing_mm=ph.params["pixel_mm"],
                      slice_spacing_mm=ph.params["slice_mm"], patient_id=pid,
                      patient_sex="M" if row["sex"] == 1 else "F", patient_age=int(row["age"]),
                      uid_seed=(str(seed), pid, str(GENERATOR_VERSION), str(gates), *map(str, stream)))
    np.save(folder / "truth" / f"{pid}_true_phase.npy", ph.true_phase.astype(np.float32))
    return float(ph.true_psd), float(ph.true_pbw)


MULTIMODAL_STREAM = 30  # the multimodal cohort's random streams (issue 30), apart from the default cohort's


def drive_to_late_offset(drive: np.ndarray) -> np.ndarray:
    """The planted response signal of the multimodal cohort: the late zone's angular distance (degrees) from the
    posterolateral wall, 180 * Phi(-drive). Strictly decreasing in the drive: near 0 (at the LV lead's usual
    site, what responders show) for a high drive, 90 at 0, near 180 (septal) for a low one; uniform on 0-180
    for a standard-normal drive."""
    from scipy.special import ndtr

    return 180.0 * ndtr(-np.asarray(drive, dtype=float))


def _check_patients(patients: pd.DataFrame) -> None:
    missing = [c for c in ("patient_id", "responder", "drive") if c not in patients.columns]
    if missing:
        raise CardioError(f"the multimodal cohort's patients lack column(s) {missing}")
    ids = patients["patient_id"].astype(str)
    if ids.duplicated().any() or (ids.str.strip() == "").any():
        raise CardioError("the multimodal cohort's patient_id values must be unique and not empty")
    # each id names its scan (volumes/<id>.dcm): a path would write outside the folder
    bad = [row for row, i in enumerate(ids) if Path(i).name != i or i.startswith(".")]
    if bad:  # rows, not ids: no patient identifier in an error message
        raise CardioError(f"the multimodal cohort's patient_id values name files (volumes/<id>.dcm), so they must be "
                          f"plain file names; {len(bad)} are not (first in row {bad[0] + 1} of patients)")
    if not patients["responder"].isin([0, 1]).all() or not np.isfinite(patients["drive"].to_numpy(float)).all():
        raise CardioError("the multimodal cohort's responder must be 0/1 and its drive a finite number, per patient")


def write_multimodal_cohort(patients: pd.DataFrame, dest: str | Path, seed: int, s: SpectSettings,
                            progress: Progress | None = None) -> Path:
    """The SPECT of a multimodal CRT cohort (cardio_write_synthetic): a gated NM DICOM per patient and the cohort
    table in `dest`, laid out as the default cohort (write_cohort_files), read by a run with cohort.dir = dest.

    Response reaches the SPECT only through `patients.drive`: it sets where the late-activated zone is, its
    angular distance from the posterolateral wall (drive_to_late_offset, monotone), which is what the
    autoencoder features see and PSD/PBW, invariant to rotating the phase map, do not. The side it lies on
    (anterior or inferior of the wall) and everything else (clinical variables, dyssynchrony magnitude, the
    zone's size and depth, scar, counts, noise) are drawn from `seed` as in the default cohort, independent of
    response. `responder` is written unchanged; lvesv_reduction_pct (an outcome column) is drawn to agree with
    it (>= 15% exactly for responders). Gates, slices and size come from spect_polar.synthetic; the table's
    name from spect_polar.clinical_csv. The same (patients, seed, settings) write the same bytes."""
    gates, slices, size = s.synthetic.gates, s.synthetic.slices, s.synthetic.size
    check_volume_settings(gates, slices, size)
    _check_patients(patients)
    rng = np.random.default_rng([int(seed), MULTIMODAL_STREAM])
    n = len(patients)
    ids = patients["patient_id"].astype(str).tolist()
    cov = draw_covariates(rng, n)
    img = draw_imaging(rng, cov["cad"].astype(bool))
    drive = patients["drive"].to_numpy(float)
    offset = drive_to_late_offset(drive)
    img["late_angle"] = (LATERAL_DEG + rng.choice([-1.0, 1.0], n) * offset) % 360
    responder = patients["responder"].to_numpy(int)
    reduction = np.where(responder == 1, 15.0 + rng.exponential(10.0, n), 15.0 - rng.exponential(10.0, n))
    params = {**cohort_params(n, int(seed), gates, slices, size), "generator": "cardio spect_polar multimodal cohort",
              "stream": MULTIMODAL_STREAM, "response_model": "late_offset = 180 * Phi(-drive) degrees"}
    followup = np.random.default_rng([int(seed), MULTIMODAL_STREAM, 56])
    return write_cohort_files(Path(dest).expanduser(), clinical_table(ids, cov, responder, reduction, followup),
                              truth_table(ids, img, drive=drive.round(6), late_offset=offset.round(3)), params,
                              progress or _tqdm, stream=(MULTIMODAL_STREAM,),
                              table=s.clinical_csv or SCHEMA_TABLE)


def default_cohort(cache: Cache, n_patients: int = 103, seed: int = 0, gates: int = 8,
                   progress: Progress | None = None, *, slices: int = 24, size: int = 48,
                   truth: dict | None = None, esv_outliers: int = 0) -> pd.DataFrame:
    """Write-or-reuse the default cohort and load it like a user cohort (plus true_phase_path)."""
    folder = write_default_cohort(cache, n_patients, seed, gates, progress, slices=slices, size=size, truth=truth,
                                  esv_outliers=esv_outliers)
    table = load_cohort(folder, run_schema(LABEL, COVARIATES))
    table["true_phase_path"] = [str(folder / "truth" / f"{pid}_true_phase.npy") for pid in table["patient_id"]]
    return table


def _binary(name: str, description: str) -> Column:
    return Column(name, "binary", description=f"{description}: 1 yes, 0 no")


# The cohort table (clinical.csv in cohort.dir): one row per gated SPECT scan (a record); a patient with a
# baseline and a follow-up scan has two rows (distinct record_id / study_id, one patient_id). CRT response is
# the patient's, so predictions are made per patient: the scores of a patient's scans are averaged.
# Coding: sex and yes/no variables are 0/1 (sex 1 = male, as in the paper's logistic models); NYHA 1-4.
SCHEMA = Schema(
    table=SCHEMA_TABLE, level="patient", aggregate="mean", response=RESPONSE,
    columns=(
        Column(LABEL, "binary", required=True, target=True,
               description="CRT response (LVESV reduction >= 15% at follow-up): 1 responder, 0 not; empty = not "
                           "known (the scan is phase-analysed, but not trained on or scored)"),
        Column("file", "path", required=True, default="volumes/{record_id}", suffixes=RECORD_SUFFIXES,
               description="the scan, relative to cohort.dir: a gated short-axis NM DICOM, a .npy volume (gates, "
                           "slices, rows, cols) or a ready phase polar map (.npy / .csv, rings x sectors); "
                           "empty: volumes/<record_id> with one of " + ", ".join(s or "(none)" for s in
                                                                                 RECORD_SUFFIXES)),
        Column("age", low=0, high=120, description="age (years)"),
        Column("sex", "binary", description="sex: 1 male, 0 female (M/F is not read: code it 1/0)"),
        Column("qrs_ms", low=0, high=400, description="QRS duration (ms)"),
        Column("lvef", low=0, high=100, description="LV ejection fraction (%)"),
        Column("edv", low=0, description="LV end-diastolic volume (ml)"),
        Column("esv", low=0, description="LV end-systolic volume (ml), baseline; spect_polar.min_esv_ml reads it"),
        Column("scar_burden", low=0, high=100, description="scar burden (% of the LV)"),
        Column("nyha", "integer", low=1, high=4, description="NYHA class (1-4)"),
        _binary("cad", "coronary artery disease"), _binary("ckd", "chronic kidney disease"),
        _binary("acei_arb", "on ACE inhibitor or ARB"), _binary("ischemia", "ischemia"),
        _binary("smoking", "smoker"),
        Column("lvesv_reduction_pct", description="LVESV reduction at follow-up (%): defines the outcome, so it "
                                                  "is refused as a covariate (Cohort.outcomes)"),
    ))
SCHEMA = replace(SCHEMA, columns=RESPONSE.columns(SCHEMA.columns))  # the rule's columns, after the others


def run_schema(label: str, clinical: Sequence[str], need_esv: bool = False,
               response: VolumetricResponse = RESPONSE) -> Schema:
    """SCHEMA for one run: `label` as the target, derived and checked by `response` (spect_polar.response), the
    covariates the config names required (cells too), a covariate SCHEMA does not declare read as a number, and
    `esv` required when min_esv_ml excludes by it."""
    need = {*clinical, *(["esv"] if need_esv else [])}
    columns = []
    for col in SCHEMA.columns:
        if col.target and col.name != label:
            continue  # another outcome column is the label: `responder` is then an ordinary column
        columns.append(replace(col, required=True) if col.name in need and not col.target else col)
    declared = {c.name for c in columns}
    if label not in declared:
        columns.insert(0, replace(SCHEMA.column(LABEL), name=label))
    columns += [Column(c, "number", required=True, description="covariate named in spect_polar.analysis.clinical")
                for c in dict.fromkeys(clinical) if c not in declared and c != label]
    return replace(SCHEMA, columns=response.columns(tuple(columns)), response=response)


def _record_kind(path: Path, shape: tuple[int, ...] | None = None) -> str:
    """'volume' or 'polar' (a .csv, or a 2-D .npy); a .npy of another shape is an error naming it. `shape`: a .npy's,
    where its header was read already."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "polar"
    if suffix != ".npy":
        return "volume"
    shape = npy_header(path)[0] if shape is None else shape
    if len(shape) not in (2, 4):
        raise CardioError(f"{path}: .npy of shape {shape} is neither a volume (gates, slices, rows, cols) "
                          "nor a polar map (rings, sectors)")
    return "volume" if len(shape) == 4 else "polar"


def read_whole(progress: Progress | None = None) -> Callable[[pd.DataFrame, Problems], None]:
    """read_table check (cohort.records: read, what cardio validate sets): every record read whole by the reader
    phase analysis uses (load_record: a volume's counts, gates that differ, a polar map's cells), each failure a
    problem of its line (cardio.data.cohort.read_records)."""
    def check(table: pd.DataFrame, problems: Problems) -> None:
        read = read_records(table, problems, "file", lambda path, i: load_record(path), progress=progress,
                            desc="scans")
        # one scan under two patients, by content: a re-export (a .npy of a DICOM, rescaled) has other bytes
        prints = {i: plausibility.fingerprint(r) for i, r in read.items() if isinstance(r, GatedVolume)}
        copy_problems(table, problems, "file", same_images(prints), "scan", "their counts")
    return check


def _csv_map_shape(path: Path) -> tuple[int, ...] | None:
    """A CSV polar map's (rings, sectors), from its cells; None where it does not read (its own problem, listed by
    read_whole)."""
    try:
        return read_polar_map(path).shape
    except (CardioError, ValueError, OSError, EOFError):
        return None


class Fact(NamedTuple):
    """What check_records read of one record's header: its kind, orientation and, for a .npy, its shape."""

    kind: str
    orientation: str
    shape: tuple[int, ...] | None


def check_grid(grid: tuple[int, int], facts: dict[str, Fact]) -> Callable[[pd.DataFrame, Problems], None]:
    """read_table check: every ready polar map on the cohort's one (rings, sectors) grid, as featurize requires it
    (features.check_one_grid): spect_polar.phase's grid when the cohort has volumes, else the maps' most common.
    `facts`: check_records' (run before it: each kind, and a .npy's shape, without a second header read); a CSV
    map's cells are read here."""
    def check(table: pd.DataFrame, problems: Problems) -> None:
        refused, kinds, shapes = problems.refused("file"), [], {}
        for i, path in enumerate(table["file"]):
            if path is None or i + 2 in refused or (fact := facts.get(str(path))) is None:
                continue  # not read by check_records: its problem is listed there or by read_table
            kinds.append(fact.kind)
            if fact.kind == "polar" and (shape := fact.shape or _csv_map_shape(Path(path))) is not None:
                shapes[i] = shape
        found = list(shapes.values())
        expected = tuple(grid) if "volume" in kinds else max(set(found), key=found.count, default=None)
        for i, shape in shapes.items():
            if shape != expected:
                problems.add(f"{table['file'].iloc[i]}: phase polar map of shape {shape}, the cohort's "
                             f"maps are {expected} (rings, sectors: spect_polar.phase.rings and .sectors, where the "
                             "cohort has volumes); resample it to that grid", i + 2, "file")
    return check


def check_volumes(table: pd.DataFrame, problems: Problems) -> None:
    """read_table check: a baseline ESV above the EDV (the end-systolic volume is the smaller: exchanged columns, or
    another patient's value)."""
    if {"esv", "edv"} <= set(table.columns):
        bad = (table["esv"] > table["edv"]).to_numpy()
        for i in np.flatnonzero(bad)[:10]:
            problems.add(f"esv {table['esv'].iloc[i]:g} ml exceeds edv {table['edv'].iloc[i]:g} ml: the "
                         "end-systolic volume is the smaller one (columns exchanged?)", int(i) + 2, "esv")
        if bad.sum() > 10:
            problems.add(f"{int(bad.sum()) - 10} more row(s) whose esv exceeds their edv", None, "esv")


def check_records(table: pd.DataFrame, problems: Problems, facts: dict[str, Fact] | None = None,
                  map_items: Callable[..., list] | None = None) -> None:
    """read_table check: every file found is a readable record (a DICOM header, a .npy's shape) and no two
    rows name the same file. Rows whose file read_table already refused (missing, outside) are not opened. The
    headers are read with map_items (ctx.map: over the run's CPUs), else in turn; each file's (kind, orientation)
    goes into `facts` (load_cohort's columns, check_grid's shapes), so no header is read twice."""
    refused = problems.refused("file")
    rows = [i for i, path in enumerate(table["file"]) if i + 2 not in refused and path is not None]
    paths = [str(table["file"].iloc[i]) for i in rows]
    found = (map_items or _in_turn)(_read_header, paths, desc="scan headers")
    for i, path, got in zip(rows, paths, found):
        if isinstance(got, str):
            problems.add(got, i + 2, "file")
            continue
        kind, gates, orientation, shape = got
        if facts is not None:
            facts[path] = Fact(kind, orientation, shape)
        if gates is not None and gates < MIN_GATES:
            problems.add(f"{path}: " + ("has one gate (not gated)" if gates == 1 else f"{gates} gates")
                         + f"; phase analysis needs a gated volume of at least {MIN_GATES} gates", i + 2, "file")
    problems.rows(table["file"].duplicated(keep=False) & table["file"].notna(),
                  "names a file another row names too (one scan per row)", "file")


def _in_turn(fn: Callable, items: Sequence, desc: str = "", progress: Progress | None = None) -> list:
    """ctx.map's results, here one item after the other (with `progress`, if given)."""
    return [fn(item) for item in (progress(items, desc=desc, total=len(items)) if progress else items)]


def _read_header(path: str) -> tuple[str, int | None, str, tuple[int, ...] | None] | str:
    """(kind, gates, orientation, .npy shape) of a record from its header (gates None for a polar map, shape None
    for a DICOM or CSV), or the error naming it:
    a file a full read would refuse (a DICOM's pixel bytes are counted, not decoded; a .npy's claimed size checked).
    A worker's part of check_records: its argument and result pickle."""
    record = Path(path)
    try:
        shape = tuple(npy_header(record)[0]) if record.suffix.lower() == ".npy" else None
        kind = _record_kind(record, shape)
        if kind == "polar":
            return kind, None, record_orientation(record, kind), shape
        if shape is not None:  # a .npy volume: (gates, slices, rows, cols)
            return kind, int(shape[0]), record_orientation(record, kind), shape
        header = check_dicom_header(record)
        return kind, header.gates, header.orientation.describe(), None
    except CardioError as exc:
        return str(exc)


def load_cohort(root: str | Path, schema: Schema = SCHEMA, *, table: str | None = None, allow_outside: bool = False,
                log: logging.Logger | None = None, records: str = "headers", progress: Progress | None = None,
                grid: tuple[int, int] | None = None, map_items: Callable[..., list] | None = None) -> pd.DataFrame:
    """The cohort table of folder `root` (cardio.data.cohort.read_table with `schema` and check_records; with `grid`,
    the phase grid (rings, sectors) ready maps must share (check_grid); with `records` "read", every record read whole:
    read_whole), plus `kind` ('volume' | 'polar') per record; every problem of the table and its records is listed
    at once (CohortProblems). map_items: ctx.map, the records' headers read over the run's CPUs."""
    facts: dict[str, Fact] = {}
    checks: list[Callable[[pd.DataFrame, Problems], None]] = [
        partial(check_records, facts=facts, map_items=map_items), check_volumes,
        *([check_grid(grid, facts)] if grid else []), *([read_whole(progress)] if records == "read" else [])]
    out = read_table(root, schema, allow_outside=allow_outside, log=log, checks=checks, table=table)
    # check_records read every file of the table read_table returns (any it could not is a problem, raised there)
    out.insert(out.columns.get_loc("file") + 1, "kind", [facts[str(p)].kind for p in out["file"]])
    out.insert(out.columns.get_loc("kind") + 1, "orientation", [facts[str(p)].orientation for p in out["file"]])
    return out


def record_orientation(path: Path, kind: str) -> str:
    """'header' when the file's header placed apex, base and walls; else what is assumed (orientation.py)."""
    if kind == "polar":
        return "polar map as given (rings apex to base)"
    if path.suffix.lower() == ".npy":
        return Orientation().describe() + " (a .npy volume has no header)"
    return check_dicom_header(path, pixels=False).orientation.describe()


def log_orientation(table: pd.DataFrame, log: logging.Logger | None) -> None:
    """One log line per orientation source: how many volumes the header placed, and what was assumed."""
    if log is None:
        return
    for text, n in table["orientation"].value_counts(sort=False).items():
        log.info("orientation of %d of %d record(s): %s", n, len(table), text)


def load_record(path: str | Path, kind: str | None = None) -> GatedVolume | np.ndarray:
    """A volume (GatedVolume) or a polar map (ndarray), by kind or from the file itself, checked for what a gated
    perfusion SPECT can hold (plausibility.py)."""
    path = Path(path)
    kind = kind or _record_kind(path)
    if kind == "volume":
        vol = read_volume(path)
        plausibility.check_volume(vol)
        return vol
    arr = read_polar_map(path)
    plausibility.check_phase_map(arr, str(path))
    return arr


def _analyze_chunk(job: tuple[list[str], int, dict]) -> list[PhaseResult]:
    """One chunk of volumes read and analysed (in a worker process of ctx.map: every argument pickles)."""
    paths, harmonics, phase_options = job
    return phase_analysis_batch([load_record(p, "volume") for p in paths], harmonics, **phase_options)


def analyze_records(table: pd.DataFrame, harmonics: int = 1, *, progress: Progress | None = None,
                    map_items: Callable[..., list] | None = None, chunk: int = 8,
                    **phase_options) -> list[PhaseResult]:
    """Phase analysis of every row of a cohort table (volumes analysed, polar maps summarised).

    map_items: ctx.map (the chunks of `chunk` volumes read and analysed over the run's CPUs, the same results as
    one after the other), else in turn with `progress`. phase_options go to phase.phase_analysis_batch (rings,
    sectors, band_px).
    """
    map_items = map_items or partial(_in_turn, progress=progress or _tqdm)
    results: dict[int, PhaseResult] = {}  # by row; _record_kind makes every row a volume or a polar map
    kinds = table["kind"].to_numpy()
    paths = table["file"].to_numpy()
    vol_rows = np.flatnonzero(kinds == "volume")
    for i in np.flatnonzero(kinds == "polar").tolist():
        results[i] = result_from_phase_map(np.asarray(load_record(paths[i], "polar")), source=str(paths[i]))
    chunks = [vol_rows[s:s + chunk] for s in range(0, len(vol_rows), chunk)]
    jobs = [([str(paths[i]) for i in rows], harmonics, phase_options) for rows in chunks]
    for rows, out in zip(chunks, map_items(_analyze_chunk, jobs, desc="phase analysis")):
        results.update(zip(rows.tolist(), out))
    return [results[i] for i in range(len(table))]


def config_schema(config: dict) -> Schema:
    """The schema a run with this config reads: its label, its covariates, esv when min_esv_ml excludes by it."""
    s = SpectSettings.of(config)
    return run_schema(CoreSettings.of(config).label or LABEL, list(s.analysis.clinical),
                      need_esv=s.min_esv_ml is not None, response=s.response)


def load(config: dict, ctx) -> Cohort[Exclusions]:
    """The cohort of a run: the user's folder (cohort.dir) or the default cohort in the run's cache."""
    s = SpectSettings.of(config)
    core = CoreSettings.of(config)
    label = core.label or LABEL
    min_esv = s.min_esv_ml
    schema = config_schema(config)
    if core.cohort.dir:
        root = Path(core.cohort.dir).expanduser()
        records = core.cohort.records
        table = load_cohort(root, schema, table=s.clinical_csv,
                            allow_outside=core.cohort.allow_outside_paths, log=ctx.log, records=records,
                            progress=ctx.progress if records == "read" else None,
                            grid=(s.phase.rings, s.phase.sectors), map_items=ctx.map)
    else:
        if label != LABEL:
            raise CardioError(f"label: the synthetic cohort's outcome column is {LABEL!r}, not {label!r} "
                              "(set cohort.dir for a cohort of your own)")
        syn = s.synthetic
        root = write_default_cohort(ctx.cache, syn.n_patients, syn.seed, syn.gates, ctx.progress, slices=syn.slices,
                                    size=syn.size, truth=dict(syn.truth), esv_outliers=syn.esv_outliers,
                                    map_items=ctx.map)
        table = load_cohort(root, schema, log=ctx.log, map_items=ctx.map)
    log_orientation(table, ctx.log)
    table, excluded = exclude_small_esv(table, min_esv)
    if excluded:
        ctx.log.info("excluded %d patient(s) with ESV < %s ml before the analysis (He et al.'s outlier step): %s",
                     len(excluded), min_esv, ", ".join(ctx.pseudonyms(excluded, "P")))  # never an id
    labels = table[label].dropna()
    if len(labels) and labels.nunique() < 2:  # no label at all: a cohort to predict, or the core's run check names it
        csv = root / (s.clinical_csv or schema.table)
        raise CardioError(f"{csv}: label column {label!r} is constant ("
                          + (f"{labels.iloc[0]:g} for all {len(labels)} labelled records" if len(labels) else
                             "empty in every row") + "); the response models need responders and non-responders")
    paths = dict(zip(table["record_id"], zip(table["file"], table["kind"])))
    outcomes = tuple(c for c in dict.fromkeys((*s.response.outcomes, *s.outcomes)) if c in table.columns)
    return Cohort(table, loader=lambda rid: load_record(*paths[rid]), label=label, root=root, outcomes=outcomes,
                  targets=(label,), level=schema.level, aggregate=schema.aggregate,
                  stage=Exclusions(tuple(excluded), min_esv))


@dataclass(frozen=True)
class Exclusions:
    """What load tells the later stages: the patients left out below the ESV floor (He et al.'s outlier step)."""

    esv_excluded: tuple[str, ...] = ()
    min_esv_ml: float | None = None


def check_min_esv(min_esv_ml: float | None) -> float | None:
    """spect_polar.min_esv_ml: null or a number of ml > 0 (one line naming the key otherwise)."""
    if min_esv_ml is None:
        return None
    if isinstance(min_esv_ml, bool) or not isinstance(min_esv_ml, (int, float)) or not min_esv_ml > 0:
        raise CardioError(f"spect_polar.min_esv_ml = {min_esv_ml!r} is out of range; allowed: null or a number "
                          "of ml > 0")
    return float(min_esv_ml)


def exclude_small_esv(table: pd.DataFrame, min_esv_ml: float | None) -> tuple[pd.DataFrame, list[str]]:
    """(table without the patients whose baseline ESV is below `min_esv_ml`, their patient ids).

    He et al. excluded one of 103 patients for an ESV of 16 ml, "an outlier caused by the low resolution of
    gated SPECT MPI"; the rule is label-free, so it runs on the whole cohort before any split. `esv` is a
    number column of the schema, required when min_esv_ml is set (run_schema). A patient with a small ESV on
    any scan is excluded whole.
    """
    limit = check_min_esv(min_esv_ml)
    if limit is None:
        return table, []
    small = table.loc[(table["esv"] < limit).to_numpy(), "patient_id"].astype(str).unique().tolist()
    return table.loc[~table["patient_id"].isin(small)].reset_index(drop=True), small
