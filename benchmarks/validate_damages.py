"""`cardio validate` on held-out damaged cohorts, one per modality (issue 55): what it names, and how precisely.

Each damage below was chosen and written down, with the line validate should print (`expect`, a pattern of the
problem line), and committed before validate ran on it: the list is held out, not tuned to pass. Half or more of
each modality's damages are of the signal-plausibility family (a signal that is no ECG or no beating heart at the
rate, unit, calibration or orientation stated, or one recording under two patients); the rest are damaged files and
tables. The script builds each cohort (a clean base of real files where the repository has them: MIT-BIH records
written as WFDB, EDF, CSV and NumPy, pydicom's 12-lead ECG and MR slice, the real echo DICOMs; the plugins' synthetic
writers elsewhere), applies the damages, runs `cardio validate` once and prints per damage:

    named    a problem line for the damaged row (its CSV line, or its file) matching `expect`
    vague    a problem line for the row that does not say what is wrong
    missed   no problem line for the row

and every problem line that is for no damage (a false alarm on the base). The clean base itself is validated too
(`clean base: OK` or its problems).

    python benchmarks/validate_damages.py                 # every modality
    python benchmarks/validate_damages.py --modality ecg_transfer
    python benchmarks/validate_damages.py --clean         # false alarms on clean real data: all 48 MIT-BIH
                                                          # records (30 min each), pydicom's 12-lead ECG, the echo
                                                          # DICOMs
    python benchmarks/validate_damages.py --smoke         # the ECG cohort's first damages on 12 s excerpts

Needs MIT-BIH and the echo DICOMs under $CARDIO_DATA (else ../shared/data beside the checkout); says `skipped:`
without them.

Results (2 CPU cores shared, about 90 s a run). The list was committed at 796cd4f; validate ran on it then (the code
of main, before issue 55's fixes) and at e44a2d1 (after):

    modality            damages (plausibility)   named precisely   vaguely   missed   lines for no damage
    ecg_transfer        13 (9)                   3 -> 12           1 -> 0    9 -> 1   6 -> 1
    echo_cmr            10 (6)                   2 -> 8            4 -> 0    4 -> 2   0 -> 0
    mmode_septal_flash  11 (7)                   3 -> 10           2 -> 1    6 -> 0   1 -> 0

The nuclear plugins' lists were committed at c2d72c2 (perfusion's base then grown from 16 to 20 studies, 16 holding one
diabetic, which validate refuses: the damages unchanged); validate ran on them at that commit's code (before) and at
98eb9f4 (after), where the echo and M-mode lists were run again too:

    modality            damages (plausibility)   named precisely   vaguely   missed   lines for no damage
    spect_polar         13 (9)                   4 -> 12           1 -> 0    8 -> 1   0 -> 0
    perfusion_polar     11 (6)                   4 -> 9            0 -> 0    7 -> 2   0 -> 0
    echo_cmr            10 (6)                   8 -> 10           0 -> 0    2 -> 0   0 -> 0   (e44a2d1 -> 98eb9f4)
    mmode_septal_flash  11 (7)                   10 -> 11          1 -> 0    0 -> 0   0 -> 0   (e44a2d1 -> 98eb9f4)

Still missed there: spect_polar's slices stored base first with a silent header (no check can tell apex from base in
a .npy volume here) and perfusion_polar's mirrored map (PF0005 has no territorial defect: its segments read the same
mirrored; a map with one is named, tests/plugins/perfusion_polar/test_plausibility.py). perfusion_polar's "yes for a
risk factor" was no damage: the core reads yes/no as 1/0 (cardio.data.cohort), as the data guide says.

Still missed in the first three at e44a2d1: an EDF whose header states 128 Hz for 360 Hz samples (a rate stated too
low: the stretched ECG's R peaks are found on its T waves too, at a plausible rate; still missed), and the echo clip
re-exported as AVI or cut 5 frames later under a new id (named since 98eb9f4); vague: the M-mode clip re-encoded
under a new id, named by its septum file's bytes (by its clip since 98eb9f4). "EDF renamed .csv" is counted named
for the copy line that names
E18.edf; its own line, "an EDF saved under a .csv name ... rename it .edf", is printed too. The one line for no
damage is the qrs_ms column that QRS_duration left empty, a consequence of that damage. Clean bases: validate OK in
all three (before the fixes the ECG base's EDF files, channels "ECG MLII", were refused; the M-mode base's
"40,0;820,0" was refused). --clean at e44a2d1: 0 false alarms on MIT-BIH's 48 records (30 min each) read from
lead II's stand-in MLII (V5 or V2 where a record has none) and from their second lead, and on pydicom's 12-lead
ECG; the four real echo DICOMs raise none (tests/reliability/test_validate_misses.py).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Damage:
    """One damage: which patient's row carries it, its family, and the problem line a precise validate prints."""

    name: str
    family: str      # "plausibility" | "file" | "table"
    row: str         # patient_id of the damaged row (its CSV line is the row's)
    expect: str      # regular expression (case-insensitive) the precise problem line matches
    what: str        # what was done


# ------------------------------------------------------------------------------------- the damages, written first

ECG_DAMAGES = (
    Damage("rate stated 1000 Hz for a 360 Hz CSV", "plausibility", "E03", r"sampling rate",
           "MIT-BIH excerpt at 360 Hz written as CSV; the table's fs cell says 1000"),
    Damage("photoplethysmogram saved as lead II", "plausibility", "E07", r"QRS|pulse|photoplethysmogram",
           "a pulse wave (two-Gaussian PPG model, 125 Hz) in a CSV column named II"),
    Damage("microvolts read as millivolts", "plausibility", "E11", r"microvolt|µV|uV",
           "MIT-BIH excerpt written as CSV in µV (x1000)"),
    Damage("volts read as millivolts", "plausibility", "E15", r"\bvolt",
           "MIT-BIH excerpt written as CSV in V (/1000)"),
    Damage("limb leads I and II exchanged", "plausibility", "E05", r"\bI\b.*\bII\b.*(exchang|swap)",
           "pydicom's real 12-lead DICOM with the codes of channels I and II exchanged"),
    Damage("lead II stored inverted", "plausibility", "E09", r"invert|polarity|sign",
           "a synthetic 12-lead DICOM (limb leads consistent) with lead II's samples negated"),
    Damage("one recording re-exported under a new id", "plausibility", "E90",
           r"(same|one) recording|recorded once",
           "E01's WFDB record re-exported as a CSV (3 decimals) for a new patient E90"),
    Damage("one recording 0.5 s later under a new id", "plausibility", "E91",
           r"(same|one) recording|recorded once",
           "E06's EDF excerpt from 0.5 s on, as a NumPy file for a new patient E91"),
    Damage("EDF header states 128 Hz for 360 Hz samples", "plausibility", "E13", r"sampling rate",
           "MIT-BIH excerpt written as EDF with a sample frequency of 128 Hz"),
    Damage("EDF renamed .csv", "file", "E17", r"EDF", "an EDF file saved under a .csv name (fs cell 360)"),
    Damage("truncated DICOM ECG", "file", "E19", r"truncat", "a 12-lead DICOM cut to 70% of its bytes"),
    Damage("DICOM with the median beat only", "file", "E20", r"rhythm|median",
           "a 12-lead DICOM whose only multiplex group is a MEDIAN BEAT"),
    Damage("header QRS_duration", "table", "", r"QRS_duration.*qrs_ms|qrs_ms.*QRS_duration",
           "the qrs_ms column headed QRS_duration"),
)

ECHO_DAMAGES = (
    Damage("frame time 10x too long", "plausibility", "P0001/A4C", r"frame (time|rate)|frames per second",
           "P0001's A4C clip written with FrameTime 333 ms (its motion drawn at 30 frames/s)"),
    Damage("MR slice given as an echo", "plausibility", "P0002/A2C", r"\bMR\b",
           "pydicom's real MR slice (MR_small.dcm) as P0002's A2C clip"),
    Damage("one clip re-exported as AVI under a new id", "plausibility", "P9001/A4C", r"(same|one) (clip|recording)",
           "the real A4C clip (R0001) re-encoded as AVI for a new patient P9001"),
    Damage("one clip 5 frames later under a new id", "plausibility", "P9002/A4C", r"(same|one) (clip|recording)",
           "P0003's A4C clip without its first 5 frames, as a DICOM for a new patient P9002"),
    Damage("saturated clip", "plausibility", "P0004/A4C", r"saturat|brightest",
           "P0004's A4C clip with its grey levels x8 (most of the tissue at 255)"),
    Damage("grey scale inverted", "plausibility", "P0005/A4C", r"invert",
           "P0005's A4C clip as 255 - grey (dark tissue on a white background)"),
    Damage("truncated JPEG echo", "file", "R0002/A4C", r"truncat",
           "the real JPEG A4C clip (examples_ybr_color.dcm) cut to 60% of its bytes"),
    Damage("AVI saved as .dcm", "file", "P0006/PLAX", r"AVI", "P0006's PLAX clip (an AVI) renamed .dcm"),
    Damage("echo DICOM without frame timing", "file", "R0003/PLAX", r"frame tim",
           "the real PLAX clip (US-PAL-8-10x-echo.dcm) with FrameTime and FrameIncrementPointer removed"),
    Damage("header typo", "table", "", r"veiw", "the view column headed 'veiw'"),
)

MMODE_DAMAGES = (
    Damage("pixel_spacing_mm against the DICOM's regions", "plausibility", "SF0002", r"pixel_spacing_mm",
           "a DICOM sequence calibrated 1.5 mm/px in its ultrasound regions; the cell says 0.5"),
    Damage("septum drawn apex to base", "plausibility", "SF0003", r"apex",
           "SF0003's 62 septum points in reverse order"),
    Damage("R peaks 200 ms apart", "plausibility", "SF0004", r"minute|bpm|heart rate",
           "r_peaks_ms '100;300': a heart rate of 300 a minute"),
    Damage("R-peak list with a decimal comma", "plausibility", "SF0005", r"decimal comma",
           "r_peaks_ms '67,933' in a table written with decimal commas (one time, 67.933 ms, not two)"),
    Damage("septum points in another unit", "plausibility", "SF0006", r"septum.*(mm|long|short|span)",
           "SF0006's septum points x0.15 (cm at 1.5 mm/px), pixel_spacing_mm 1.5: a septum 1 cm long"),
    Damage("one clip re-encoded under a new id", "plausibility", "SF9001", r"(same|one) (clip|recording)",
           "SF0008's sequence re-encoded as AVI (MJPG), with its row's values, for a new patient SF9001"),
    Damage("frame time 10x too long", "plausibility", "SF0009", r"minute|bpm|heart rate|frame",
           "frame_time_ms 200 for a 50 frames/s NumPy sequence"),
    Damage("truncated DICOM sequence", "file", "SF0010", r"truncat", "a DICOM sequence cut to 60% of its bytes"),
    Damage("AVI saved as .dcm", "file", "SF0011", r"AVI", "SF0011's sequence as an AVI named .dcm"),
    Damage("septum CSV without its header", "file", "SF0012", r"\bx\b.*\by\b", "the x,y header row deleted"),
    Damage("yes in German", "table", "SF0013", r"0/1", "septal_flash 'ja'"),
)

# spect_polar: chosen 2026-11-26, before validate ran on them (issue 55, part 1); the base is the plugin's own
# multimodal writer (gated NM DICOM, 16 patients) and the real NM file.
SPECT_DAMAGES = (
    Damage("counts of a normalised export", "plausibility", "P0002", r"count",
           "P0002's gated volume divided by its maximum (counts 0..1), as a .npy volume"),
    Damage("gates identical", "plausibility", "P0003", r"gates are one image",
           "P0003's summed volume copied into each of its 8 gates (.npy)"),
    Damage("gates out of order", "plausibility", "P0004", r"order",
           "P0004's 8 gates in the order 1 5 2 7 3 8 4 6 (.npy)"),
    Damage("pixel spacing in cm", "plausibility", "P0005", r"pixel ?spacing",
           "P0005's DICOM with PixelSpacing 0.6 (its 6 mm pixels written in cm): a heart 1 cm across"),
    Damage("slice spacing 10x", "plausibility", "P0006", r"slice (spacing|thickness)|SpacingBetweenSlices",
           "P0006's DICOM with SpacingBetweenSlices and SliceThickness 90 mm (9 mm slices): an LV 1.8 m long"),
    Damage("one scan re-exported under a new id", "plausibility", "P9001", r"(same|one) (scan|recording|volume)",
           "P0007's DICOM volume re-exported as a .npy (float32) for a new patient P9001"),
    Damage("static long-axis NM given as a gated short-axis scan", "plausibility", "P0008", r"long.axis|not gated",
           "the real NM file (NM-MONO2-16-13x-heart.dcm: 13 HLA slices, not gated) as P0008's scan"),
    Damage("slices base to apex, header silent", "plausibility", "P0009", r"apex|base|orient",
           "P0009's volume with its slices reversed (base first), no geometry in the header (.npy)"),
    Damage("phase polar map in radians", "plausibility", "P0010", r"radian|degree",
           "a ready phase polar map (32 x 64 .csv) in radians (1.2..2.4) for P0010"),
    Damage("truncated DICOM", "file", "P0011", r"truncat", "P0011's DICOM cut to 60% of its bytes"),
    Damage("CT slice given as SPECT", "file", "P0012", r"\bCT\b", "pydicom's CT_small.dcm as P0012's scan"),
    Damage("sex coded M/F", "table", "P0013", r"\bsex\b", "sex 'M'"),
    Damage("ESV above EDV", "table", "P0014", r"esv.*edv|edv.*esv", "esv = 1.5 x edv"),
)

# perfusion_polar: chosen 2026-11-26, before validate ran on them (issue 55, part 1); the base is the plugin's
# synthetic writer (20 studies, 32 x 32 maps: rest %, stress %, MFR).
PERFUSION_DAMAGES = (
    Damage("rest map in fractions", "plausibility", "PF0002", r"percent|%|fraction",
           "PF0002's rest map / 100 (0..1, not % of the maximum)"),
    Damage("MFR beyond any tracer's range", "plausibility", "PF0003", r"MFR|flow reserve",
           "PF0003's MFR map x 10 (flow reserves of 15 to 30)"),
    Damage("rest scan given as stress", "plausibility", "PF0004", r"rest.*stress|stress.*rest",
           "PF0004's stress map replaced by its rest map"),
    Damage("map mirrored", "plausibility", "PF0005", r"mirror|flip|orient|mfr_seg",
           "PF0005's three maps mirrored left-right (septum and lateral wall exchanged)"),
    Damage("one study re-exported under a new id", "plausibility", "PF9001", r"(same|one) (study|map|scan)",
           "PF0006's maps re-exported as a ring x sector CSV (16 x 32) for a new patient PF9001"),
    Damage("global_mfr against the segment MFRs", "plausibility", "PF0007", r"global_mfr",
           "PF0007's global_mfr x 10"),
    Damage("truncated .npy", "file", "PF0008", r"truncat|readable", "PF0008's map cut to 60% of its bytes"),
    Damage("two-channel map", "file", "PF0009", r"shape", "PF0009's map without its MFR channel"),
    Damage("NaN pixels", "file", "PF0010", r"NaN", "PF0010's stress map with 10 NaN pixels"),
    Damage("yes for a risk factor", "table", "PF0011", r"0/1|binary|yes", "diabetes 'yes'"),
    Damage("a channel named flow", "file", "PF0012", r"channel", "PF0012's map as a CSV table whose mfr rows "
                                                                 "are named 'flow'"),
)


# ------------------------------------------------------------------------------------------------ the harness

def _testdata(name: str) -> str:
    """The path of pydicom's test file `name` (None from pydicom where its data files are missing: refused here)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if not isinstance(path, str):
        raise SystemExit(f"pydicom's test file {name} is missing from this install")
    return path


def _data() -> Path:
    return Path(os.environ.get("CARDIO_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def validate(plugin: str, root: Path, cache: Path, sets: list[str], config: dict | None = None) -> list[str]:
    """The problem lines of one `cardio validate` run (in process), or its summary line when it found none."""
    from cardio_testing.harness import invoke

    args = ["validate", "--plugin", plugin, "--set", f"cohort.dir={root}", "--set", f"cache_dir={cache}"]
    if config:
        (cache.parent / "config.yaml").write_text(json.dumps(config))
        args += ["--config", str(cache.parent / "config.yaml")]
    result = invoke(*args, *(a for s in sets for a in ("--set", s)))
    problems = [line.removeprefix("problem: ") for line in result.stderr.splitlines() if line.startswith("problem:")]
    if problems:
        return problems
    ok = [line for line in result.stdout.splitlines() if "OK" in line]
    return ["OK: " + (ok[0] if ok else result.stderr.strip().splitlines()[-1])]


def verdicts(problems: list[str], damages: tuple[Damage, ...], lines: dict[str, int],
             files: dict[str, str]) -> list[tuple[Damage, str, str]]:
    """(damage, named | vague | missed, the line) per damage; a table damage (row "") is any line matching it."""
    out = []
    for d in damages:
        if d.row:
            mine = [p for p in problems if re.search(rf"\bline {lines[d.row]}\b", p) or files.get(d.row, "\0") in p]
        else:
            mine = [p for p in problems if re.search(d.expect, p, re.IGNORECASE)]
        named = [p for p in mine if re.search(d.expect, p, re.IGNORECASE)]
        out.append((d, "named" if named else "vague" if mine else "missed", (named or mine or [""])[0]))
    return out


def report(modality: str, base: list[str], problems: list[str], damages: tuple[Damage, ...],
           lines: dict[str, int], files: dict[str, str]) -> None:
    print(f"\n## {modality}: {len(damages)} damages, "
          f"{sum(d.family == 'plausibility' for d in damages)} of them signal plausibility")
    print("clean base: " + ("; ".join(base) if base else "?"))
    rows = verdicts(problems, damages, lines, files)
    print("| damage | family | verdict | validate's line |\n|---|---|---|---|")
    for d, verdict, line in rows:
        print(f"| {d.name} | {d.family} | {verdict} | {line.replace('|', '/')[:400]} |")
    used = {line for _, _, line in rows}
    extra = [p for p in problems if p not in used and not any(re.search(rf"\bline {lines[d.row]}\b", p)
                                                               for d in damages if d.row)]
    named = sum(v == "named" for _, v, _ in rows)
    print(f"named {named} of {len(rows)} precisely ({sum(v == 'vague' for _, v, _ in rows)} vaguely, "
          f"{sum(v == 'missed' for _, v, _ in rows)} missed); lines for no damage: {len(extra)}")
    for p in extra:
        print(f"  not a damage: {p[:300]}")


# ------------------------------------------------------------------------------------------------ ecg_transfer

ECG_FORMATS = ("wfdb", "edf", "csv", "npy")


def _mitdb(record: str, seconds: float, start: float = 0.0) -> tuple[np.ndarray, list[str]]:
    import wfdb

    rec = wfdb.rdrecord(str(_data() / "mitdb" / record), sampfrom=int(start * 360),
                        sampto=int((start + seconds) * 360))
    return rec.p_signal, list(rec.sig_name)


def _write_ecg(folder: Path, name: str, fmt: str, x: np.ndarray, names: list[str], fs: float = 360.0) -> str:
    """One ECG file as that format's exporters write it (EDF channels prefixed "ECG ", as MIT-BIH's EDF copies)."""
    import wfdb

    from cardio_ecg_transfer.leads import write_csv, write_edf

    if fmt == "wfdb":
        wfdb.wrsamp(name, fs=fs, units=["mV"] * len(names), sig_name=names, p_signal=x, fmt=["16"] * len(names),
                    adc_gain=[200.0] * len(names), baseline=[0] * len(names), write_dir=str(folder))
        return f"ecg/{name}"
    if fmt == "edf":
        return f"ecg/{write_edf(folder / f'{name}.edf', x, fs, [f'ECG {n}' for n in names]).name}"
    if fmt == "csv":
        return f"ecg/{write_csv(folder / f'{name}.csv', x, names).name}"
    np.save(folder / f"{name}.npy", x)
    return f"ecg/{name}.npy"


def ecg_base(root: Path, n: int, seconds: float) -> pd.DataFrame:
    """n patients E01.. with MIT-BIH excerpts (one record each) in WFDB, EDF, CSV and NumPy by turn."""
    records = sorted(p.stem for p in (_data() / "mitdb").glob("*.hea"))
    (root / "ecg").mkdir(parents=True)
    rng = np.random.default_rng(55)
    rows = []
    for i in range(n):
        pid, fmt = f"E{i + 1:02d}", ECG_FORMATS[i % len(ECG_FORMATS)]
        x, names = _mitdb(records[i], seconds)
        rows.append({"patient_id": pid, "responder": i % 2, "ecg": _write_ecg(root / "ecg", pid, fmt, x, names),
                     "fs": 360 if fmt in ("csv", "npy") else None, "qrs_ms": int(rng.integers(120, 190)),
                     "lbbb": int(rng.integers(0, 2)), "lvef": int(rng.integers(15, 36)),
                     "age": int(rng.integers(45, 85)), "sex": int(rng.integers(0, 2))})
    return pd.DataFrame(rows)


def _ppg(seconds: float, fs: float, bpm: float = 72.0, seed: int = 7) -> np.ndarray:
    """A photoplethysmogram: per beat a systolic wave and a smaller diastolic one (Gaussians), respiration, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beats = np.cumsum(rng.normal(60 / bpm, 0.02, int(seconds * bpm / 60) + 3)) - 60 / bpm
    x = sum(np.exp(-0.5 * ((t - b - 0.18) / 0.07) ** 2) + 0.45 * np.exp(-0.5 * ((t - b - 0.42) / 0.1) ** 2)
            for b in beats)
    return np.asarray(x) + 0.1 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.005, len(t))


def _twelve_lead(seconds: float, seed: int) -> np.ndarray:
    from cardio_ecg_transfer import synthetic
    from cardio_ecg_transfer.lead_codes import STANDARD_LEADS

    row = synthetic.cohort_table(2, seed=seed).iloc[0]
    return synthetic.synthesize_ecg(row, seed, 500.0, seconds, STANDARD_LEADS)


def _exchange_channels(path: Path, a: int, b: int) -> None:
    """Swap the lead codes (and labels) of two channels of a DICOM ECG: their samples keep their places."""
    import pydicom

    ds = pydicom.dcmread(path)
    channels = ds.WaveformSequence[0].ChannelDefinitionSequence
    channels[a].ChannelSourceSequence, channels[b].ChannelSourceSequence = (channels[b].ChannelSourceSequence,
                                                                            channels[a].ChannelSourceSequence)
    ds.save_as(path)


def ecg_damage(root: Path, table: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """The ECG_DAMAGES applied to the base (rows by patient id; two new patients hold copies)."""

    from cardio_ecg_transfer import dicom_waveform
    from cardio_ecg_transfer.lead_codes import STANDARD_LEADS
    from cardio_ecg_transfer.leads import write_edf

    e, t = root / "ecg", table.set_index("patient_id")
    t.loc["E03", "fs"] = 1000                                                          # 360 Hz read as 1000
    pd.DataFrame({"II": _ppg(seconds, 125.0)}).to_csv(e / "E07.csv", index=False, float_format="%.4f")
    t.loc["E07", ["ecg", "fs"]] = ["ecg/E07.csv", 125]                                 # a PPG as lead II
    for pid, factor in (("E11", 1000.0), ("E15", 0.001)):                              # µV, V
        x = pd.read_csv(e / f"{pid}.csv")
        (x * factor).to_csv(e / f"{pid}.csv", index=False, float_format="%.6g")
    shutil.copy(_testdata("waveform_ecg.dcm"), e / "E05.dcm")
    _exchange_channels(e / "E05.dcm", 0, 1)                                            # I and II exchanged
    t.loc["E05", ["ecg", "fs"]] = ["ecg/E05.dcm", None]
    twelve = _twelve_lead(seconds, 9)
    twelve[:, 1] *= -1
    dicom_waveform.write_waveform(e / "E09.dcm", twelve, 500.0, STANDARD_LEADS)        # lead II inverted
    t.loc["E09", ["ecg", "fs"]] = ["ecg/E09.dcm", None]
    x, names = _mitdb(sorted(p.stem for p in (_data() / "mitdb").glob("*.hea"))[12], seconds)
    write_edf(e / "E13.edf", x, 128.0, [f"ECG {n}" for n in names])                    # header says 128 Hz
    t.loc["E13", ["ecg", "fs"]] = ["ecg/E13.edf", None]
    shutil.copy(e / "E18.edf", e / "E17.csv")                                          # EDF renamed .csv
    t.loc["E17", ["ecg", "fs"]] = ["ecg/E17.csv", 360]
    dicom_waveform.write_waveform(e / "E19.dcm", _twelve_lead(seconds, 19), 500.0, STANDARD_LEADS)
    (e / "E19.dcm").write_bytes((e / "E19.dcm").read_bytes()[:int(0.7 * (e / "E19.dcm").stat().st_size)])
    t.loc["E19", ["ecg", "fs"]] = ["ecg/E19.dcm", None]
    beat = _twelve_lead(1.2, 20)
    dicom_waveform.write_waveform(e / "E20.dcm", beat, 500.0, STANDARD_LEADS)
    _median_only(e / "E20.dcm")
    t.loc["E20", ["ecg", "fs"]] = ["ecg/E20.dcm", None]
    return _ecg_copies(root, t, seconds)


def _median_only(path: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    ds.WaveformSequence[0].MultiplexGroupLabel = "MEDIAN BEAT"
    ds.save_as(path)


def _ecg_copies(root: Path, t: pd.DataFrame, seconds: float) -> pd.DataFrame:
    import pyedflib

    from cardio_ecg_transfer.records import read_wfdb

    e = root / "ecg"
    rec0, rec1 = read_wfdb(e / "E01", fs=360.0, lead=0), read_wfdb(e / "E01", fs=360.0, lead=1)
    pd.DataFrame({rec0.lead: rec0.signal, rec1.lead: rec1.signal}).to_csv(e / "E90.csv", index=False,
                                                                          float_format="%.3f")
    with pyedflib.EdfReader(str(e / "E06.edf")) as f:
        x = np.stack([f.readSignal(i) for i in range(f.signals_in_file)], axis=1)
    np.save(e / "E91.npy", x[int(0.5 * 360):])
    extra = pd.DataFrame([{**t.loc["E06"].to_dict(), "ecg": "ecg/E90.csv", "fs": 360},
                          {**t.loc["E08"].to_dict(), "ecg": "ecg/E91.npy", "fs": 360}], index=["E90", "E91"])
    out = pd.concat([t, extra]).rename_axis("patient_id").reset_index()
    return out.rename(columns={"qrs_ms": "QRS_duration"})                              # a header not qrs_ms


def run_ecg(tmp: Path, smoke: bool) -> None:
    n, seconds = (20, 12.0) if smoke else (20, 60.0)
    base = ecg_base(tmp / "base", n, seconds)
    base.to_csv(tmp / "base" / "cohort.csv", index=False)
    damaged = shutil.copytree(tmp / "base", tmp / "damaged")
    table = ecg_damage(damaged, base, seconds)
    table.to_csv(damaged / "cohort.csv", index=False)
    sets = ["cv.folds=2"]
    clean = validate("ecg_transfer", tmp / "base", tmp / "cache", sets)
    problems = validate("ecg_transfer", damaged, tmp / "cache", sets)
    lines = {pid: i + 2 for i, pid in enumerate(table["patient_id"])}
    files = {pid: str(v) for pid, v in zip(table["patient_id"], table["ecg"])}
    report("ecg_transfer", clean, problems, ECG_DAMAGES[:4] if smoke else ECG_DAMAGES, lines, files)


# ------------------------------------------------------------------------------------------------ echo_cmr

ECHO_CONFIG = {"echo_cmr": {"clip": {"size": 16, "frames": 8, "period": 1}, "workers": 1}}


def _frames(path: Path) -> np.ndarray:
    from cardio_imaging.cine import read_cine

    return read_cine(path).frames


def _like(table: pd.DataFrame, pid: str, new: str, **cells: object) -> dict:
    """A new row with the values of `pid`'s first row, as patient (and study) `new`."""
    row = table[table["patient_id"] == pid].iloc[0].to_dict()
    return {**row, "patient_id": new, "study_id": f"S{new}", **cells}


def echo_build(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The clean base (14 synthetic patients, three views each, and the real A4C and PLAX clips as patients R0001
    and R0004), and its damaged copy's table."""
    from cardio_echo_cmr import synthetic

    base = synthetic.write_cohort(tmp / "base", 14, seed=5, n_frames=32, height=48, width=64)
    table = pd.read_csv(base / "labels.csv")
    real = _data() / "echo_dicom"
    shutil.copy(real / "examples_ybr_color.dcm", base / "videos" / "R0001_A4C.dcm")
    shutil.copy(real / "US-PAL-8-10x-echo.dcm", base / "videos" / "R0004_PLAX.dcm")
    table = pd.concat([table, pd.DataFrame([
        _like(table, "P0000", "R0001", view="A4C", file="videos/R0001_A4C.dcm"),
        _like(table, "P0001", "R0004", view="PLAX", file="videos/R0004_PLAX.dcm")])], ignore_index=True)
    table.to_csv(base / "labels.csv", index=False)
    damaged = shutil.copytree(base, tmp / "damaged")
    return base, damaged, echo_damage(damaged, table)


def echo_damage(root: Path, table: pd.DataFrame) -> pd.DataFrame:
    import pydicom

    from cardio_imaging.cine import write_dicom_cine, write_video

    v, real = root / "videos", _data() / "echo_dicom"
    a4c = {p: _frames(v / f"{p}_A4C.dcm") for p in ("P0001", "P0003", "P0004", "P0005")}
    write_dicom_cine(v / "P0001_A4C.dcm", a4c["P0001"], 333.0)                             # 10x frame time
    shutil.copy(_testdata("MR_small.dcm"), v / "P0002_A2C.dcm")                    # an MR slice
    write_video(v / "P9001_A4C.avi", _frames(v / "R0001_A4C.dcm"), 30.0)                   # re-export as AVI
    write_dicom_cine(v / "P9002_A4C.dcm", a4c["P0003"][5:], 33.3)                          # 5 frames later
    write_dicom_cine(v / "P0004_A4C.dcm", np.clip(a4c["P0004"].astype(int) * 8, 0, 255).astype(np.uint8), 33.3)
    write_dicom_cine(v / "P0005_A4C.dcm", 255 - a4c["P0005"], 33.3)                         # inverted grey
    cut = (real / "examples_ybr_color.dcm").read_bytes()
    (v / "R0002_A4C.dcm").write_bytes(cut[:int(0.6 * len(cut))])                          # truncated JPEG
    ds = pydicom.dcmread(real / "US-PAL-8-10x-echo.dcm")
    for tag in ("FrameTime", "FrameIncrementPointer", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate"):
        if tag in ds:
            delattr(ds, tag)
    ds.save_as(v / "R0003_PLAX.dcm")                                                      # no frame timing
    (v / "P0006_PLAX.avi").replace(v / "P0006_PLAX.dcm")                                   # AVI named .dcm
    table.loc[(table["patient_id"] == "P0006") & (table["view"] == "PLAX"), "file"] = "videos/P0006_PLAX.dcm"
    rows = [_like(table, "R0001", "P9001", file="videos/P9001_A4C.avi"),
            _like(table, "P0003", "P9002", file="videos/P9002_A4C.dcm"),
            _like(table, "R0001", "R0002", file="videos/R0002_A4C.dcm"),
            _like(table, "R0004", "R0003", file="videos/R0003_PLAX.dcm")]
    out = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
    return out.rename(columns={"view": "veiw"})                                           # a header typo


def run_echo(tmp: Path, smoke: bool) -> None:
    base, damaged, table = echo_build(tmp)
    table.to_csv(damaged / "labels.csv", index=False)
    clean = validate("echo_cmr", base, tmp / "cache", [], ECHO_CONFIG)
    problems = validate("echo_cmr", damaged, tmp / "cache", [], ECHO_CONFIG)
    lines = {f"{pid}/{view}": i + 2 for i, (pid, view) in enumerate(zip(table["patient_id"], table["veiw"]))}
    report("echo_cmr", clean, problems, ECHO_DAMAGES, lines, {})


# ------------------------------------------------------------------------------------------------ mmode_septal_flash

def _regions(path: Path, mm_per_px: float) -> None:
    """An ultrasound region over the whole image calibrated at `mm_per_px` (PhysicalDelta in cm, units code 3)."""
    import pydicom
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(path)
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = int(ds.Columns) - 1, int(ds.Rows) - 1
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 3, 3
    region.PhysicalDeltaX, region.PhysicalDeltaY = mm_per_px / 10, mm_per_px / 10
    region.RegionSpatialFormat, region.RegionDataType = 1, 1
    ds.SequenceOfUltrasoundRegions = [region]
    ds.save_as(path)


def mmode_build(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The clean base (16 synthetic records; SF0002's sequence a calibrated DICOM; SF0014's R peaks written with
    decimal commas and ';' between them, a quirk to read right), and its damaged copy's table."""
    from cardio_imaging.cine import write_dicom_cine
    from cardio_mmode_septal_flash import synthetic
    from cardio_mmode_septal_flash.settings import Synthetic

    base = synthetic.write_cohort(Synthetic(n_patients=16, n_sf=7, size=64), tmp / "base")
    s = base / "sequences"
    table = pd.read_csv(base / "labels.csv").assign(r_peaks_ms="", pixel_spacing_mm=np.nan)
    write_dicom_cine(s / "SF0002.dcm", np.load(s / "SF0002.npy"), 20.0)
    (s / "SF0002.npy").unlink()
    _regions(s / "SF0002.dcm", 1.5)
    row = table.index[table["patient_id"] == "SF0014"][0]
    ms = float(table.loc[row, "frame_time_ms"])
    start, end = table.loc[row, ["cycle_start", "cycle_end"]]
    table.loc[row, ["cycle_start", "cycle_end", "r_peaks_ms"]] = [np.nan, np.nan,
                                                                  f"{start * ms:.1f};{end * ms:.1f}".replace(".", ",")]
    _european(table, base / "labels.csv")
    damaged = shutil.copytree(base, tmp / "damaged")
    return base, damaged, mmode_damage(damaged, table)


def _european(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, sep=";", decimal=",", index=False, encoding="utf-8-sig")


def mmode_damage(root: Path, table: pd.DataFrame) -> pd.DataFrame:
    from cardio_imaging.cine import write_dicom_cine, write_video

    s, p, t = root / "sequences", root / "septum", table.set_index("patient_id")
    t.loc["SF0002", "pixel_spacing_mm"] = 0.5                                           # against the regions
    pts = pd.read_csv(p / "SF0003.csv")
    pts.iloc[::-1].to_csv(p / "SF0003.csv", index=False)                                # apex to base
    t.loc["SF0004", ["cycle_start", "cycle_end", "r_peaks_ms"]] = [np.nan, np.nan, "100;300"]
    t.loc["SF0005", ["cycle_start", "cycle_end", "r_peaks_ms"]] = [np.nan, np.nan, "67,933"]
    pts = pd.read_csv(p / "SF0006.csv")
    (pts * 0.15).to_csv(p / "SF0006.csv", index=False)                                  # cm, not pixels
    t.loc["SF0006", "pixel_spacing_mm"] = 1.5
    write_video(s / "SF9001.avi", np.load(s / "SF0008.npy"), 50.0)                      # re-encoded copy
    shutil.copy(p / "SF0008.csv", p / "SF9001.csv")
    t.loc["SF0009", "frame_time_ms"] = 200.0                                            # 10x frame time
    write_dicom_cine(s / "SF0010.dcm", np.load(s / "SF0010.npy"), 20.0)
    (s / "SF0010.npy").unlink()
    cut = (s / "SF0010.dcm").read_bytes()
    (s / "SF0010.dcm").write_bytes(cut[:int(0.6 * len(cut))])                           # truncated DICOM
    write_video(s / "SF0011.avi", np.load(s / "SF0011.npy"), 50.0)
    (s / "SF0011.npy").unlink()
    (s / "SF0011.avi").replace(s / "SF0011.dcm")                                        # AVI named .dcm
    (p / "SF0012.csv").write_text("\n".join((p / "SF0012.csv").read_text().splitlines()[1:]) + "\n")
    t["septal_flash"] = t["septal_flash"].astype(object)
    t.loc["SF0013", "septal_flash"] = "ja"
    extra = pd.DataFrame([{**t.loc["SF0008"].to_dict(), "sequence": "sequences/SF9001.avi"}], index=["SF9001"])
    return pd.concat([t, extra]).rename_axis("patient_id").reset_index()


def run_mmode(tmp: Path, smoke: bool) -> None:
    base, damaged, table = mmode_build(tmp)
    _european(table, damaged / "labels.csv")
    sets = ["cv.method=kfold", "cv.folds=2"]
    clean = validate("mmode_septal_flash", base, tmp / "cache", sets)
    problems = validate("mmode_septal_flash", damaged, tmp / "cache", sets)
    lines = {pid: i + 2 for i, pid in enumerate(table["patient_id"])}
    report("mmode_septal_flash", clean, problems, MMODE_DAMAGES, lines, {})


# ------------------------------------------------------------------------------------------------ spect_polar

SPECT_SETS = ["spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32", "cv.folds=2"]


def _spect_volume(path: Path) -> np.ndarray:
    from cardio_spect_polar.dicom_io import read_volume

    return read_volume(path).data


def _dicom_edit(path: Path, **values: object) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in values.items():
        setattr(ds, key, value)
    ds.save_as(path)


def spect_build(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The clean base (16 patients P0001.. written by spect_polar's multimodal writer as gated NM DICOM), and its
    damaged copy's table."""
    from cardio_spect_polar.cohort import write_multimodal_cohort
    from cardio_spect_polar.settings import SpectSettings

    settings = SpectSettings.of({"spect_polar": {"synthetic": {"slices": 16, "size": 32}}})
    patients = pd.DataFrame({"patient_id": [f"P{i + 1:04d}" for i in range(16)], "responder": [0, 1] * 8,
                             "drive": np.linspace(-1.5, 1.5, 16)})
    base = tmp / "base"
    write_multimodal_cohort(patients, base, 55, settings, progress=lambda it, **_: it)
    table = pd.read_csv(base / "clinical.csv")
    damaged = shutil.copytree(base, tmp / "damaged")
    return base, damaged, spect_damage(damaged, table)


def spect_damage(root: Path, table: pd.DataFrame) -> pd.DataFrame:

    v, t = root / "volumes", table.set_index("patient_id").assign(file="")
    t["sex"] = t["sex"].astype(object)
    vol = {p: _spect_volume(v / f"{p}.dcm") for p in ("P0002", "P0003", "P0004", "P0007", "P0009")}
    np.save(v / "P0002.npy", vol["P0002"] / vol["P0002"].max())                          # counts 0..1
    np.save(v / "P0003.npy", np.repeat(vol["P0003"].sum(0, keepdims=True), 8, axis=0))   # gates identical
    np.save(v / "P0004.npy", vol["P0004"][[0, 4, 1, 6, 2, 7, 3, 5]])                     # gates shuffled
    _dicom_edit(v / "P0005.dcm", PixelSpacing=[0.6, 0.6])                                # cm as mm
    _dicom_edit(v / "P0006.dcm", SpacingBetweenSlices=90.0, SliceThickness=90.0)         # 10x slice spacing
    np.save(v / "P9001.npy", vol["P0007"].astype(np.float32))                            # re-export, new id
    shutil.copy(_data() / "spect_nm" / "NM-MONO2-16-13x-heart.dcm", v / "P0008.dcm")    # real static HLA
    np.save(v / "P0009.npy", vol["P0009"][:, ::-1])                                     # base first, silent
    rng = np.random.default_rng(10)
    np.savetxt(v / "P0010.csv", 1.8 + 0.6 * np.tanh(rng.normal(0, 1, (32, 64))), delimiter=",", fmt="%.4f")
    cut = (v / "P0011.dcm").read_bytes()
    (v / "P0011.dcm").write_bytes(cut[:int(0.6 * len(cut))])                            # truncated
    shutil.copy(_testdata("CT_small.dcm"), v / "P0012.dcm")                     # a CT slice
    t.loc["P0013", "sex"] = "M"
    t.loc["P0014", "esv"] = round(1.5 * float(t.loc["P0014", "edv"]), 1)
    for pid, name in (("P0002", "P0002.npy"), ("P0003", "P0003.npy"), ("P0004", "P0004.npy"),
                      ("P0009", "P0009.npy"), ("P0010", "P0010.csv")):
        t.loc[pid, "file"] = f"volumes/{name}"
        (v / f"{pid}.dcm").unlink()
    extra = pd.DataFrame([{**t.loc["P0007"].to_dict(), "file": "volumes/P9001.npy"}], index=["P9001"])
    return pd.concat([t, extra]).rename_axis("patient_id").reset_index()


def run_spect(tmp: Path, smoke: bool) -> None:
    base, damaged, table = spect_build(tmp)
    table.to_csv(damaged / "clinical.csv", index=False)
    sets = [*SPECT_SETS, "cohort.records=read"]
    clean = validate("spect_polar", base, tmp / "cache", sets)
    problems = validate("spect_polar", damaged, tmp / "cache", sets)
    lines = {pid: i + 2 for i, pid in enumerate(table["patient_id"])}
    files = {pid: f"{pid}." for pid in table["patient_id"]}
    report("spect_polar", clean, problems, SPECT_DAMAGES, lines, files)


# ------------------------------------------------------------------------------------------------ perfusion_polar

def perfusion_build(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The clean base (20 studies PF0001.. from perfusion_polar's synthetic writer, 32 x 32 maps), and its damaged
    copy's table."""
    from cardio_perfusion_polar.synthetic import synthesize, write_cohort

    table, maps = synthesize(20, 32, seed=55)  # 16 would hold one diabetic: a base validate refuses
    base = write_cohort(table, maps, tmp / "base")
    damaged = shutil.copytree(base, tmp / "damaged")
    return base, damaged, perfusion_damage(damaged, table)


def perfusion_damage(root: Path, table: pd.DataFrame) -> pd.DataFrame:
    from cardio_perfusion_polar.polar_table import sample_image, write_table

    m, t = root / "maps", table.set_index("patient_id")
    t["diabetes"] = t["diabetes"].astype(object)
    maps = {p: np.load(m / f"{p}.npy") for p in t.index}

    def save(pid: str, arr: np.ndarray) -> None:
        np.save(m / f"{pid}.npy", arr.astype(np.float32))

    save("PF0002", maps["PF0002"] * np.array([0.01, 1, 1])[:, None, None])             # rest in fractions
    save("PF0003", maps["PF0003"] * np.array([1, 1, 10])[:, None, None])               # MFR x 10
    save("PF0004", maps["PF0004"][[0, 0, 2]])                                          # rest as stress
    save("PF0005", maps["PF0005"][:, :, ::-1])                                         # mirrored
    write_table(sample_image(maps["PF0006"], 16, 32), m / "PF9001.csv")                 # re-export, new id
    t.loc["PF0007", "global_mfr"] = round(10 * float(t.loc["PF0007", "global_mfr"]), 4)
    cut = (m / "PF0008.npy").read_bytes()
    (m / "PF0008.npy").write_bytes(cut[:int(0.6 * len(cut))])                          # truncated
    save("PF0009", maps["PF0009"][:2])                                                 # two channels
    nan = maps["PF0010"].copy()
    nan[1, 16, 6:16] = np.nan
    save("PF0010", nan)
    t.loc["PF0011", "diabetes"] = "yes"
    write_table(sample_image(maps["PF0012"], 16, 32), m / "PF0012.csv")
    (m / "PF0012.csv").write_text((m / "PF0012.csv").read_text().replace("mfr,", "flow,"))
    (m / "PF0012.npy").unlink()
    extra = pd.DataFrame([{**t.loc["PF0006"].to_dict()}], index=["PF9001"])
    out = pd.concat([t, extra]).rename_axis("patient_id").reset_index()
    out.insert(1, "map", "")
    out.loc[out["patient_id"] == "PF9001", "map"] = "maps/PF9001.csv"
    return out


def run_perfusion(tmp: Path, smoke: bool) -> None:
    base, damaged, table = perfusion_build(tmp)
    table.to_csv(damaged / "labels.csv", index=False)
    sets = ["perfusion_polar.size=32", "cv.folds=2"]
    clean = validate("perfusion_polar", base, tmp / "cache", sets)
    problems = validate("perfusion_polar", damaged, tmp / "cache", sets)
    lines = {pid: i + 2 for i, pid in enumerate(table["patient_id"])}
    files = {pid: f"{pid}." for pid in table["patient_id"]}
    report("perfusion_polar", clean, problems, PERFUSION_DAMAGES, lines, files)


# ------------------------------------------------------------------------------------------------ clean real data

def run_clean(tmp: Path) -> None:
    """validate on clean real data: every false alarm is a line."""

    records = sorted(p.stem for p in (_data() / "mitdb").glob("*.hea"))
    root = tmp / "mitdb"
    (root / "ecg").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for i, r in enumerate(records):
        for ext in (".hea", ".dat"):
            (root / "ecg" / f"{r}{ext}").symlink_to(_data() / "mitdb" / f"{r}{ext}")
        rows.append({"patient_id": f"M{r}", "responder": i % 2, "ecg": f"ecg/{r}", "qrs_ms": 150, "lbbb": i % 2,
                     "lvef": 30, "age": 60, "sex": int(rng.integers(0, 2))})
    shutil.copy(_testdata("waveform_ecg.dcm"), root / "ecg" / "cart.dcm")
    rows.append({**rows[0], "patient_id": "cart", "ecg": "ecg/cart.dcm"})
    pd.DataFrame(rows).to_csv(root / "cohort.csv", index=False)
    for lead in ("null", "1"):  # MLII (lead II's stand-in) and the second lead of every record
        problems = validate("ecg_transfer", root, tmp / "cache", ["cohort.allow_outside_paths=true",
                                                                  f"ecg_transfer.lead={lead}"])
        print(f"\n## clean real ECGs (48 MIT-BIH records x 30 min + pydicom's 12-lead), ecg_transfer.lead={lead}: "
              f"{0 if problems[0].startswith('OK') else len(problems)} false alarm(s)")
        print("\n".join(problems))


RUNS: dict[str, Callable[[Path, bool], None]] = {"ecg_transfer": run_ecg, "echo_cmr": run_echo,
                                                  "mmode_septal_flash": run_mmode, "spect_polar": run_spect,
                                                  "perfusion_polar": run_perfusion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modality", choices=sorted(RUNS), action="append")
    parser.add_argument("--clean", action="store_true", help="false alarms on clean real data")
    parser.add_argument("--smoke", action="store_true", help="the ECG cohort's first damages on 12 s excerpts")
    args = parser.parse_args()
    if not (_data() / "mitdb" / "100.hea").is_file() or not (_data() / "echo_dicom").is_dir():
        print(f"skipped: MIT-BIH and the echo DICOMs are not under {_data()} (set CARDIO_DATA)")
        return
    with tempfile.TemporaryDirectory(prefix="validate-damages-") as scratch:
        tmp = Path(scratch)
        if args.clean:
            run_clean(tmp / "clean")
            return
        for name in (["ecg_transfer"] if args.smoke else args.modality or sorted(RUNS)):
            RUNS[name](tmp / name, args.smoke)


if __name__ == "__main__":
    main()
