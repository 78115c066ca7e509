"""ECG preprocessing speed, measured side by side in one run on the MIT-BIH records.

1. Our whole preprocessing (R-peak detection, 0.5 Hz high-pass, 1.2 RR beat windows resampled to
   256 samples, batched STFT log spectrograms) vs wfdb's XQRS detector alone, on the same signals
   (already in memory for both). Goal: ours >= 10x faster with equal or better Se and +P (beat
   annotations, 150 ms window).
2. Batched spectrograms vs a loop of one scipy.signal.stft call per beat, on all the beats found:
   same output (asserted with allclose), time ratio on the CPU and, when CUDA is available, on
   the GPU (torch.stft; goal >= 50x there).

    python benchmarks/ecg_preprocess.py                    # all 48 records
    python benchmarks/ecg_preprocess.py --records 100 101  # a quick look
    python benchmarks/ecg_preprocess.py --smoke            # 2 min of record 100: checks the script runs
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import signal as sps


def preprocess(sig: np.ndarray, fs: float, length: int, nperseg: int, noverlap: int):
    from cardio_ecg_transfer.beats import segment_beats
    from cardio_ecg_transfer.rpeaks import detect_rpeaks
    from cardio_ecg_transfer.spectrogram import spectrograms

    peaks = detect_rpeaks(sig, fs)
    sos = sps.butter(2, 0.5, btype="highpass", fs=fs, output="sos")
    beats, kept = segment_beats(sps.sosfiltfilt(sos, sig), peaks, fs, length=length)
    return peaks, beats, spectrograms(beats, fs, nperseg=nperseg, noverlap=noverlap)


def _score(refs, dets, fs):
    from wfdb.processing import compare_annotations
    tp = fn = fp = 0
    for ref, det in zip(refs, dets):
        c = compare_annotations(ref, np.asarray(det, dtype=np.int64), int(0.15 * fs))
        tp, fn, fp = tp + c.tp, fn + c.n_ref - c.tp, fp + c.n_test - c.tp
    return 100 * tp / (tp + fn), 100 * tp / (tp + fp)


def _time(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    from cardio_ecg_transfer.mitdb import mitdb_dir  # the plugin's default: $CARDIO_DATA/mitdb, else the cache

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mitdb", type=Path, default=mitdb_dir())
    ap.add_argument("--records", nargs="*", default=None)
    ap.add_argument("--lead", type=int, default=0)
    ap.add_argument("--length", type=int, default=256, help="samples per beat window")
    ap.add_argument("--nperseg", type=int, default=64)
    ap.add_argument("--noverlap", type=int, default=56)
    ap.add_argument("--loop-beats", type=int, default=0, help="beats in the per-beat stft loop (0: all)")
    ap.add_argument("--smoke", action="store_true", help="the first 2 min of record 100: checks the script runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.records, args.loop_beats = args.records or ["100"], args.loop_beats or 500
    if not args.mitdb.is_dir():
        print(f"skipped: no MIT-BIH folder at {args.mitdb} (set CARDIO_DATA or --mitdb)")
        return 0

    import torch
    from tqdm import tqdm
    from wfdb.processing import xqrs_detect

    from cardio_ecg_transfer.mitdb import load_mitdb
    from cardio_ecg_transfer.records import BEAT_SYMBOLS
    from cardio_ecg_transfer.spectrogram import spectrogram_loop, spectrograms

    data = load_mitdb(args.mitdb, records=args.records, fs=360, lead=args.lead)
    fs = 360.0
    if args.smoke:  # the first two minutes: XQRS alone takes tens of seconds on a whole record
        end = int(120 * fs)
        data = [(n, sig[:end], f, s[s < end], y[s < end]) for n, sig, f, s, y in data]
    refs = [s[np.isin(y, list(BEAT_SYMBOLS))] for _, _, _, s, y in data]
    print(f"{len(data)} MIT-BIH record(s), lead {args.lead}, {sum(len(r) for r in refs)} annotated beats")

    # -- 1. whole preprocessing vs XQRS detection alone, record by record, same signals
    t_ours = t_xqrs = 0.0
    ours, xq, all_beats = [], [], []
    for name, sig, _, _, _ in tqdm(data, desc="records"):
        t, (peaks, beats, spec) = _time(lambda: preprocess(sig, fs, args.length, args.nperseg, args.noverlap))
        t_ours += t
        ours.append(peaks)
        all_beats.append(beats)
        t, det = _time(lambda: xqrs_detect(sig, fs, verbose=False))
        t_xqrs += t
        xq.append(det)
    se_o, pp_o = _score(refs, ours, fs)
    se_x, pp_x = _score(refs, xq, fs)
    ratio = t_xqrs / t_ours
    print("\nPreprocessing (detection + high-pass + beat windows + spectrograms) vs XQRS detection alone:")
    print(f"  ours: {t_ours:8.2f} s   Se {se_o:.3f}%  +P {pp_o:.3f}%")
    print(f"  xqrs: {t_xqrs:8.2f} s   Se {se_x:.3f}%  +P {pp_x:.3f}%")
    better = se_o >= se_x and pp_o >= pp_x
    print(f"  ratio xqrs / ours: {ratio:.1f}x  -> goal >= 10x {'MET' if ratio >= 10 else 'NOT MET'}; "
          f"Se and +P {'equal or better' if better else 'NOT both equal or better'}")

    # -- 2. batched spectrograms vs a per-beat scipy.signal.stft loop
    beats = np.concatenate(all_beats)
    loop_beats = beats[:args.loop_beats] if args.loop_beats else beats
    kw = dict(nperseg=args.nperseg, noverlap=args.noverlap)
    print(f"\nSpectrograms of {len(loop_beats)} beats ({args.length} samples, nperseg {args.nperseg}, "
          f"noverlap {args.noverlap}):")
    t_loop, ref = _time(lambda: spectrogram_loop(loop_beats, fs, **kw))
    t_cpu, got = _time(lambda: spectrograms(loop_beats, fs, **kw), repeat=3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    print(f"  per-beat scipy.signal.stft loop: {t_loop:8.3f} s")
    print(f"  batched, CPU (scipy):            {t_cpu:8.3f} s   ratio {t_loop / t_cpu:.1f}x (allclose: yes)")
    if torch.cuda.is_available():
        spectrograms(loop_beats[:4096], fs, device="cuda", **kw)  # warm-up: CUDA context, cuFFT plans
        torch.cuda.synchronize()
        t_gpu, got = _time(lambda: spectrograms(loop_beats, fs, device="cuda", batch_size=65536, **kw), repeat=3)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
        r = t_loop / t_gpu
        print(f"  batched, GPU ({torch.cuda.get_device_name()}): {t_gpu:8.3f} s   ratio {r:.1f}x (allclose: yes) "
              f"-> goal >= 50x {'MET' if r >= 50 else 'NOT MET'} (includes the copy to and from the GPU)")
    else:
        print("  batched, GPU: no CUDA device here, not measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
