"""R-peak detection on the MIT-BIH Arrhythmia Database: ours vs wfdb's XQRS vs NeuroKit2's manikandan2012.

Every detector runs on the same lead of the same records in the same run. References are the
.atr beat annotations (non-beat symbols such as rhythm changes, noise and comments excluded);
a detection matches a reference beat within 150 ms (wfdb.processing.compare_annotations).
Reported per record and gross (sums of TP, FN, FP over all records):
  Se = TP / (TP + FN), +P = TP / (TP + FP).
A second summary follows the ANSI/AAMI EC57 convention of leaving ventricular flutter episodes
('[' ... ']', record 207) out of both the references and the detections.
Goal for ours: Se >= 99.7 % and +P >= 99.7 % over all 48 records.

    python benchmarks/rpeaks_mitdb.py                       # all 48 records, all detectors
    python benchmarks/rpeaks_mitdb.py --records 100 101     # a quick look
    python benchmarks/rpeaks_mitdb.py --cores 4 --detectors ours xqrs
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


DETECTORS = {"ours": _ours, "xqrs": _xqrs, "neurokit": _neurokit}


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
    beat = np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))
    ref = rec.ann_samples[beat]
    ref_vf = _vf_mask(rec.ann_samples, rec.ann_symbols, ref)
    window = int(round(tol_ms / 1000 * fs))
    rows = []
    for det_name in detectors:
        t0 = time.perf_counter()
        det = np.unique(np.asarray(DETECTORS[det_name](rec.signal, fs), dtype=np.int64))
        seconds = time.perf_counter() - t0
        c = compare_annotations(ref, det, window)
        det_vf = _vf_mask(rec.ann_samples, rec.ann_symbols, det)
        c2 = compare_annotations(ref[~ref_vf], det[~det_vf], window)
        rows.append({"record": name, "detector": det_name, "n_ref": c.n_ref, "tp": c.tp, "fn": c.n_ref - c.tp,
                     "fp": c.n_test - c.tp, "n_ref_novf": c2.n_ref, "tp_novf": c2.tp,
                     "fn_novf": c2.n_ref - c2.tp, "fp_novf": c2.n_test - c2.tp, "seconds": seconds})
    return rows


def gross(df: pd.DataFrame, suffix: str = "") -> pd.DataFrame:
    g = df.groupby("detector", sort=False)[[f"tp{suffix}", f"fn{suffix}", f"fp{suffix}", "seconds"]].sum()
    g["Se_%"] = 100 * g[f"tp{suffix}"] / (g[f"tp{suffix}"] + g[f"fn{suffix}"])
    g["+P_%"] = 100 * g[f"tp{suffix}"] / (g[f"tp{suffix}"] + g[f"fp{suffix}"])
    return g.rename(columns=lambda c: c.replace(suffix, "") if suffix else c)


def main(argv=None) -> int:
    from cardio_ecg_transfer.records import mitdb_dir  # the plugin's default: $CARDIO_SHARED_DATA/mitdb

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mitdb", type=Path, default=mitdb_dir(), help="folder of the MIT-BIH WFDB files")
    ap.add_argument("--records", nargs="*", default=None, help="record names (default: all with .atr)")
    ap.add_argument("--lead", default="0", help="lead index or name (default 0: MLII in 45 of 48 records)")
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS), choices=list(DETECTORS))
    ap.add_argument("--tolerance-ms", type=float, default=150.0)
    ap.add_argument("--cores", type=int, default=1, help="worker processes (records run in parallel)")
    ap.add_argument("--csv", type=Path, default=None, help="also write the per-record table here")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from cardio_ecg_transfer.records import mitdb_records

    names = args.records or mitdb_records(args.mitdb)
    lead = int(args.lead) if args.lead.isdigit() else args.lead
    jobs = [(str(args.mitdb), n, lead, args.detectors, args.tolerance_ms) for n in names]
    rows = []
    if args.cores > 1:
        with Pool(args.cores) as pool:
            for r in tqdm(pool.imap(evaluate_record, jobs), total=len(jobs), desc="records"):
                rows.extend(r)
    else:
        for job in tqdm(jobs, desc="records"):
            rows.extend(evaluate_record(job))
    df = pd.DataFrame(rows)

    wide = df.pivot(index="record", columns="detector", values=["fn", "fp"])
    table = pd.DataFrame({"n_ref": df.groupby("record")["n_ref"].first()})
    for d in args.detectors:
        table[f"{d} FN"] = wide[("fn", d)]
        table[f"{d} FP"] = wide[("fp", d)]
    pd.set_option("display.width", 200)
    print(f"\nPer record (lead {args.lead}, {args.tolerance_ms:g} ms matching window):")
    print(table.to_string())
    if args.csv:
        df.to_csv(args.csv, index=False)

    total = gross(df)
    novf = gross(df, "_novf")
    n_ref = int(df.loc[df["detector"] == args.detectors[0], "n_ref"].sum())
    print(f"\nGross over {len(names)} record(s), {n_ref} reference beats:")
    print(total[["tp", "fn", "fp", "Se_%", "+P_%", "seconds"]].round(3).to_string())
    print("\nEC57 convention (ventricular flutter episodes excluded):")
    print(novf[["tp", "fn", "fp", "Se_%", "+P_%"]].round(3).to_string())
    if "ours" in total.index:
        for d in total.index.drop("ours"):
            print(f"time ratio {d} / ours: {total.loc[d, 'seconds'] / total.loc['ours', 'seconds']:.1f}x")
        se, ppv = total.loc["ours", "Se_%"], total.loc["ours", "+P_%"]
        met = se >= GOAL and ppv >= GOAL
        print(f"\nGoal Se >= {GOAL}% and +P >= {GOAL}% (all beats): {'MET' if met else 'NOT MET'} "
              f"(Se {se:.3f}%, +P {ppv:.3f}%)" + ("" if len(names) == 48 else f" [on {len(names)} of 48 records]"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
