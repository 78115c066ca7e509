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
(data.truth.dyssynchrony_per_sd); QRS, male sex, scar burden and EDV add clinical effects. The hidden truth
(late-zone angle, magnitude, true PSD/PBW) is kept in truth.csv, outside clinical.csv.

Layout of a cohort folder: clinical.csv, volumes/<id>.dcm, truth/<id>_true_phase.npy, truth.csv,
params.json. It is an entry of the run's cache (cardio.Cache, keyed by params.json's content):
written whole into a temporary folder, renamed into place, then reused by every later run.

A user cohort is a folder of volumes (NM DICOM, or .npy (gates, slices, rows, cols)) or ready
phase polar maps (.npy / .csv, rings x sectors) named <patient id>.<ext> (or listed in a `file`
column of the CSV), plus a clinical CSV with one row per patient.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from cardio import Cache, CardioError, Cohort, confined_path
from cardio_spect_polar.dicom_io import DICOM_SUFFIXES, GatedVolume, read_polar_map, read_volume, write_gated_dicom
from cardio_spect_polar.phantom import LATERAL_DEG, make_phantom
from cardio_spect_polar.phase import PhaseResult, phase_analysis_batch, result_from_phase_map

CLINICAL_COLUMNS = ("patient_id", "responder", "age", "sex", "qrs_ms", "lvef", "edv", "esv", "scar_burden",
                    "nyha", "cad", "ckd", "acei_arb", "ischemia", "smoking", "lvesv_reduction_pct")
# Columns that define or derive from the outcome: declared as Cohort.outcomes, so the core refuses them
# as covariates and permutes them with the label in the null control.
OUTCOME_COLUMNS = ("lvesv_reduction_pct",)
COVARIATES = tuple(c for c in CLINICAL_COLUMNS[2:] if c not in OUTCOME_COLUMNS)
GENERATOR_VERSION = 2  # bump when the simulation changes, so that cached cohorts are rewritten
CACHE_NAMESPACE = "spect_polar"
LABEL = "responder"
RECORD_SUFFIXES = DICOM_SUFFIXES | {".npy", ".csv"}
# Logistic response model; the intercept puts the response rate near the paper's 44%.
# `dyssynchrony_per_sd` is the effect of the global dyssynchrony magnitude (what PSD/PBW measure) per SD
# (45 degrees); the config's data.truth overrides any of these (the report states them as synthetic truth).
RESPONSE_COEF = {"intercept": -1.17, "late_lateral": 2.2, "dyssynchrony_per_sd": 0.5, "qrs_per_ms": 0.03,
                 "male": 0.6, "scar_per_pct": -0.035, "edv_per_ml": -0.003}

Progress = Callable[..., Iterable]


def _tqdm(iterable, desc: str = "", total: int | None = None):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, leave=False)


def response_coef(truth: dict | None = None) -> dict[str, float]:
    """The response model's coefficients: the defaults overridden by `truth` (data.truth)."""
    unknown = sorted(set(truth or {}) - set(RESPONSE_COEF))
    if unknown:
        raise CardioError(f"data.truth: unknown key(s) {unknown}; known: {sorted(RESPONSE_COEF)}")
    return {k: float((truth or {}).get(k, v)) for k, v in RESPONSE_COEF.items()}


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

    # Imaging truth: where the latest zone is, how late, how wide; where the scar is.
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

    late_lateral = np.cos(np.radians(late_angle - LATERAL_DEG)) * dyssynchrony / (dyssynchrony + 60)
    c = response_coef(truth)
    logit = (c["intercept"] + c["late_lateral"] * late_lateral + c["dyssynchrony_per_sd"] * (dyssynchrony - 150) / 45
             + c["qrs_per_ms"] * (qrs - 157) + c["male"] * male
             + c["scar_per_pct"] * (scar - 27) + c["edv_per_ml"] * (edv - 291))
    p_resp = 1 / (1 + np.exp(-logit))
    u = rng.random(n)
    responder = u < p_resp
    # Follow-up LVESV reduction (%) consistent with the draw: >= 15% exactly for responders (latent
    # logistic variable logit - logit(u), scaled); it defines the outcome and is declared as such.
    lvesv_reduction = 15.0 + 10.0 * (logit - np.log(u / (1 - u)))

    if not 0 <= esv_outliers <= n // 10:
        raise CardioError(f"data.esv_outliers = {esv_outliers} is out of range; allowed: 0 to {n // 10} "
                          f"(a tenth of {n} patients)")
    # Drawn last, so the cohort with no outliers is the one earlier versions wrote.
    outlier_rows = rng.choice(n, size=esv_outliers, replace=False) if esv_outliers else np.zeros(0, int)
    esv[outlier_rows] = rng.uniform(12.0, 18.0, esv_outliers).round(1)

    clinical = pd.DataFrame({
        "patient_id": ids, "responder": responder.astype(int), "age": age.astype(int), "sex": male.astype(int),
        "qrs_ms": qrs.astype(int), "lvef": lvef, "edv": edv, "esv": esv, "scar_burden": scar, "nyha": nyha,
        "cad": cad.astype(int), "ckd": ckd.astype(int), "acei_arb": acei.astype(int),
        "ischemia": ischemia.astype(int), "smoking": smoking.astype(int),
        # rounding keeps the 15% cut exact
        "lvesv_reduction_pct": np.where(responder, np.maximum(lvesv_reduction.round(2), 15.0),
                                        np.minimum(lvesv_reduction.round(2), 14.99))})
    truth = pd.DataFrame({
        "patient_id": ids, "late_angle": late_angle.round(2), "late_position": late_position.round(4),
        "late_width": width.round(4), "late_lateral": late_lateral.round(4), "dyssynchrony": dyssynchrony.round(2),
        "base_phase": base_phase.round(2), "scar_territory": territory, "scar_angle": scar_angle.round(2),
        "scar_position": scar_position.round(4), "counts": counts.round(2), "p_response": p_resp.round(4)})
    return clinical, truth


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


def write_default_cohort(cache: Cache, n_patients: int = 103, seed: int = 0, gates: int = 8,
                         progress: Progress | None = None, *, slices: int = 24, size: int = 48,
                         truth: dict | None = None, esv_outliers: int = 0) -> Path:
    """The default cohort's folder in a cardio.Cache (`ctx.cache`): written once, whole, then reused."""
    if gates not in (8, 16):
        raise CardioError(f"the synthetic cohort is gated with 8 or 16 gates, got {gates}")
    if not (16 <= slices <= 64 and 32 <= size <= 128):
        raise CardioError(f"synthetic volumes need 16-64 slices and 32-128 pixels a side, got {slices} x {size}")
    params = cohort_params(n_patients, seed, gates, slices, size, truth, esv_outliers)
    return cache.get(CACHE_NAMESPACE, params, lambda folder: _write_cohort(folder, params, progress or _tqdm),
                     version=GENERATOR_VERSION)


def _write_cohort(folder: Path, params: dict, progress: Progress) -> None:
    """Simulate the cohort and write it into a new folder (the cache renames it into place when whole)."""
    n_patients, seed, gates = params["n_patients"], params["seed"], params["gates"]
    clinical, truth = simulate_clinical(n_patients, seed, params["response_model"], params.get("esv_outliers", 0))
    (folder / "volumes").mkdir(parents=True)
    (folder / "truth").mkdir()
    true_psd, true_pbw = [], []
    for i in progress(range(n_patients), desc="writing SPECT cohort", total=n_patients):
        row, hid = clinical.iloc[i], truth.iloc[i]
        pid = row["patient_id"]
        ph = make_phantom(np.random.default_rng([seed, i, 7]), pattern="focal",
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
                          uid_seed=(str(seed), pid, str(GENERATOR_VERSION), str(gates)))
        np.save(folder / "truth" / f"{pid}_true_phase.npy", ph.true_phase.astype(np.float32))
        true_psd.append(ph.true_psd)
        true_pbw.append(ph.true_pbw)
    truth = truth.assign(true_psd=np.round(true_psd, 3), true_pbw=np.round(true_pbw, 3))
    clinical.to_csv(folder / "clinical.csv", index=False)
    truth.to_csv(folder / "truth.csv", index=False)
    (folder / "params.json").write_text(json.dumps(params, sort_keys=True, indent=1))


def default_cohort(cache: Cache, n_patients: int = 103, seed: int = 0, gates: int = 8,
                   progress: Progress | None = None, *, slices: int = 24, size: int = 48,
                   truth: dict | None = None, esv_outliers: int = 0) -> pd.DataFrame:
    """Write-or-reuse the default cohort and load it like a user cohort (plus true_phase_path)."""
    folder = write_default_cohort(cache, n_patients, seed, gates, progress, slices=slices, size=size, truth=truth,
                                  esv_outliers=esv_outliers)
    table = load_cohort(folder, folder / "clinical.csv", columns=COVARIATES, label="responder")
    table["true_phase_path"] = [str(folder / "truth" / f"{pid}_true_phase.npy") for pid in table["patient_id"]]
    return table


def _record_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "polar"
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CardioError(f"{path}: unreadable .npy file ({exc})") from exc
        if arr.ndim == 4:
            return "volume"
        if arr.ndim == 2:
            return "polar"
        raise CardioError(f"{path}: .npy of shape {arr.shape} is neither a volume (gates, slices, rows, cols) "
                          "nor a polar map (rings, sectors)")
    return "volume"


def load_cohort(folder: str | Path, clinical_csv: str | Path | None = None, *, columns: Sequence[str] = (),
                label: str | None = "responder", id_column: str = "patient_id",
                file_column: str = "file", allow_outside: bool = False,
                log: logging.Logger | None = None) -> pd.DataFrame:
    """Table of a cohort: record_id, patient_id, path, kind ('volume' | 'polar') and the CSV columns.

    `columns` (and `label`) are the columns the configuration names; a CSV without one of them,
    or patients without a volume / polar map, is an error that names the CSV. Files named in
    `file_column` stay inside `folder` unless `allow_outside` (each outside one is logged to `log`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CardioError(f"{folder}: cohort folder does not exist")
    csv = Path(clinical_csv) if clinical_csv is not None else folder / "clinical.csv"
    if not csv.is_absolute() and not csv.is_file():
        csv = folder / csv
    if not csv.is_file():
        raise CardioError(f"{csv}: clinical CSV not found")
    try:
        table = pd.read_csv(csv, dtype={id_column: str})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CardioError(f"{csv}: unreadable CSV ({exc})") from exc
    needed = [id_column, *columns, *([label] if label else [])]
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        raise CardioError(f"{csv}: missing column(s) {missing} named in the configuration; "
                          f"it has {list(table.columns)}")
    if table.empty:
        raise CardioError(f"{csv}: no patients (the CSV has a header only)")
    ids = table[id_column].astype(str).str.strip()
    if table[id_column].isna().any():
        raise CardioError(f"{csv}: {int(table[id_column].isna().sum())} row(s) lack a {id_column}")
    dup = ids.duplicated()
    if dup.any():
        raise CardioError(f"{csv}: {int(dup.sum())} duplicated {id_column} value(s) "
                          f"(CSV lines {[int(i) + 2 for i in np.flatnonzero(dup)][:10]})")
    if label:
        lab = pd.to_numeric(table[label], errors="coerce")
        bad = lab.isna() | ~lab.isin([0, 1])
        if bad.any():
            raise CardioError(f"{csv}: label column {label!r} must be 0/1; {int(bad.sum())} row(s) are not "
                              f"(CSV lines {[int(i) + 2 for i in np.flatnonzero(bad)][:10]})")
        table[label] = lab.astype(int)

    if file_column in table.columns:
        # The CSV is someone else's data: its file names stay inside the cohort folder unless allowed.
        paths = [confined_path(folder, str(f), allow_outside=allow_outside, what=f"{csv.name} file", log=log)
                 if pd.notna(f) else None for f in table[file_column]]
        lacking = [i for i, p in enumerate(paths) if p is None or not p.is_file()]
    else:
        index: dict[str, list[Path]] = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES and p.resolve() != csv.resolve():
                index.setdefault(p.stem if p.suffix else p.name, []).append(p)
        paths, lacking = [], []
        for i, pid in enumerate(ids):
            found = index.get(pid, [])
            if len(found) > 1:
                raise CardioError(f"{csv}: CSV line {i + 2} matches {len(found)} files in {folder}: "
                                  f"{[str(f.relative_to(folder)) for f in found]}; keep one, or add a "
                                  f"{file_column!r} column")
            paths.append(found[0] if found else None)
            if not found:
                lacking.append(i)
    if lacking:
        raise CardioError(f"{csv}: {len(lacking)} of {len(table)} patient(s) have no volume or polar map in "
                          f"{folder} (CSV lines {[i + 2 for i in lacking][:10]}{' ...' if len(lacking) > 10 else ''})")
    out = table.drop(columns=[file_column, id_column, "record_id", "patient_id", "path", "kind"], errors="ignore")
    out.insert(0, "kind", [_record_kind(p) for p in paths])
    out.insert(0, "path", [str(p) for p in paths])
    out.insert(0, "patient_id", ids.to_numpy())
    out.insert(0, "record_id", ids.to_numpy())
    return out.reset_index(drop=True)


def load_record(path: str | Path, kind: str | None = None) -> GatedVolume | np.ndarray:
    """A volume (GatedVolume) or a polar map (ndarray), by kind or from the file itself."""
    path = Path(path)
    kind = kind or _record_kind(path)
    return read_volume(path) if kind == "volume" else read_polar_map(path)


def analyze_records(table: pd.DataFrame, harmonics: int = 1, *, progress: Progress | None = None,
                    chunk: int = 8, **phase_options) -> list[PhaseResult]:
    """Phase analysis of every row of a cohort table (volumes analysed, polar maps summarised).

    phase_options go to phase.phase_analysis_batch (rings, sectors, band_px).
    """
    progress = progress or _tqdm
    results: list[PhaseResult | None] = [None] * len(table)
    kinds = table["kind"].to_numpy()
    paths = table["path"].to_numpy()
    vol_rows = np.flatnonzero(kinds == "volume")
    for i in np.flatnonzero(kinds == "polar"):
        results[i] = result_from_phase_map(read_polar_map(paths[i]), source=str(paths[i]))
    starts = range(0, len(vol_rows), chunk)
    for s in progress(starts, desc="phase analysis", total=len(starts)):
        rows = vol_rows[s:s + chunk]
        out = phase_analysis_batch([read_volume(paths[i]) for i in rows], harmonics, **phase_options)
        for i, r in zip(rows, out):
            results[i] = r
    return results  # type: ignore[return-value]


def load(config: dict, ctx) -> Cohort:
    """The cohort of a run: the user's folder (data.dir) or the default cohort in the run's cache."""
    data = config["data"]
    label = str(config.get("label") or LABEL)
    if data["dir"]:
        root = Path(data["dir"]).expanduser()
        table = load_cohort(root, data["clinical_csv"], columns=list(config["analysis"]["clinical"]), label=label,
                            allow_outside=bool(data["allow_outside_paths"]), log=ctx.log)
    else:
        if label != LABEL:
            raise CardioError(f"label: the synthetic cohort's outcome column is {LABEL!r}, not {label!r} "
                              "(set data.dir for a cohort of your own)")
        table = default_cohort(ctx.cache, int(data["n_patients"]), int(data["seed"]), int(data["gates"]),
                               progress=ctx.progress, slices=int(data["slices"]), size=int(data["size"]),
                               truth=dict(data.get("truth") or {}), esv_outliers=int(data.get("esv_outliers") or 0))
        root = Path(table["path"].iloc[0]).parent.parent
    csv_name = data["clinical_csv"] or Path(root) / "clinical.csv"
    table, excluded = exclude_small_esv(table, data.get("min_esv_ml"), csv_name)
    if excluded:
        ctx.log.info("excluded %d patient(s) with ESV < %g ml before the analysis (He et al.'s outlier step): %s",
                     len(excluded), float(data.get("min_esv_ml")), ", ".join(excluded))
    if table[label].nunique() < 2:
        raise CardioError(f"{data['clinical_csv'] or Path(root) / 'clinical.csv'}: label column {label!r} is constant "
                          f"({int(table[label].iloc[0])} for all {len(table)} patients); the response models need "
                          "responders and non-responders")
    paths = dict(zip(table["record_id"], zip(table["path"], table["kind"])))
    outcomes = tuple(c for c in (*OUTCOME_COLUMNS, *(data.get("outcomes") or ())) if c in table.columns)
    return Cohort(table, loader=lambda rid: load_record(*paths[rid]), label=label, root=root, outcomes=outcomes,
                  meta={"esv_excluded": excluded, "min_esv_ml": data.get("min_esv_ml")})


def exclude_small_esv(table: pd.DataFrame, min_esv_ml: float | None,
                      csv_name: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(table without the patients whose baseline ESV is below `min_esv_ml`, their patient ids).

    He et al. excluded one of 103 patients for an ESV of 16 ml, "an outlier caused by the low resolution of
    gated SPECT MPI"; the rule is label-free, so it runs on the whole cohort before any split.
    """
    if min_esv_ml is None:
        return table, []
    if isinstance(min_esv_ml, bool) or not isinstance(min_esv_ml, (int, float)) or not min_esv_ml > 0:
        raise CardioError(f"data.min_esv_ml = {min_esv_ml!r} is out of range; allowed: null or a number of ml > 0")
    if "esv" not in table.columns:
        raise CardioError(f"{csv_name}: data.min_esv_ml = {min_esv_ml} needs an 'esv' column (baseline ESV, ml)")
    esv = pd.to_numeric(table["esv"], errors="coerce")
    if esv.isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(esv.isna())][:10]
        raise CardioError(f"{csv_name}: column 'esv' must be numeric for data.min_esv_ml; CSV lines {rows} are not")
    small = (esv < float(min_esv_ml)).to_numpy()
    return table.loc[~small].reset_index(drop=True), table.loc[small, "patient_id"].astype(str).tolist()
