"""R-peak detection on the MIT-BIH Arrhythmia Database: ours vs wfdb's XQRS and GQRS (and NeuroKit2's manikandan2012).

Our detector's decision thresholds are tuned on the 22 DS1 records only (`--tune` searches them and
prints the best; rpeaks.SETTINGS holds the frozen choice) and scored on the DS2 records, which the
tuning never saw: both figures are printed (DS1 is the tuning figure, DS2 the test figure; the
paced records and the rest of the 48 are shown as "other").
Every detector runs on the same lead of the same records in the same run. wfdb (XQRS, GQRS) is in the
project's lock; NeuroKit2 needs pandas < 3, which the lock does not have, so it is compared only when
importable (a separate environment, see the README) and skipped with that reason otherwise. References are the
.atr beat annotations (non-beat symbols such as rhythm changes, noise and comments excluded);
a detection matches a reference beat within 150 ms (wfdb.processing.compare_annotations).
Reported per record and gross (sums of TP, FN, FP over all records):
  Se = TP / (TP + FN), +P = TP / (TP + FP).
A second summary follows the ANSI/AAMI EC57 convention of leaving ventricular flutter episodes
('[' ... ']', record 207) out of both the references and the detections.
Goal for ours: Se >= 99.7 % and +P >= 99.7 % on DS2.

    python benchmarks/rpeaks_mitdb.py                       # all 48 records, all detectors
    python benchmarks/rpeaks_mitdb.py --records 100 101     # a quick look
    python benchmarks/rpeaks_mitdb.py --smoke               # record 100, ours only: checks the script runs
    python benchmarks/rpeaks_mitdb.py --cores 2 --detectors ours xqrs gqrs
    python benchmarks/rpeaks_mitdb.py --tune                # the search on DS1 records (prints the best)
"""
from __future__ import annotations

import argparse
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

GOAL = 99.7


def _ours(sig, fs):
    from cardio_ecg_transfer.rpeaks import detect_rpeaks
    return detect_rpeaks(sig, fs)


def _xqrs(sig, fs):
    from wfdb.processing import xqrs_detect
    return xqrs_detect(sig, fs, verbose=False)


def _gqrs(sig, fs):
    from wfdb.processing import gqrs_detect
    return gqrs_detect(sig, fs)


def _neurokit(sig, fs):
    import neurokit2 as nk
    # NeuroKit2 0.2.x's manikandan2012 crashes (np.arange of an array, numpy 2) when a peak lies
    # within half a search window of the end (record 105); one second of edge padding avoids that
    # and detections in the padding are dropped.
    n = len(sig)
    padded = np.pad(np.asarray(sig, dtype=float), (0, int(fs)), mode="edge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peaks = np.asarray(nk.ecg_findpeaks(padded, sampling_rate=int(fs), method="manikandan2012")["ECG_R_Peaks"])
    return peaks[peaks < n]


DETECTORS = {"ours": _ours, "xqrs": _xqrs, "gqrs": _gqrs, "neurokit": _neurokit}
#: The decision thresholds `--tune` searches (each value list crossed with the others).
GRID = {"strong_q": (0.3, 0.35, 0.4, 0.45), "strong_q2": (1.0, 1.1, 1.2, 1.4), "weak_q2": (1.6, 2.0, 2.4),
        "fill_q": (0.03, 0.05, 0.08), "gap": (1.2, 1.3, 1.4)}


def _neurokit_missing() -> str | None:
    try:
        import neurokit2  # noqa: F401
    except ImportError:
        return ("neurokit2 is not installed: it requires pandas < 3 and the project's lock has pandas 3, so it lives "
                "in an environment of its own (README, Benchmarks); skipped")
    return None


def _split(name: str) -> str:
    from cardio_ecg_transfer import aami
    return "DS1 (tuning)" if name in aami.DS1 else "DS2 (test)" if name in aami.DS2 else "other (paced)"


def _near(a: np.ndarray, b: np.ndarray, window: int) -> np.ndarray:
    """For each point of a: is a point of b within `window` samples (a fast stand-in for one-to-one matching)."""
    if not len(b):
        return np.zeros(len(a), bool)
    j = np.clip(np.searchsorted(b, a), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(a), int)
    d = np.minimum(np.abs(b[j] - a), np.abs(b[np.maximum(j - 1, 0)] - a))
    return d <= window


def tune_record(job: tuple) -> tuple[str, np.ndarray]:
    """(record, (n_settings, 2) FN and FP) of every setting of GRID on one record."""
    import itertools

    from cardio_ecg_transfer.records import BEAT_SYMBOLS, read_wfdb
    from cardio_ecg_transfer.rpeaks import candidates, decide

    root, name, lead, tol_ms = job
    rec = read_wfdb(Path(root) / name, fs=360, lead=lead, annotator="atr")
    samples, symbols = rec.annotations()
    ref = samples[np.isin(symbols, list(BEAT_SYMBOLS))]
    window = int(round(tol_ms / 1000 * rec.fs))
    cand = candidates(rec.signal, rec.fs)
    out = []
    for values in itertools.product(*GRID.values()):
        det = decide(cand, dict(zip(GRID, values)))
        out.append((int((~_near(ref, det, window)).sum()), int((~_near(det, ref, window)).sum())))
    return name, np.asarray(out)


def tune(root: Path, lead, tol_ms: float, cores: int) -> None:
    """Search GRID on the DS1 records only; print the settings with the fewest FN + FP (ties: the current ones)."""
    import itertools

    from tqdm import tqdm

    from cardio_ecg_transfer import aami
    from cardio_ecg_transfer.rpeaks import SETTINGS

    jobs = [(str(root), n, lead, tol_ms) for n in aami.DS1]
    if cores > 1:
        with Pool(cores) as pool:
            results = list(tqdm(pool.imap(tune_record, jobs), total=len(jobs), desc="DS1 records"))
    else:
        results = [tune_record(j) for j in tqdm(jobs, desc="DS1 records")]
    errors = sum(r for _, r in results)
    grid = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    settings: dict[str, object] = dict(SETTINGS)
    current = next(i for i, g in enumerate(grid) if all(settings[k] == v for k, v in g.items()))
    total = errors.sum(axis=1)
    best = min(range(len(grid)), key=lambda i: (total[i], i != current))
    print(f"\nSearch over {len(grid)} settings on the {len(jobs)} DS1 records (FN + FP, approximate matching):")
    print(f"  current {grid[current]}: FN {errors[current, 0]}, FP {errors[current, 1]}")
    print(f"  best    {grid[best]}: FN {errors[best, 0]}, FP {errors[best, 1]}")
    for i in np.argsort(total)[:5]:
        print(f"    {grid[i]}: FN {errors[i, 0]} FP {errors[i, 1]}")



def _vf_mask(samples: np.ndarray, symbols: np.ndarray, points: np.ndarray) -> np.ndarray:
    """True for points inside a ventricular flutter episode ('[' to ']')."""
    starts, ends = samples[symbols == "["], samples[symbols == "]"]
    inside = np.zeros(len(points), bool)
    for s in starts:  # a loop over the few episodes
        later = ends[ends > s]
        e = later[0] if len(later) else np.inf
        inside |= (points >= s) & (points <= e)
    return inside


def evaluate_record(job: tuple) -> list[dict]:
    from wfdb.processing import compare_annotations

    from cardio_ecg_transfer.records import BEAT_SYMBOLS, read_wfdb

    root, name, lead, detectors, tol_ms = job
    rec = read_wfdb(Path(root) / name, fs=360, lead=lead, annotator="atr")
    fs = rec.fs
    samples, symbols = rec.annotations()
    beat = np.isin(symbols, list(BEAT_SYMBOLS))
    ref = samples[beat]
    ref_vf = _vf_mask(samples, symbols, ref)
    window = int(round(tol_ms / 1000 * fs))
    rows = []
    for det_name in detectors:
        t0 = time.perf_counter()
        det = np.unique(np.asarray(DETECTORS[det_name](rec.signal, fs), dtype=np.int64))
        seconds = time.perf_counter() - t0
        c = compare_annotations(ref, det, window)
        det_vf = _vf_mask(samples, symbols, det)
        c2 = compare_annotations(ref[~ref_vf], det[~det_vf], window)
        rows.append({"record": name, "detector": det_name, "n_ref": c.n_ref, "tp": c.tp, "fn": c.n_ref - c.tp,
                     "fp": c.n_test - c.tp, "n_ref_novf": c2.n_ref, "tp_novf": c2.tp,
                     "fn_novf": c2.n_ref - c2.tp, "fp_novf": c2.n_test - c2.tp, "seconds": seconds})
    return rows


def gross(df: pd.DataFrame, suffix: str = "") -> pd.DataFrame:
    g = df.groupby(["split", "detector"], sort=False)[[f"tp{suffix}", f"fn{suffix}", f"fp{suffix}", "seconds"]].sum()
    g["Se_%"] = 100 * g[f"tp{suffix}"] / (g[f"tp{suffix}"] + g[f"fn{suffix}"])
    g["+P_%"] = 100 * g[f"tp{suffix}"] / (g[f"tp{suffix}"] + g[f"fp{suffix}"])
    return g.rename(columns=lambda c: c.replace(suffix, "") if suffix else c)


def main(argv=None) -> int:
    # ecg_transfer.mitdb_dir's default: $CARDIO_DATA/mitdb, else the cache
    from cardio_ecg_transfer.mitdb import mitdb_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mitdb", type=Path, default=mitdb_dir(), help="folder of the MIT-BIH WFDB files")
    ap.add_argument("--records", nargs="*", default=None, help="record names (default: all with .atr)")
    ap.add_argument("--lead", default="0", help="lead index or name (default 0: MLII in 45 of 48 records)")
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS), choices=list(DETECTORS))
    ap.add_argument("--tolerance-ms", type=float, default=150.0)
    ap.add_argument("--cores", type=int, default=1, help="worker processes (records run in parallel)")
    ap.add_argument("--csv", type=Path, default=None, help="also write the per-record table here")
    ap.add_argument("--tune", action="store_true", help="search the decision thresholds on DS1 records only")
    ap.add_argument("--smoke", action="store_true", help="record 100, our detector only: checks the script runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.records, args.detectors = args.records or ["100"], ["ours"]
    if not args.mitdb.is_dir():
        print(f"skipped: no MIT-BIH folder at {args.mitdb} (set CARDIO_DATA or --mitdb)")
        return 0
    lead = int(args.lead) if args.lead.isdigit() else args.lead
    if args.tune:
        tune(args.mitdb, lead, args.tolerance_ms, args.cores)
        return 0

    from tqdm import tqdm

    from cardio_ecg_transfer.mitdb import mitdb_records

    detectors = list(args.detectors)
    if "neurokit" in detectors and (why := _neurokit_missing()):
        print(f"neurokit: {why}")
        detectors.remove("neurokit")
    names = args.records or mitdb_records(args.mitdb)
    jobs = [(str(args.mitdb), n, lead, detectors, args.tolerance_ms) for n in names]
    rows = []
    if args.cores > 1:
        with Pool(args.cores) as pool:
            for r in tqdm(pool.imap(evaluate_record, jobs), total=len(jobs), desc="records"):
                rows.extend(r)
    else:
        for job in tqdm(jobs, desc="records"):
            rows.extend(evaluate_record(job))
    df = pd.DataFrame(rows)
    df["split"] = df["record"].map(_split)

    wide = df.pivot(index="record", columns="detector", values=["fn", "fp"])
    first = df.groupby("record")[["split", "n_ref"]].first()
    table = pd.DataFrame({"split": first["split"], "n_ref": first["n_ref"]})
    for d in detectors:
        table[f"{d} FN"] = wide[("fn", d)]
        table[f"{d} FP"] = wide[("fp", d)]
    pd.set_option("display.width", 200)
    print(f"\nPer record (lead {args.lead}, {args.tolerance_ms:g} ms matching window):")
    print(table.sort_values(["split", "n_ref"]).to_string())
    if args.csv:
        df.to_csv(args.csv, index=False)

    total = gross(df)
    novf = gross(df, "_novf")
    print("\nGross per split (our thresholds were tuned on DS1 only; DS2 is the test figure):")
    print(total[["tp", "fn", "fp", "Se_%", "+P_%", "seconds"]].round(3).to_string())
    print("\nEC57 convention (ventricular flutter episodes excluded):")
    print(novf[["tp", "fn", "fp", "Se_%", "+P_%"]].round(3).to_string())
    times = df.groupby("detector")["seconds"].sum()
    if "ours" in times.index:
        for d in times.index.drop("ours"):
            print(f"time ratio {d} / ours: {times[d] / times['ours']:.1f}x")
    key = ("DS2 (test)", "ours")
    if key in total.index:
        se, ppv = total.loc[key, "Se_%"], total.loc[key, "+P_%"]
        met = se >= GOAL and ppv >= GOAL
        n_ds2 = int((table["split"] == "DS2 (test)").sum())
        print(f"\nGoal on DS2, Se >= {GOAL}% and +P >= {GOAL}% (all beats): {'MET' if met else 'NOT MET'} "
              f"(Se {se:.3f}%, +P {ppv:.3f}%)" + ("" if n_ds2 == 22 else f" [on {n_ds2} of 22 DS2 records]"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
