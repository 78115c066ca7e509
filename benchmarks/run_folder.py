"""What a run folder takes on disk, by part: each plugin's default run as `cardio run` makes it (fold models off,
the default), and with the fold ensemble on (`fold_models=true`, stored in float16) beside it. The sizes are the
run's own account (run.json `disk_bytes`, the same figures as the log's "run folder:" line). How far float16
moves a fold model's scores: tests/core/test_run_folder_size.py (a ResNet-18: under 1e-3).

    .venv/bin/python benchmarks/run_folder.py                       # every plugin's default run, twice each
    .venv/bin/python benchmarks/run_folder.py --plugins ecg_transfer
    .venv/bin/python benchmarks/run_folder.py --smoke               # spect, tiny (tests/test_benchmarks_smoke.py)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from cardio_testing.harness import run_plugin

PLUGINS = ["spect_polar", "perfusion_polar", "ecg_transfer", "mmode_septal_flash", "echo_cmr"]
SMOKE = ["spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32",
         "spect_polar.autoencoder.iterations=10", "cv.folds=2", "explain=false", "report.figures=false",
         "stats.n_resamples=100"]
PARTS = ("total", "model", "fold_models", "figures", "checkpoints")
# the fold ensemble rides in the final model's bundle, which echo_cmr keeps only when asked
RUNS = {"default": [], "fold models (float16)": ["final_model=true", "fold_models=true"]}


def sizes(plugin: str, sets: list[str], root: Path) -> list[dict]:
    rows: list[dict] = []
    for name, extra in RUNS.items():
        out = run_plugin(plugin, root / f"{plugin}-{len(rows)}", [*sets, *extra], cache_dir=root / "cache")
        disk = json.loads((out / "run.json").read_text())["disk_bytes"]
        rows.append({"plugin": plugin, "run": name, **{k: disk[k] / 1e6 for k in PARTS}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugins", default=",".join(PLUGINS))
    ap.add_argument("--smoke", action="store_true", help="one tiny spect_polar run pair")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    plugins, sets = (["spect_polar"], SMOKE) if args.smoke else (args.plugins.split(","), [])
    with tempfile.TemporaryDirectory(prefix="cardio-run-folder-") as tmp:
        root = args.out or Path(tmp)
        rows = [r for p in plugins for r in sizes(p, sets, root)]
    print("| plugin | run | folder MB | model bundle MB | fold models MB | figures MB | checkpoints MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['plugin']} | {r['run']} | " + " | ".join(f"{r[k]:.1f}" for k in PARTS) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
