"""What the optimizer step costs a run: each plugin's short config with torch's per-tensor step (the old default,
train.optimizer_args={fused: false}) beside the fused step (the default where the class has one), in one run. The
seconds inside optimizer.step() are summed directly (torch's global step hooks), so the step figure does not depend
on the machine's load the way two wall times would; wall times are printed beside it.

    .venv/bin/python benchmarks/optimizer_step.py            # every plugin's short config
    .venv/bin/python benchmarks/optimizer_step.py --smoke    # spect, tiny
    .venv/bin/python benchmarks/optimizer_step.py --default --plugins perfusion_polar   # the default run
    .venv/bin/python benchmarks/optimizer_step.py --plugins perfusion_polar,spect_polar

The fused step rounds differently, and training carries a rounding difference on, so the two runs' metrics are
compared (scripts/metrics_diff.py): how many rows differ, the largest AUC difference, and each headline AUC's shift
against its interval's half-width.

Measured (`--default`, 2 cores, torch 2.14.1, abe42c6): ms per step per-tensor -> fused, and the seconds saved of
the default run's wall: perfusion 16.6 -> 4.6 (5.8 s of 49.1 s), mmode 14.7 -> 6.4 (4.7 of 149.5), spect 1.73 ->
0.67 (6.4 of 40.4), ecg 11.3 -> 3.6 (5.0 of 96.9), echo 30.6 -> 6.8 (52.0 of 338.8). Models not trained by the
engine's optimizer (logistic, forests, SVMs) are unchanged; the networks' headline AUCs moved by 0-0.51 of their
interval's half-width (perfusion, spect and ecg; the largest, perfusion's resnet-polar/smoking, 0.585 -> 0.530).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from cardio_stats.formatting import headline_auc
from cardio_testing.harness import run_plugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import metrics_diff  # scripts/metrics_diff.py: two runs' metrics.json estimate by estimate
from checkpoint_overhead import CONFIGS as SHORT  # perfusion, mmode and spect: many small epochs
from checkpoint_overhead import SMOKE  # one tiny spect run (tests/test_benchmarks_smoke.py)

QUICK = ["explain=false", "final_model=false", "report.figures=false", "stats.n_resamples=100"]
CONFIGS = {
    **SHORT,
    "ecg_transfer": ["ecg_transfer.synthetic.n_patients=40", "ecg_transfer.preprocess.max_beats_per_record=3",
                     "ecg_transfer.pretrain.records=['101','106','108','109','112']",  # pretraining, on 5 records
                     "ecg_transfer.pretrain.max_beats_per_class=40", "ecg_transfer.pretrain.max_eval_beats=100",
                     "ecg_transfer.pretrain.epochs=3", "ecg_transfer.finetune.epochs=3",
                     "ecg_transfer.baselines.threshold_cv=2", "ecg_transfer.baselines.rf.n_estimators=10",
                     "cv.folds=2", *QUICK],
    "echo_cmr": ["echo_cmr.synthetic.n_patients=40", "echo_cmr.synthetic.n_frames=20", "echo_cmr.clip.size=32",
                 "echo_cmr.clip.frames=8", "echo_cmr.train.epochs=4", "train.val_fraction=0", "cv.folds=2",
                 *QUICK],
}
# fused first: a plugin's first run in the process also pays its lazy imports, so the wall times can only flatter
# the per-tensor step
STEPS = {"fused": [], "per-tensor": ["train.optimizer_args={fused: false}"]}


class StepClock:
    """Seconds inside every optimizer's step() while it is open, and how many steps."""

    def __enter__(self) -> StepClock:
        self.seconds, self.steps, self._start = 0.0, 0, 0.0
        self._hooks = [register_optimizer_step_pre_hook(self._pre), register_optimizer_step_post_hook(self._post)]
        return self

    def _pre(self, *_) -> None:
        self._start = time.perf_counter()

    def _post(self, *_) -> None:
        self.seconds += time.perf_counter() - self._start
        self.steps += 1

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()


def headline_shifts(before: Path, after: Path) -> list[str]:
    """Each model's and task's headline AUC (the performance table's) in both runs, and the shift against the
    interval's half-width: what a reader of the report would see move."""
    a, b = (json.loads((run / "metrics.json").read_text())["estimates"] for run in (before, after))
    pairs = sorted({(e.get("model"), e.get("task")) for e in a if e.get("metric") == "auc"}, key=str)
    out = []
    for model, task in pairs:
        x, y = headline_auc(a, model=model, task=task), headline_auc(b, model=model, task=task)
        if x and y and None not in (x["estimate"], y["estimate"], y["ci_low"], y["ci_high"]):
            half = (y["ci_high"] - y["ci_low"]) / 2
            out.append(f"{model}/{task}: {x['estimate']:.3f} -> {y['estimate']:.3f} [{y['ci_low']:.3f}, "
                       f"{y['ci_high']:.3f}], shift {abs(y['estimate'] - x['estimate']) / max(half, 1e-9):.2f} of "
                       f"the half-width")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default=None, help="comma-separated plugins (default: all configured)")
    parser.add_argument("--smoke", action="store_true", help="a tiny spect config")
    parser.add_argument("--default", action="store_true", help="each plugin's default run instead of its short config")
    args = parser.parse_args()
    configs = SMOKE if args.smoke else {p: [] for p in CONFIGS} if args.default else CONFIGS
    plugins = args.plugins.split(",") if args.plugins else list(configs)
    print(f"{'plugin':20} {'step':11} {'steps':>6} {'ms/step':>8} {'step s':>7} {'wall s':>7} {'step share':>10}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for plugin in plugins:
            seen = {}
            for label, sets in STEPS.items():
                out = Path(tmp) / f"{plugin}-{label}"
                # a cache of its own per run, so that both pay the same load and featurize
                with StepClock() as clock:
                    start = time.perf_counter()
                    run_plugin(plugin, out, sets=[*configs[plugin], *sets], cache_dir=Path(tmp) / f"cache-{label}")
                    wall = time.perf_counter() - start
                seen[label] = (clock.seconds, wall)
                ms = 1000 * clock.seconds / max(clock.steps, 1)
                print(f"{plugin:20} {label:11} {clock.steps:6d} {ms:8.2f} {clock.seconds:7.2f} {wall:7.1f} "
                      f"{100 * clock.seconds / wall:9.1f}%", flush=True)
            (old, old_wall), (new, new_wall) = seen["per-tensor"], seen["fused"]
            runs = Path(tmp) / f"{plugin}-per-tensor", Path(tmp) / f"{plugin}-fused"
            _, changed, _ = metrics_diff.diff(*runs)
            auc = metrics_diff.estimate_deltas(*runs, "auc")
            print(f"{plugin:20} fused step {old / max(new, 1e-9):.1f}x faster, {old - new:.1f} s of steps saved "
                  f"(wall {old_wall:.1f} -> {new_wall:.1f} s); {changed} metrics rows differ; "
                  f"AUC |diff| max {max(auc, default=0):.3f} over {len(auc)} AUCs (every fold and subgroup)",
                  flush=True)
            for row in headline_shifts(*runs):
                print(f"{'':20} headline {row}", flush=True)


if __name__ == "__main__":
    main()
