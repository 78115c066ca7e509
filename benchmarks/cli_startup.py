"""How long the everyday `cardio` commands take to start, against `python -c pass` (one run, side by side).

    python benchmarks/cli_startup.py [--repeats 5]

Goals: `cardio --help`, `cardio plugins`, `cardio config` and `cardio data list` each under 2 s on
a warm machine (researcher's workflow); `python -c "import cardio"` and `python -c "import cardio_stats"`
at most 0.3 s (issue 39: they load no torch, matplotlib, pandas or scikit-learn). Printed: the median
wall time of each command and its ratio to the bare interpreter's start.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import cardio'": [sys.executable, "-c", "import cardio"],
    "python -c 'import cardio_stats'": [sys.executable, "-c", "import cardio_stats"],
    "cardio --help": [sys.executable, "-m", "cardio.cli", "--help"],
    "cardio plugins": [sys.executable, "-m", "cardio.cli", "plugins"],
    "cardio config --plugin ecg_transfer": [sys.executable, "-m", "cardio.cli", "config", "--plugin", "ecg_transfer"],
    "cardio data list": [sys.executable, "-m", "cardio.cli", "data", "list"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    for cmd in COMMANDS.values() if not args.smoke else ():  # warm the file cache once (smoke: the one pass is all)
        timed(cmd)
    medians = {name: statistics.median(timed(cmd) for _ in range(args.repeats)) for name, cmd in COMMANDS.items()}
    base = medians["python -c pass"]
    print(f"{'command':<40} {'median s':>9} {'x python':>9}  goal")
    for name, t in medians.items():
        goal = 0.3 if "import" in name else 2.0
        verdict = "" if name == "python -c pass" else f"< {goal:g} s: " + ("met" if t < goal else "MISSED")
        print(f"{name:<40} {t:>9.2f} {t / base:>9.1f}  {verdict}")


if __name__ == "__main__":
    main()
