"""Is a cohort ECG an ECG, at the rate and in the unit its file and table state? The signal-plausibility checks that
`cardio validate` and `cardio run` share (cohort_table.check_beats calls them on every record read whole).

Each check measures the lead the run reads, after the run's own high-pass and R-peak detection, and names one
problem in one line:
- morphology: an ECG's QRS complexes are sharp, so a share of its power lies above 8 Hz (MIT-BIH's 96 leads: 3% or
  more); a pulse wave (a photoplethysmogram, a blood-pressure trace) saved as a lead has almost none (0.03% or less);
- rate: a wrong sampling rate scales every duration of the ECG at once, so its heart rate and the frequency its QRS
  energy reaches both move; the heart rate must lie in ecg_transfer.signal_checks.heart_rate_bpm and the two together
  within what MIT-BIH's records show (RATE_SCORE), else the rate that would make the ECG plausible is named;
- amplitude: QRS complexes measure 0.1-5 mV from peak to trough; values a thousand times larger are microvolts (or
  ADC counts) read as millivolts, a thousand times smaller volts;
- limb leads: where a file holds three limb leads or more, Einthoven's and Goldberger's laws (III = II - I, aVR =
  -(I + II) / 2, ...) hold; two labels exchanged, or one lead stored inverted, breaks them, and the exchange that
  mends them is named.

The thresholds were set on MIT-BIH (all 48 records, both leads, none flagged; benchmarks/validate_damages.py --clean
counts the false alarms) and sized by the rates and units they must catch; docs/data/ecg_transfer.md states them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import signal as sps

from cardio import CardioError

#: Share of an ECG's power (0.5-40 Hz) above 8 Hz below which it has no QRS complex: MIT-BIH's 96 leads hold 3.4%
#: or more (MLII 6.5%), the plugin's smooth synthetic ECGs 0.85% or more (300 patients); a photoplethysmogram (two-wave
#: model, 100-250 Hz, 50-120 a minute) 0.007-0.03%.
QRS_POWER_SHARE = 0.002
#: The frequency below which 80% of an ECG's power (1-100 Hz) lies, at a typical heart rate (Hz): the rate score
#: centres on it.
F80_TYPICAL_HZ = 12.0
HR_TYPICAL_BPM = 70.0
#: log(heart rate / 70) + log(f80 / 12): a wrong sampling rate moves both terms by log(true / stated). MIT-BIH's 96
#: leads at their own rate score -1.45 to 1.23; 360 Hz read as 1000 Hz scores 0.1-2.6 (median 1.8), 1000 read as 360
#: -2.8 to 0.5. Beyond these bounds the rate is wrong.
RATE_SCORE = (-1.8, 1.5)
#: Sampling rates ECG files are written at, tried when the stated one is implausible.
COMMON_RATES = (100.0, 125.0, 128.0, 200.0, 250.0, 256.0, 360.0, 500.0, 512.0, 1000.0, 1024.0, 2000.0)
#: Limb leads as combinations of I and II (Einthoven's law, Goldberger's augmented leads).
LIMB = {"I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5),
        "aVF": (-0.5, 1.0)}
#: Relative residual (rms of the misfit over rms of the lead) under which the limb leads obey the laws (a cart's
#: 12-lead file: under 1%; two labels exchanged: 50% or more).
LIMB_RESIDUAL = 0.2


@dataclass(frozen=True)
class Measures:
    """What the checks read off one lead at the models' rate `fs`."""

    bpm: float               # median heart rate from the R peaks
    f80_hz: float            # 80% of the power (1-100 Hz) lies below this frequency
    qrs_share: float         # share of the power (0.5-40 Hz) above 8 Hz
    amplitude_mv: float      # median peak-to-trough of the QRS complexes (+-100 ms around each R peak)
    beats: int

    @property
    def rate_score(self) -> float:
        return float(np.log(self.bpm / HR_TYPICAL_BPM) + np.log(self.f80_hz / F80_TYPICAL_HZ))


def measure(filtered: np.ndarray, rpeaks: np.ndarray, fs: float) -> Measures:
    """The measures of a high-passed lead and its R peaks (rpeaks.detect_rpeaks), at `fs` Hz."""
    x = np.asarray(filtered, dtype=np.float64)
    r = np.unique(np.asarray(rpeaks, dtype=np.int64))
    f, p = sps.welch(x, fs, nperseg=min(len(x), int(4 * fs)))
    band = (f >= 1.0) & (f <= min(100.0, fs / 2))
    cum = np.cumsum(p[band])
    f80 = float(f[band][np.searchsorted(cum, 0.8 * cum[-1])]) if cum[-1] > 0 else 0.0
    total = p[(f >= 0.5) & (f < 40)].sum()
    share = float(p[(f >= 8) & (f < 40)].sum() / total) if total > 0 else 0.0
    bpm = 60.0 * fs / float(np.median(np.diff(r))) if len(r) >= 3 else float("nan")
    half = int(0.1 * fs)
    inner = r[(r >= half) & (r < len(x) - half)]
    spans = [np.ptp(x[k - half:k + half]) for k in inner[np.linspace(0, len(inner) - 1, min(len(inner), 500))
                                                          .astype(int)]] if len(inner) else [np.ptp(x)]
    return Measures(bpm, f80, share, float(np.median(spans)), len(r))


def morphology_problem(m: Measures) -> str | None:
    """No QRS complex: a pulse wave saved as an ECG (or a rate stated far too low)."""
    if m.qrs_share >= QRS_POWER_SHARE:
        return None
    return (f"it has no QRS complexes: {100 * m.qrs_share:.2f}% of its power lies above 8 Hz, an ECG's "
            f"{100 * QRS_POWER_SHARE:g}% or more (a QRS is sharp): is it a pulse wave (a photoplethysmogram or a "
            "blood-pressure trace) saved as an ECG lead? (A sampling rate stated several times too low smooths an "
            "ECG alike.)")


def plausible_rates(m: Measures, stated: float, bounds: tuple[float, float]) -> list[tuple[float, float]]:
    """(rate, heart rate there) for each common rate at which the ECG's heart rate and rate score would be
    plausible, the likeliest (a heart rate nearest the typical one) first."""
    out = []
    for rate in COMMON_RATES:
        k = rate / stated  # read at its true rate, every frequency measured is k times higher
        bpm, score = m.bpm * k, m.rate_score + 2 * np.log(k)
        if bounds[0] <= bpm <= bounds[1] and RATE_SCORE[0] < score < RATE_SCORE[1]:
            out.append((rate, bpm))
    return sorted(out, key=lambda r: abs(np.log(r[1] / HR_TYPICAL_BPM)))


def rate_problem(m: Measures, stated: float | None, bounds: tuple[float, float]) -> str | None:
    """A heart rate, or a heart rate and QRS frequency together, that no ECG has at the rate stated."""
    if not np.isfinite(m.bpm):
        return None
    out_of_range = not bounds[0] <= m.bpm <= bounds[1]
    if not out_of_range and RATE_SCORE[0] <= m.rate_score <= RATE_SCORE[1]:
        return None
    at = f" at the stated {stated:g} Hz" if stated else " at the stated rate"
    what = (f"its R peaks come {m.bpm:.0f} times a minute{at}, outside the {bounds[0]:g}-{bounds[1]:g} of "
            "ecg_transfer.signal_checks.heart_rate_bpm" if out_of_range else
            f"its R peaks come {m.bpm:.0f} times a minute and 80% of its power lies below {m.f80_hz:.1f} Hz{at}, "
            f"{'faster and sharper' if m.rate_score > 0 else 'slower and smoother'} together than any of MIT-BIH's "
            "records")
    rates = plausible_rates(m, stated, bounds) if stated else []
    hint = ("? It would be plausible at " + ", ".join(f"{r:g} Hz ({bpm:.0f} a minute)" for r, bpm in rates[:3])
            if rates else "?")
    return f"{what}: is its sampling rate (the table's fs, or the file's header) right{hint}"


def amplitude_problem(m: Measures, bounds: tuple[float, float]) -> str | None:
    """QRS complexes too large or too small to be millivolts."""
    if bounds[0] <= m.amplitude_mv <= bounds[1]:
        return None
    unit = ("microvolts (or ADC counts) read as millivolts? Write the leads in mV (divide microvolts by 1000)"
            if m.amplitude_mv > bounds[1] else "volts read as millivolts? Write the leads in mV (multiply volts "
                                                "by 1000)")
    return (f"its QRS complexes measure {m.amplitude_mv:,.4g} mV from peak to trough (median of {m.beats} beats), "
            f"outside the {bounds[0]:g}-{bounds[1]:g} mV of ecg_transfer.signal_checks.qrs_amplitude_mv: are they "
            f"{unit}")


def signal_problem(filtered: np.ndarray, rpeaks: np.ndarray, fs: float, stated_fs: float | None,
                   heart_rate_bpm: tuple[float, float], qrs_amplitude_mv: tuple[float, float]) -> str | None:
    """The first problem of morphology, rate and amplitude (in that order: an ECG without QRS complexes has no rate to
    judge), or None."""
    m = measure(filtered, rpeaks, fs)
    return (morphology_problem(m) or rate_problem(m, stated_fs, heart_rate_bpm)
            or amplitude_problem(m, qrs_amplitude_mv))


def _residuals(leads: Mapping[str, np.ndarray]) -> float:
    """The largest relative misfit of the limb leads to the combinations of I and II fitted to them all."""
    names = list(leads)
    basis = np.array([LIMB[n] for n in names])                         # (leads, 2)
    x = np.stack([leads[n] for n in names])                            # (leads, samples)
    fitted = basis @ np.linalg.lstsq(basis, x, rcond=None)[0]          # I and II that explain every lead best
    scale = np.sqrt((x ** 2).mean(axis=1))
    return float(np.max(np.sqrt(((x - fitted) ** 2).mean(axis=1)) / np.maximum(scale, 1e-12)))


def limb_lead_problem(leads: Mapping[str, np.ndarray]) -> str | None:
    """Where three limb leads or more are given (name -> high-passed signal), a violation of Einthoven's and
    Goldberger's laws, with the exchange of two labels or the inversion of one lead that mends it."""
    limb = {n: np.asarray(v, dtype=np.float64) for n, v in leads.items() if n in LIMB}
    if len(limb) < 3:
        return None
    n = min(len(v) for v in limb.values())
    limb = {k: v[:n] for k, v in limb.items()}
    worst = _residuals(limb)
    if worst <= LIMB_RESIDUAL:
        return None
    names = list(limb)
    mends: list[tuple[float, str]] = []
    for a, b in itertools.combinations(names, 2):
        swapped = {**limb, a: limb[b], b: limb[a]}
        mends.append((_residuals(swapped), f"leads {a} and {b} look exchanged (the laws hold with their labels "
                                           "swapped)"))
    for a in names:
        mends.append((_residuals({**limb, a: -limb[a]}), f"lead {a} looks inverted (the laws hold with its sign "
                                                          "flipped)"))
    mended = [mend for residual, mend in sorted(mends) if residual <= LIMB_RESIDUAL]
    law = "Einthoven's and Goldberger's laws (III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2)"
    if mended:  # with three leads, two labels exchanged and the third inverted mend alike
        return (f"its limb leads {names} break {law} by {100 * worst:.0f}%: {', or '.join(mended[:3])}; correct the "
                "labels or the export")
    return (f"its limb leads {names} break {law} by {100 * worst:.0f}%, and no exchange of two labels mends it: "
            "are they mislabelled, or from different recordings?")


def limb_leads(names: Sequence[str]) -> list[str]:
    """The limb leads among a file's lead names (standard names, as lead_codes.canonical_lead gives them)."""
    return [n for n in names if n in LIMB]


def check(filtered: np.ndarray, rpeaks: np.ndarray, fs: float, path: Path, stated_fs: float | None,
          heart_rate_bpm: tuple[float, float], qrs_amplitude_mv: tuple[float, float]) -> None:
    """signal_problem as one CardioError naming the file."""
    problem = signal_problem(filtered, rpeaks, fs, stated_fs, heart_rate_bpm, qrs_amplitude_mv)
    if problem:
        raise CardioError(f"{path}: {problem}")
