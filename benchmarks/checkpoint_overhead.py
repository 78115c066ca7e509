"""What checkpoints cost a run: each plugin's short-epoch config with a checkpoint after every epoch (the old default,
train.checkpoint_every_s=0) beside checkpoints by time (the default, at most one a minute, and always one at the end),
in one run. The time inside the engine's checkpoint writes is summed directly (engine.save_atomic timed in process),
so the figure does not depend on the machine's load the way two wall times would.

    .venv/bin/python benchmarks/checkpoint_overhead.py            # perfusion, mmode and spect short configs
    .venv/bin/python benchmarks/checkpoint_overhead.py --smoke    # spect, tiny
    .venv/bin/python benchmarks/checkpoint_overhead.py --plugins spect_polar

Overhead = checkpoint seconds / (run wall seconds - checkpoint seconds). Goal (issue 39): <= 5% per plugin.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cardio import engine
from cardio_testing.harness import run_plugin

# Short-epoch configs: many small epochs, where a checkpoint per epoch weighs most.
CONFIGS = {
    "perfusion_polar": ["profile=fast", "perfusion_polar.step1.epochs=10", "perfusion_polar.step2.epochs=10",
                        "cv.folds=2", "explain=false", "final_model=false", "report.figures=false",
                        "stats.n_resamples=100"],
    "mmode_septal_flash": ["mmode_septal_flash.synthetic.n_patients=60", "mmode_septal_flash.synthetic.n_sf=24",
                           "mmode_septal_flash.synthetic.size=64", "mmode_septal_flash.mmode.offsets=2",
                           "mmode_septal_flash.model.input_size=64", "mmode_septal_flash.train.epochs=6",
                           "explain=false", "final_model=false", "report.figures=false", "stats.n_resamples=100"],
    "spect_polar": ["spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=20",
                    "spect_polar.synthetic.size=40", "spect_polar.autoencoder.iterations=200", "cv.folds=3",
                    "explain=false", "final_model=false", "report.figures=false", "stats.n_resamples=100"],
}
# the smoke checks the script runs (tests/test_benchmarks_smoke.py): one plugin's two runs, the smallest
SMOKE = {"spect_polar": ["spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=16",
                         "spect_polar.synthetic.size=32", "spect_polar.autoencoder.iterations=10", "cv.folds=2",
                         "explain=false", "final_model=false", "report.figures=false", "stats.n_resamples=100"]}


def timed_run(plugin: str, sets: list[str], out: Path) -> tuple[float, float, int]:
    """(wall seconds, seconds inside the engine's checkpoint writes, writes) of one in-process run."""
    spent, writes = [0.0], [0]
    real = engine.save_atomic

    def save(obj, path):
        start = time.perf_counter()
        real(obj, path)
        spent[0] += time.perf_counter() - start
        writes[0] += 1

    engine.save_atomic = save
    try:
        start = time.perf_counter()
        run_plugin(plugin, out, sets=sets, cache_dir=out.parent / "cache")
        return time.perf_counter() - start, spent[0], writes[0]
    finally:
        engine.save_atomic = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default=None, help="comma-separated plugins (default: all configured)")
    parser.add_argument("--smoke", action="store_true", help="a tiny spect config")
    args = parser.parse_args()
    configs = SMOKE if args.smoke else CONFIGS
    plugins = args.plugins.split(",") if args.plugins else list(configs)
    print(f"{'plugin':20} {'checkpoints':16} {'wall s':>8} {'ckpt s':>8} {'writes':>7} {'overhead':>9}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for plugin in plugins:
            for label, every in (("every epoch", "0"), ("by time (60 s)", "60")):
                out = Path(tmp) / f"{plugin}-{every}"
                wall, ckpt, n = timed_run(plugin, [*configs[plugin], f"train.checkpoint_every_s={every}"], out)
                pct = 100 * ckpt / max(wall - ckpt, 1e-9)
                print(f"{plugin:20} {label:16} {wall:8.1f} {ckpt:8.2f} {n:7d} {pct:8.2f}%", flush=True)


if __name__ == "__main__":
    main()
