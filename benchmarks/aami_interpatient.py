"""ecg_transfer pretraining on MIT-BIH, inter-patient: train on DS1, test on all of DS2 (de Chazal 2004).

Measures the pretraining task of the ecg_transfer plugin exactly as a run does it (same beat
windows, spectrograms, ResNet, class-balanced sampling, the core's training loop) and prints
accuracy and per-class sensitivity (Se), each with a 95% CI that resamples DS2 records (beats of
one record are not independent), positive predictivity (+P), macro F1, and whether the goal
(accuracy >= 0.90 and V sensitivity >= 0.85) is met, with the machine it ran on. Every model
choice (side features, prior-correction strength) is made on DS1; DS2 is only predicted.

    python benchmarks/aami_interpatient.py                  # CPU size: ResNet-18, DS1 subset, all of DS2
    python benchmarks/aami_interpatient.py --profile paper  # all of DS1, ResNet-50, 30 epochs: for a GPU
    python benchmarks/aami_interpatient.py --set pretrain.epochs=8 --set pretrain.max_beats_per_class=3000
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from cardio import engine, write_text_atomic
from cardio.testing import context, plugin_config
from cardio_ecg_transfer import pretrain

#: The CPU size: every S, V and F beat of DS1 with at most 5,000 N beats, and all of DS2.
CPU_SETS = ("pretrain.max_beats_per_class=5000", "pretrain.max_eval_beats=null", "pretrain.epochs=6",
            "pretrain.patience=3", "pretrain.batch_size=64")
GOAL_ACCURACY, GOAL_V_SE = 0.90, 0.85


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"CPU {cpu}, {torch.get_num_threads()} torch thread(s)"
    if device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=("cpu", "paper"), default="cpu")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="config override, e.g. pretrain.epochs=8")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="folder for checkpoints, results and the confusion figure")
    args = ap.parse_args(argv)

    sets = (("profile=paper",) if args.profile == "paper" else CPU_SETS) + tuple(args.sets) + (f"device={args.device}",)
    config = plugin_config("ecg_transfer", sets)
    out = Path(args.out or tempfile.mkdtemp(prefix="aami_interpatient-"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cache = config["cache_dir"] or os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio")
    ctx = context(out, config, device=config["device"], seed=int(config["seed"]), cache_dir=cache)
    device = ctx.device
    engine.seed_everything(ctx.seed)
    pt = config["pretrain"]
    print(f"machine: {machine(device)}")
    print(f"config: arch={pt['arch']} side_features={pt['side_features']} epochs={pt['epochs']} "
          f"batch_size={pt['batch_size']} lr={pt['lr']} "
          f"max_beats_per_class={pt['max_beats_per_class']} max_eval_beats={pt['max_eval_beats']} "
          f"balance_power={pt['balance_power']} prior_correction={pt['prior_correction']} "
          f"prior_strength={pt['prior_strength']} "
          f"val_fraction={pt['val_fraction']} patience={pt['patience']}; beats: length "
          f"{config['preprocess']['beat_length']}, {config['preprocess']['rr_factor']} RR, high-pass "
          f"{config['preprocess']['highpass_hz']} Hz; STFT nperseg {config['spectrogram']['nperseg']}, "
          f"noverlap {config['spectrogram']['noverlap']}")
    t0 = time.perf_counter()
    pretrained = pretrain.pretrain(config, ctx)
    seconds = time.perf_counter() - t0
    r = pretrained.results
    print(f"DS1 training beats {r['train_counts']} (of {sum(r['train_counts'].values())}); "
          f"DS2 test beats {r['test_counts']} (n={r['n']}); epochs run {r['epochs_run']}, best {r['best_epoch']}")
    level = r["ci"]["estimates"]["accuracy"]["level"]
    print(f"{'class':>5} {'n':>7} {'Se':>7} {f'{level:.0%} CI, records resampled':>26} {'+P':>7} {'F1':>7}")
    for c, v in r["per_class"].items():
        fmt = lambda x: "    –  " if x is None else f"{x:7.3f}"  # noqa: E731
        print(f"{c:>5} {v['support']:7d} {fmt(v['se'])} {pretrain.ci_text(r, f'se_{c}'):>26} {fmt(v['ppv'])} "
              f"{fmt(v['f1'])}")
    v_se = r["per_class"]["V"]["se"] or 0.0
    print(f"accuracy {r['accuracy']:.4f} {pretrain.ci_text(r, 'accuracy')}  macro F1 {r['macro_f1']:.4f} "
          f"(classes {','.join(r['macro_f1_classes'])}; "
          f"with every class present {r['macro_f1_present']:.4f}; prior strength {r.get('prior_strength')})"
          f"  V Se {v_se:.4f}  wall {seconds:.0f} s")
    ok = r["accuracy"] >= GOAL_ACCURACY and v_se >= GOAL_V_SE
    print(f"goal accuracy >= {GOAL_ACCURACY} and V Se >= {GOAL_V_SE}: {'met' if ok else 'NOT met'}")
    print(f"results: {out / 'checkpoints' / pretrain.RESULTS_NAME}; figure: {pretrained.figure}")
    write_text_atomic(out / "summary.json", json.dumps({"machine": machine(device), "sets": list(sets),
                                                        "seconds": seconds, "goal_met": ok}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
