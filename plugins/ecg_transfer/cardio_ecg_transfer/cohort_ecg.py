"""The CRT cohort's ECGs through the stages: load (or write the synthetic cohort), filter, beat images."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import CardioError, Cohort, CoreSettings, Features
from cardio_ecg_transfer import cohort_table, lead_codes, synthetic
from cardio_ecg_transfer.beat_images import beat_windows, highpass, image_axes, input_spec, to_images
from cardio_ecg_transfer.beats import beat_bounds
from cardio_ecg_transfer.rpeaks import detect_rpeaks
from cardio_ecg_transfer.settings import EcgSettings

#: Cohort columns that never become model inputs or report rows (the file name of the ECG).
NOT_COVARIATES = ("ecg",)


#: The twelve standard leads in their usual order: the synthetic cohort's leads for a lead given by index.
STANDARD_LEADS = lead_codes.STANDARD_LEADS


def check_leads(leads) -> list[str] | None:
    """ecg_transfer.leads: null (one lead, ecg_transfer.lead) or a non-empty list of distinct lead names."""
    if leads is None:
        return None
    if isinstance(leads, str) or not isinstance(leads, (list, tuple)) or not leads \
            or not all(isinstance(n, str) and n.strip() for n in leads) or len(set(leads)) != len(leads):
        raise CardioError(f"config key ecg_transfer.leads = {leads!r} must be null or a list of distinct lead names "
                          "([I, II, V1])")
    return [str(n) for n in leads]


def _synthetic_leads(lead: str | int | None, leads: list[str] | None = None) -> tuple[str, ...]:
    """The leads the synthetic cohort writes so that ecg_transfer.lead (or .leads) picks leads in it."""
    if leads:
        unknown = [n for n in leads if n not in STANDARD_LEADS]
        if unknown:
            raise CardioError(f"config key ecg_transfer.leads: the synthetic cohort has the standard leads "
                              f"{list(STANDARD_LEADS)}, not {unknown}")
        return tuple(leads)
    if lead is None:
        return ("II",)
    if isinstance(lead, str):
        return (lead,)
    if lead >= len(STANDARD_LEADS):
        raise CardioError(f"config key ecg_transfer.lead = {lead}: the synthetic cohort has the "
                          f"{len(STANDARD_LEADS)} standard leads {list(STANDARD_LEADS)} (0-based index up to "
                          f"{len(STANDARD_LEADS) - 1})")
    return STANDARD_LEADS[:lead + 1]


def synthetic_signal(config: dict) -> dict:
    """fs, seconds and leads of a synthetic ECG for this config: the models' rate (ecg_transfer.fs), the length
    ecg_transfer.synthetic.seconds and the leads ecg_transfer.lead (or .leads) picks."""
    s = EcgSettings.of(config)
    leads = _synthetic_leads(s.lead, check_leads(s.leads))
    return dict(fs=float(s.fs), seconds=float(s.synthetic.seconds), leads=leads)


def write_multimodal(patients: pd.DataFrame, dest: Path, seed: int, config: dict) -> Path:
    """The ECG part of a multimodal synthetic cohort (hook cardio_write_synthetic): synthetic.write_multimodal_cohort
    at this config's rate, length and leads, so that a run with cohort.dir=dest reads it as written."""
    return synthetic.write_multimodal_cohort(patients, dest, seed, **synthetic_signal(config))


def cohort_source(config: dict, ctx) -> tuple[Path, bool]:
    """(cohort folder, synthetic?): the core's cohort.dir, or the synthetic cohort (ecg_transfer.synthetic), a
    folder of the run's cache (ecg_transfer/synthetic) written once for its size, seed, rate, length and lead(s)."""
    where = CoreSettings.of(config).cohort.dir
    if where:
        return Path(where).expanduser(), False
    made = EcgSettings.of(config).synthetic
    params = dict(n_patients=made.n_patients, seed=made.seed, **synthetic_signal(config),
                  planted=synthetic.effects(made.effects.as_dict()))
    folder = ctx.cache.get("ecg_transfer/synthetic", params,
                           lambda tmp: synthetic.write_synthetic_cohort(tmp, **params), version=synthetic.VERSION)
    return folder, True


def load(config: dict, ctx) -> Cohort:
    """The cohort table (cohort_table.SCHEMA, every problem at once) and each record's ECG at ecg_transfer.fs.

    A cohort without the label column loads as unlabelled (the label all missing), for cardio predict;
    cardio run's check of the study (the core's) refuses it."""
    s, core = EcgSettings.of(config), CoreSettings.of(config)
    label = core.label
    source, synthetic = cohort_source(config, ctx)
    leads = check_leads(s.leads)  # several leads per record: (leads, samples) arrays
    ecgs = cohort_table.load_cohort(source, cohort_table.schema(label, s), fs=float(s.fs), lead=s.lead,
                                    leads=leads, skip_bad=s.skip_bad, max_gap_s=float(s.max_gap_s),
                                    allow_outside=core.cohort.allow_outside_paths,
                                    progress=ctx.progress, log=ctx.log, config=config)
    if ecgs.skipped:
        ctx.log.warning("%d cohort ECG(s) left out as unreadable (ecg_transfer.skip_bad)", len(ecgs.skipped))
    # Columns starting with "_" hold a synthetic cohort's hidden generating parameters: never inputs. A declared
    # column the table lacks (or leaves empty) is left out, so that the covariate models name it as missing;
    # the label stays (all missing: an unlabelled cohort).
    table = ecgs.table
    table = table[[c for c in table.columns if not str(c).startswith("_")
                   and (c == label or table[c].notna().any())]].copy()
    signals = ecgs.signals
    overlap = () if synthetic else pretraining_overlap(signals, table, float(ecgs.fs), leads, config, ctx)
    return Cohort(table, loader=signals.__getitem__, label=label, root=ecgs.root,
                  stage=Recordings(float(ecgs.fs), tuple(leads or ()), bool(synthetic), len(ecgs.skipped),
                                   pretraining_overlap=overlap),
                  # what measures the outcome (the rule's reduction and follow-up volume): the core refuses them as
                  # covariates and permutes them with the label in a null control
                  outcomes=tuple(c for c in s.response.outcomes if c in table.columns), targets=(label,),
                  level=cohort_table.SCHEMA.level, aggregate=cohort_table.SCHEMA.aggregate)


def pretraining_overlap(signals, table: pd.DataFrame, fs: float, leads: list[str] | None, config: dict,
                        ctx) -> tuple[tuple[str, str, float], ...]:
    """The cohort ECGs that are MIT-BIH records the transfer models' backbone pretrains on (by content), logged
    with their count; none when nothing is pretrained on MIT-BIH or it is not at hand."""
    from cardio_ecg_transfer import aami, mitdb
    from cardio_ecg_transfer import pretraining_overlap as overlap

    s = EcgSettings.of(config)
    root = mitdb.mitdb_dir(s.mitdb_dir, ctx.cache_dir)
    if not (s.pretrain.enabled and s.finetune.transfer) or not root.is_dir():
        return ()
    lead = (leads.index("II") if leads and "II" in leads else 0) if leads else None
    one = {str(rid): (np.asarray(signals[str(rid)])[lead] if lead is not None else signals[str(rid)])
           for rid in table["record_id"].astype(str)}
    found = overlap.find(one, fs, root, aami.ds1_records(s.pretrain.records))
    if found:
        ctx.log.warning("%d of %d cohort ECG(s) are MIT-BIH records the backbone is pretrained on (by content: %s); "
                        "the report says so", len(found), len(one),
                        ", ".join(f"{m.record_id} = {m.mitdb_record}" for m in found[:5]))
    return tuple((m.record_id, m.mitdb_record, m.correlation) for m in found)


@dataclass(frozen=True)
class Recordings:
    """What load (and the high-pass of preprocess) hands to featurize: how the cohort's ECGs were read."""

    fs: float                        # every ECG resampled to this rate (Hz)
    leads: tuple[str, ...] = ()      # several leads in this order; empty: one lead (ecg_transfer.lead)
    synthetic: bool = False
    skipped: int = 0                 # unreadable ECGs left out (ecg_transfer.skip_bad)
    highpass_hz: float | None = None
    # (record_id, MIT-BIH record, waveform r) of cohort ECGs that are MIT-BIH records the backbone pretrains on
    pretraining_overlap: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class BeatImages:
    """What featurize hands to training and attribution beside the beat table and the images."""

    input: dict                      # what defines an image (input_spec), checked against pretrained weights
    freqs: tuple[float, ...]         # bin centres in cycles per beat window
    times: tuple[float, ...]         # bin centres as a fraction of the beat window
    leads: tuple[str, ...] = ()      # the leads of the rows (empty: one lead)


def preprocess(cohort: Cohort, config: dict, ctx) -> Cohort:
    """High-pass every lead once (zero phase, so R peaks do not move)."""
    fs = cohort.stage.fs
    cut = float(EcgSettings.of(config).preprocess.highpass_hz)
    filtered = {rid: highpass(cohort.array(rid), fs, cut)
                for rid in ctx.progress(cohort.table["record_id"].astype(str), desc="high-pass", total=len(cohort))}
    return dataclasses.replace(cohort, loader=filtered.__getitem__,
                               stage=dataclasses.replace(cohort.stage, highpass_hz=cut))


def _evenly(n: int, k: int) -> np.ndarray:
    if not k or n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def _window_timing(rpeaks: np.ndarray, kept: np.ndarray, fs: float, rr_factor: float) -> dict:
    """Each kept beat's window length (ms) and where its R peak sits in it (fraction): the image's bins are in
    cycles per window, which the Grad-CAM figure turns into Hz and ms from the R peak."""
    r = np.unique(np.asarray(rpeaks, dtype=np.int64))
    inner, start, end = beat_bounds(r, rr_factor)
    at = {int(v): i for i, v in enumerate(r[inner])}
    i = np.array([at[int(k)] for k in kept], dtype=np.int64)
    span = end[i] - start[i]
    return {"window_ms": span / fs * 1000.0, "r_fraction": (r[inner][i] - start[i]) / span}


def featurize(cohort: Cohort, config: dict, ctx) -> Features:
    """One row per beat (R peaks detected on the filtered lead) with its patient's label and covariates."""
    fs = cohort.stage.fs
    s = EcgSettings.of(config)
    cap, skip_bad = s.preprocess.max_beats_per_record, s.skip_bad
    table = cohort.table
    leads = list(cohort.stage.leads)
    windows, rows = [], []
    for i in ctx.progress(range(len(table)), desc="beats", total=len(table)):
        row = table.iloc[i]
        sig = np.asarray(cohort.array(str(row["record_id"])))
        # Several leads: R peaks found once, on lead II (else the first lead), and the same beat windows
        # cut from every lead, so a beat's leads are one moment of the heart.
        multi = sig.ndim == 2
        ref = sig[leads.index("II") if "II" in leads else 0] if multi else sig
        rpeaks = detect_rpeaks(ref, fs)
        beats, kept = beat_windows(ref, rpeaks, fs, config)
        if len(beats) == 0:
            where = Path(cohort.root or ".") / str(row.get("ecg", row["record_id"]))  # ecg: an absolute path
            msg = f"{where}: no complete beat found (detected {len(rpeaks)} R peak(s) in {len(sig) / fs:.1f} s)"
            if skip_bad:
                ctx.log.warning("leaving out an ECG: %s", msg)
                continue
            raise CardioError(msg)
        pick = _evenly(len(beats), cap)
        timing = _window_timing(rpeaks, np.asarray(kept)[pick], fs, float(s.preprocess.rr_factor))
        if not multi:
            windows.append(beats[pick])
            rows.append(pd.DataFrame({"record_id": row["record_id"], "beat": pick,
                                      "r_sample": np.asarray(kept)[pick], **timing}))
            continue
        for j, name in enumerate(leads):  # one row per beat and lead: the per-lead spectrograms share one
            lead_beats, _ = beat_windows(sig[j], rpeaks, fs, config)  # network and are fused with the beats
            windows.append(lead_beats[pick])
            rows.append(pd.DataFrame({"record_id": row["record_id"], "beat": pick, "lead": name,
                                      "r_sample": np.asarray(kept)[pick], **timing}))
    if not windows:
        raise CardioError("no beat could be cut from any cohort ECG")
    beats = np.concatenate(windows)
    beat_table = pd.concat(rows, ignore_index=True)
    covariates = table.drop(columns=[c for c in NOT_COVARIATES if c in table.columns])
    beat_table = beat_table.merge(covariates, on="record_id", how="left", validate="many_to_one")
    x = to_images(beats, fs, config, cache=ctx.cache)
    ctx.log.info("featurize: %d beat images from %d ECGs (%d patients, %d lead(s)), images %s", len(beat_table),
                 beat_table["record_id"].nunique(), beat_table["patient_id"].nunique(), max(1, len(leads)),
                 tuple(x.shape[1:]))
    axes = image_axes(config)
    stage = BeatImages(input_spec(config, fs), tuple(axes["freqs"]), tuple(axes["times"]), tuple(leads))
    label = CoreSettings.of(config).label
    return Features(beat_table, x=x, label=label, stage=stage, targets=(label,))
