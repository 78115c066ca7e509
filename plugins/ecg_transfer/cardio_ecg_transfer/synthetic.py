"""The embedded default cohort: synthetic CRT patients with multi-beat ECGs written as WFDB records.

Each beat is a sum of Gaussians (P, Q, R, S, T waves, as in the ECGSYN model of McSharry et
al. 2003, written here in the time domain) placed on R-peak times with heart-rate variability
(respiratory and 0.1 Hz modulation plus jitter), then baseline wander, mains hum and noise are
added. Every QRS has a broad R wave that carries, in the middle, a mid-QRS notch of the
patient's depth (`_notch`, 0 = one slurred hump, 1 = a deep M-shaped notch; the "mid-QRS
notching" of the strict LBBB criteria of Strauss et al. 2011), the same in every beat. Patients
with left bundle branch block (LBBB) have a wide monophasic R and a discordant T wave; the others
an intraventricular conduction delay (q, notched R, S, and a terminal r' of random size that says
nothing about response) with a concordant T.

Response (a >= 15 % fall of LV end-systolic volume, as in the paper) depends mostly on the notch
depth, which no table column records (a marker of true left-sided conduction block, the
dyssynchrony CRT corrects): its share of the response logit (SD about 1.9) is several times that
of QRS duration (about 0.4) or LBBB (about 0.3), which keep a real but smaller effect, as do
LVEF, diabetes and scar. So a model that reads the waveform can beat the guideline rule (LBBB
and QRS >= 150 ms): with 71 patients and 5-fold patient-level cross-validation, a logistic
regression on the PCA of each patient's mean beat spectrogram scored AUC 0.76 against 0.66 for
the rule (mean over seeds 0-3; seeds 4-7: 0.71 against 0.55). The covariates follow Table 1
of the paper (He et al. 2023). Everything is deterministic from the seed; the files are read
back through records.py.

The default effects build the paper's conclusion into the cohort: a table from them checks the
pipeline and is no evidence for the claim. The neutral setting, `ecg_transfer.synthetic.effects.notch:
0` with every other effect kept (QRS, LBBB, LVEF, diabetes, scar), plants no advantage for the
waveform: the notch is still drawn in every beat but says nothing about response, and what the ECG
adds over the table is only the true QRS duration and LBBB that the table reads with error. There
the transfer ResNet against the guideline rule, its pre-specified comparator, should differ by
chance only (tests/plugins/ecg_transfer/test_neutral.py: 40 patients, 2 folds, ΔAUC -0.170
[-0.420, +0.080]).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import wfdb
from scipy.special import ndtr

from cardio import CardioError, write_csv, write_text_atomic
from cardio_ecg_transfer.lead_codes import DERIVED, derive_limb_leads
from cardio_response.volumetric import VolumetricResponse, synthetic_followup

#: Version of the generator: bump it when the same parameters would give other files.
VERSION = 4  # 3: the limb leads III, aVR, aVL, aVF derived from I and II; 4: follow-up LVESV and dates
_MANIFEST = "synthetic.json"
#: Per-lead gain of (P wave, QRS and T wave): a rough frontal/precordial projection of one dipole (III, aVR, aVL
#: and aVF are derived from I and II: their gains are the derived ones).
#: The QRS and T share a gain so that the T stays discordant to the QRS in every lead.
LEAD_GAINS = {"I": (0.6, 0.9), "II": (1.0, 1.0), "III": (0.4, 0.1), "aVR": (-0.8, -0.95), "aVL": (0.1, 0.4),
              "aVF": (0.7, 0.55), "V1": (0.5, -1.3), "V2": (0.4, -1.1), "V3": (0.4, -0.3), "V4": (0.5, 0.6),
              "V5": (0.5, 1.1), "V6": (0.5, 1.0)}


def _clip_normal(rng, mean, sd, lo, hi, n):
    return np.clip(rng.normal(mean, sd, n), lo, hi)


#: Planted effects on the response logit (config ecg_transfer.synthetic.effects): notch per unit depth (centred at
#: 0.45), QRS per ms (centred at 170 ms), LBBB, LVEF per % (centred at 27 %), diabetes, scar per % (centred at 26 %),
#: the intercept and the SD of the unexplained part. The report states them ("synthetic truth").
EFFECTS = {"notch": 7.0, "qrs_per_ms": 0.018, "lbbb": 0.8, "lvef_per_pct": 0.04, "dm": -0.5,
           "scar_per_pct": -0.025, "intercept": 0.5, "noise_sd": 0.4}


def effects(given: dict | None = None) -> dict:
    """EFFECTS with the given values over them; an unknown name or a non-number is one line."""
    out = dict(EFFECTS)
    for k, v in (given or {}).items():
        if k not in EFFECTS:
            raise CardioError(f"ecg_transfer.synthetic.effects.{k} is not a planted effect; use any of "
                              f"{sorted(EFFECTS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise CardioError(f"ecg_transfer.synthetic.effects.{k} = {v!r} must be a finite number")
        out[k] = float(v)
    if out["noise_sd"] < 0:
        raise CardioError(f"ecg_transfer.synthetic.effects.noise_sd = {out['noise_sd']:g} must be >= 0")
    return out


def cohort_table(n_patients: int = 71, seed: int = 0, planted: dict | None = None) -> pd.DataFrame:
    """Covariates, hidden waveform parameters (columns starting with `_`) and response of each patient.

    `planted`: the response logit's effects (EFFECTS, the defaults, where not given)."""
    e = effects(planted)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    n = int(n_patients)
    c = _patient_draws(rng, n)
    # by default the notch term dominates (7.0 x SD 0.27); QRS (0.018 x SD 21 ms) and LBBB (0.8 x SD 0.4) are smaller
    logit = (e["intercept"] + e["qrs_per_ms"] * (c["qrs_true"] - 170) + e["lbbb"] * c["lbbb"]
             + e["lvef_per_pct"] * (c["lvef"] - 27) + e["notch"] * (c["notch"] - 0.45) + e["dm"] * c["dm"]
             + e["scar_per_pct"] * (c["scar"] - 26) + e["noise_sd"] * rng.normal(0, 1, n))
    responder = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"{i + 1:03d}" for i in range(n)]
    return _table([f"pt{i}" for i in ids], [f"crt{i}" for i in ids], c, responder, rng, _followup_rng(seed))


def _patient_draws(rng, n: int) -> dict[str, np.ndarray]:
    """The covariates and hidden waveform parameters of n patients, none of them drawn from response."""
    lbbb = (rng.random(n) < 0.80).astype(int)
    qrs_true = np.where(lbbb == 1, _clip_normal(rng, 176, 20, 130, 230, n), _clip_normal(rng, 158, 20, 120, 210, n))
    # mid-QRS notch depth, 0..1: often deep in LBBB (near-bimodal: strict or not), mostly shallow otherwise
    notch = np.where(lbbb == 1, rng.beta(1.2, 1.2, n), rng.beta(1.0, 2.5, n))
    lvef = np.round(_clip_normal(rng, 26.9, 5.1, 12, 35, n), 1)
    age = np.round(_clip_normal(rng, 61.8, 12.6, 25, 88, n)).astype(int)
    male = (rng.random(n) < 0.79).astype(int)
    height = np.round(np.where(male == 1, _clip_normal(rng, 169, 6, 150, 190, n),
                               _clip_normal(rng, 160, 6, 140, 180, n)), 1)
    weight = np.round(_clip_normal(rng, 67.8, 14.7, 40, 120, n), 1)
    dm = (rng.random(n) < 0.21).astype(int)
    scar = np.round(_clip_normal(rng, 26, 11.5, 0, 60, n), 1)
    lvedv = np.round(_clip_normal(rng, 286, 85, 140, 520, n))
    # measured QRS duration and the reader's LBBB call: the true values with reading error
    qrs_ms = np.round(qrs_true + rng.normal(0, 6, n)).astype(int)
    lbbb_read = np.where(rng.random(n) < 0.04, 1 - lbbb, lbbb)
    return {"lbbb": lbbb, "qrs_true": qrs_true, "notch": notch, "lvef": lvef, "age": age, "male": male,
            "height": height, "weight": weight, "dm": dm, "scar": scar, "lvedv": lvedv,
            "lvesv": np.round(lvedv * (1 - lvef / 100.0)), "qrs_ms": qrs_ms, "lbbb_read": lbbb_read}


def _table(patient_ids: Sequence[str], record_ids: Sequence[str], c: dict[str, np.ndarray], responder: np.ndarray,
           rng, followup: np.random.Generator) -> pd.DataFrame:
    """The cohort table of `_patient_draws` and the response; the LVESV reduction and the drugs are drawn here, the
    follow-up volume and the dates that the papers' rule checks (cardio_response.volumetric) from `followup`."""
    n = len(responder)
    responder = np.asarray(responder, dtype=float)
    reduction = np.where(responder == 1, rng.uniform(15, 45, n), rng.uniform(-10, 14.9, n))
    reduction[np.isnan(responder)] = np.nan  # an unknown outcome has no follow-up volume either
    return pd.DataFrame({
        "patient_id": list(patient_ids), "record_id": list(record_ids),
        "ecg": [f"ecg/{r}" for r in record_ids], "site": "synthetic",
        "responder": responder.astype(int) if not np.isnan(responder).any() else pd.array(responder, dtype="Int64"),
        "lvesv_reduction_pct": np.round(reduction, 1),
        "age": c["age"], "sex": c["male"], "height_cm": c["height"], "weight_kg": c["weight"],
        "qrs_ms": c["qrs_ms"], "lbbb": c["lbbb_read"], "lvef": c["lvef"], "lvedv": c["lvedv"], "lvesv": c["lvesv"],
        "scar": c["scar"],
        "acei_arb": (rng.random(n) < 0.82).astype(int), "ckd": (rng.random(n) < 0.07).astype(int), "dm": c["dm"],
        "hypertension": (rng.random(n) < 0.46).astype(int), "smoking": (rng.random(n) < 0.42).astype(int),
        "beta_blocker": (rng.random(n) < 0.90).astype(int), "spironolactone": (rng.random(n) < 0.86).astype(int),
        "digoxin": (rng.random(n) < 0.20).astype(int), "diuretic": (rng.random(n) < 0.86).astype(int),
        **synthetic_followup(followup, c["lvesv"], np.round(reduction, 1), VolumetricResponse()),
        "_qrs_true_ms": c["qrs_true"], "_lbbb_true": c["lbbb"], "_notch": c["notch"],
    })


def _beat_times(rng, seconds: float, hr: float) -> np.ndarray:
    """R-peak times (s) from before 0 to after the end: respiratory and 0.1 Hz RR modulation, jitter."""
    rr0 = 60.0 / hr
    f_resp, ph1, ph2 = rng.uniform(0.2, 0.33), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    a_resp, a_lf = rng.uniform(0.01, 0.04), rng.uniform(0.01, 0.03)
    t, out = -rr0 * rng.uniform(0.5, 1.0), []
    while t < seconds + 1.5:  # a loop over beats
        out.append(t)
        t += rr0 * (1 + a_resp * np.sin(2 * np.pi * f_resp * t + ph1) + a_lf * np.sin(2 * np.pi * 0.1 * t + ph2)
                    + 0.01 * rng.standard_normal())
    return np.asarray(out)


def _waves(row: pd.Series, rng) -> tuple[np.ndarray, np.ndarray]:
    """(P wave, QRS+T) Gaussian parameters: rows of (amplitude mV, offset from R s, width s, T flag).

    The notch is a narrow negative Gaussian (fixed width in ms, not scaled with the QRS) in the
    middle of a broad R wave: at depth 0 the R is one slurred hump, at depth 1 an M-shaped
    notched R. Its sharp edges (5 ms SD) put energy at 10-60 Hz that a wider QRS does not, so
    the spectrogram shows it clearly above the noise, in every beat of the patient.
    """
    d = float(row["_qrs_true_ms"]) / 1000.0
    n = float(row["_notch"])
    a = rng.uniform(0.9, 1.5)
    pr = rng.uniform(0.15, 0.21)
    p = np.array([[rng.uniform(0.08, 0.16), -pr, 0.022, 0.0]])
    notch_w = rng.uniform(0.0045, 0.0055)
    t_off, t_w = d / 2 + rng.uniform(0.14, 0.2), rng.uniform(0.05, 0.07)
    if int(row["_lbbb_true"]):
        # broad R in two halves (slight random asymmetry), spanning the QRS duration, discordant T
        skew = rng.uniform(-0.1, 0.1) * d
        qrs = [[a, -0.11 * d + skew / 2, 0.12 * d, 0], [a * rng.uniform(0.85, 1.05), 0.11 * d + skew / 2, 0.12 * d, 0],
               [-0.9 * n * a, skew / 2, notch_w, 0],                                  # mid-QRS notch
               [-0.35 * a, t_off, t_w, 1]]
    else:
        # intraventricular conduction delay: q, broad (possibly notched) R, S and a terminal r' of random
        # size that says nothing about response (a distractor), concordant T
        qrs = [[-0.12 * a, -0.36 * d, 0.05 * d, 0], [a, -0.1 * d, 0.1 * d, 0], [-0.75 * n * a, -0.1 * d, notch_w, 0],
               [-0.4 * a, 0.14 * d, 0.07 * d, 0], [a * rng.uniform(0.1, 0.5), 0.34 * d, 0.07 * d, 0],
               [0.25 * a, t_off, t_w, 1]]
    return p, np.asarray(qrs, dtype=np.float64)


def synthesize_ecg(row: pd.Series, seed: int, fs: float = 360.0, seconds: float = 10.0,
                   leads: Sequence[str] = ("II",), return_beats: bool = False):
    """ECG (samples, leads) in mV of one patient row of `cohort_table` (row.name seeds it);
    with `return_beats` also the R-peak sample indices of every synthesized beat (a few lie just
    outside the record: part of their QRS or T wave may be inside)."""
    unknown = [name for name in leads if name not in LEAD_GAINS]
    if unknown:
        raise CardioError(f"synthetic ECG: unknown lead(s) {unknown}; choose from {list(LEAD_GAINS)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, int(row.name)]))
    hr = float(np.clip(rng.normal(72, 10), 50, 105))
    beats = _beat_times(rng, seconds, hr)
    p, qrs = _waves(row, rng)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    rr = np.diff(beats, append=beats[-1] + 60 / hr)
    # III, aVR, aVL and aVF are drawn as a cart derives them, from I and II (Einthoven's law holds, noise included)
    derived = [name for name in leads if name in DERIVED]
    drawn = list(dict.fromkeys([*(name for name in leads if name not in DERIVED), *(("I", "II") if derived else ())]))
    out = np.empty((n, len(drawn)))
    for j, lead in enumerate(drawn):
        gp, gq = LEAD_GAINS[lead]
        comp = np.vstack([p * [gp, 1, 1, 1], qrs * [gq, 1, 1, 1]])
        # T waves move with the RR interval (Bazett-like sqrt scaling); QRS and P do not
        shift = comp[None, :, 1] + comp[None, :, 3] * 0.1 * (np.sqrt(rr[:, None] / 0.8) - 1)
        centres = (beats[:, None] + shift).ravel()
        amp = np.broadcast_to(comp[None, :, 0], shift.shape).ravel()
        width = np.broadcast_to(comp[None, :, 2], shift.shape).ravel()
        near = np.abs(t[:, None] - centres[None, :]) < 6 * width[None, :]
        out[:, j] = (amp * np.exp(-0.5 * ((t[:, None] - centres) / width) ** 2) * near).sum(axis=1)
    # baseline wander (respiration and movement), mains hum, broadband noise: shared then per lead
    wander = sum(rng.uniform(0.03, 0.15) * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t + rng.uniform(0, 6.3))
                 for _ in range(2))
    mains = rng.uniform(0, 0.02) * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6.3))
    noise_sd = rng.uniform(0.008, 0.03)
    out += (wander + mains)[:, None] + rng.normal(0, noise_sd, out.shape)
    limb = derive_limb_leads({name: out[:, j] for j, name in enumerate(drawn)})
    out = np.stack([limb[name] for name in leads], axis=1)
    if return_beats:
        return out, np.rint(beats * fs).astype(np.int64)
    return out


def _params(n_patients, seed, fs, seconds, leads, planted=None) -> dict:
    out = {"version": VERSION, "n_patients": int(n_patients), "seed": int(seed), "fs": float(fs),
           "seconds": float(seconds), "leads": list(leads)}
    if planted is not None and effects(planted) != EFFECTS:  # the default cohort keeps its manifest
        out["effects"] = effects(planted)
    return out


def _checked_leads(fs, seconds, leads) -> tuple[str, ...]:
    if float(fs) < 100 or float(seconds) < 2:
        raise CardioError(f"synthetic cohort needs fs >= 100 Hz and seconds >= 2, got fs={fs}, seconds={seconds}")
    return tuple(str(name) for name in ([leads] if isinstance(leads, str) else leads))


def _reusable(dest: Path, params: dict) -> Path | None:
    """The cohort.csv of a complete cohort in `dest` written with the same parameters, else None."""
    csv, manifest = dest / "cohort.csv", dest / _MANIFEST
    if not (manifest.is_file() and csv.is_file()):
        return None
    try:
        same = json.loads(manifest.read_text()) == params
    except (OSError, ValueError):
        same = False
    if same:
        names = pd.read_csv(csv, usecols=["ecg"])["ecg"]
        if all((dest / f"{e}.hea").is_file() and (dest / f"{e}.dat").is_file() for e in names):
            return csv
    return None


def _write(dest: Path, table: pd.DataFrame, params: dict, seed: int, fs: float, seconds: float,
           leads: tuple[str, ...]) -> Path:
    """One WFDB record per row of `table` (16-bit, 1 uV), then cohort.csv, then the manifest."""
    csv, manifest = dest / "cohort.csv", dest / _MANIFEST
    manifest.unlink(missing_ok=True)  # written last: a half-written cohort is never reused
    ecg_dir = dest / "ecg"
    ecg_dir.mkdir(parents=True, exist_ok=True)
    for _, row in table.iterrows():
        sig = synthesize_ecg(row, seed, fs, seconds, leads)
        wfdb.wrsamp(row["record_id"], fs=float(fs), units=["mV"] * len(leads), sig_name=list(leads),
                    p_signal=sig, fmt=["16"] * len(leads), adc_gain=[1000.0] * len(leads),
                    baseline=[0] * len(leads), comments=["cardio synthetic CRT cohort"], write_dir=str(ecg_dir))
    write_csv(csv, table)
    write_text_atomic(manifest, json.dumps(params, indent=1))
    return csv


def write_synthetic_cohort(dest: Path | str, n_patients: int = 71, seed: int = 0, fs: float = 360,
                           seconds: float = 10, leads: Sequence[str] = ("II",), planted: dict | None = None) -> Path:
    """Write (or reuse) the synthetic cohort in `dest`: ecg/<record>.hea/.dat (WFDB, 16-bit, 1 uV
    resolution) and cohort.csv. Returns the CSV path. Columns starting with `_` hold the hidden
    generating parameters (for checks only; a model must not read them)."""
    dest = Path(dest)
    if int(n_patients) < 2:
        raise CardioError(f"synthetic cohort needs at least 2 patients, got {n_patients}")
    leads = _checked_leads(fs, seconds, leads)
    params = _params(n_patients, seed, fs, seconds, leads, planted)
    return _reusable(dest, params) or _write(dest, cohort_table(n_patients, seed, planted), params, seed, fs,
                                             seconds, leads)


#: The columns of a multimodal cohort's patients (hookspecs.cardio_write_synthetic).
PATIENT_COLUMNS = ("patient_id", "responder", "drive")


def notch_of_drive(drive: np.ndarray) -> np.ndarray:
    """Mid-QRS notch depth (0..1) from a multimodal cohort's drive: the standard normal CDF, strictly monotone, so
    a standard-normal drive gives depths uniform on 0..1."""
    return ndtr(np.asarray(drive, dtype=float))


def _checked_patients(patients: pd.DataFrame) -> pd.DataFrame:
    """The patients with a fresh index, or one line naming what is wrong with them."""
    missing = [c for c in PATIENT_COLUMNS if c not in getattr(patients, "columns", ())]
    if missing:
        raise CardioError(f"multimodal synthetic ECG: the patients lack column(s) {missing}")
    p = patients[list(PATIENT_COLUMNS)].reset_index(drop=True)
    ids = p["patient_id"]
    if len(p) < 2 or not all(isinstance(i, str) and i.strip() for i in ids) or not ids.is_unique:
        raise CardioError(f"multimodal synthetic ECG: needs at least 2 patients with distinct non-empty string "
                          f"patient_id values, got {len(p)} row(s)")
    responder = pd.to_numeric(p["responder"], errors="coerce")
    if not responder.dropna().isin([0, 1]).all() or responder.isna().sum() > p["responder"].isna().sum():
        raise CardioError("multimodal synthetic ECG: responder must be 0, 1 or missing")
    drive = pd.to_numeric(p["drive"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(drive).all():
        raise CardioError("multimodal synthetic ECG: drive must be a finite number for every patient")
    return p.assign(responder=responder.to_numpy(dtype=float), drive=drive)


def multimodal_table(patients: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The cohort table of a multimodal cohort's patients: their patient_id and responder as given, the mid-QRS
    notch depth (`_notch`) from their drive (notch_of_drive), and every other covariate and hidden waveform
    parameter drawn from the seed as cohort_table draws it, but independent of response (the planted effects
    play no part). So in the multimodal cohort the ECG carries exactly the drive: QRS duration, LBBB, LVEF and
    the rest say nothing about response, and the guideline rule scores at chance. Records are crt0001, ... in
    the patients' order."""
    p = _checked_patients(patients)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    c = _patient_draws(rng, len(p))
    c["notch"] = notch_of_drive(p["drive"].to_numpy())  # replaces the drawn depth: response reaches the ECG only here
    records = [f"crt{i + 1:04d}" for i in range(len(p))]
    return _table(p["patient_id"].tolist(), records, c, p["responder"].to_numpy(), rng, _followup_rng(seed))


def _followup_rng(seed: int) -> np.random.Generator:
    """The stream of the follow-up echo's volume and dates: apart from the covariates' and response's."""
    return np.random.default_rng(np.random.SeedSequence([seed, 56]))


def _digest(patients: pd.DataFrame) -> str:
    p = _checked_patients(patients)
    h = hashlib.sha256("\0".join(p["patient_id"]).encode())
    h.update(p["responder"].to_numpy(dtype=float).tobytes())
    h.update(p["drive"].to_numpy(dtype=float).tobytes())
    return h.hexdigest()


def write_multimodal_cohort(patients: pd.DataFrame, dest: Path | str, seed: int, fs: float = 360,
                            seconds: float = 10, leads: Sequence[str] = ("II",)) -> Path:
    """Write (or reuse) the ECG part of a multimodal cohort in `dest`, in write_synthetic_cohort's layout: one
    WFDB record per patient (ecg/crt0001.hea/.dat, ...) and cohort.csv with multimodal_table's columns. Returns
    the CSV path. The same patients, seed and settings write the same bytes."""
    dest = Path(dest)
    leads = _checked_leads(fs, seconds, leads)
    table = multimodal_table(patients, seed)
    params = {**_params(len(table), seed, fs, seconds, leads), "multimodal": _digest(patients)}
    return _reusable(dest, params) or _write(dest, table, params, seed, fs, seconds, leads)
