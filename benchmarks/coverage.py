"""Coverage of every interval kind a report prints, by simulation through cardio's own code.

Usage: python benchmarks/coverage.py [--kinds NAME ...] [--sizes 100 300] [--settings null signal] [--sets 2000]
                                     [--seed 0] [--markdown] [--smoke]
       python benchmarks/coverage.py --grid regression [--sets 2000] [--seed 0] [--rows START ...]
                                     (a module's kinds, and its BEFORE and CANDIDATES, one row each, or those whose
                                     name starts as --rows: misses (below / above) % · width ÷ oracle · power % per
                                     size and setting, and the sets whose interval left out its estimate or that
                                     printed none)

Every module of benchmarks/coverage_kinds registers its kinds (`@kind(name)`): a kind simulates data sets of a size
under "null" (no effect) and "signal" (a planted one; the headline AUC and ΔAUC kinds also "strong" and
"separating", classes so far apart that many folds separate them: `--settings strong separating`; the one-model
binary kinds also "calibrated-strong" and "calibrated-separating", the same data sets scored by a calibrated model;
the regression kinds and the Brier score "noisy-null" and "noisy-signal", fitted by a network's kind of fit), runs
each through cardio's function for that interval, and returns every set's estimate and interval with the truth the
interval states it covers (docs/statistics.md). Printed per kind, size and setting: the sets, the misses of the 95%
interval below the truth (the interval lies wholly under it), above it and in all (2.5% a tail and 5% in all is what
a 95% interval promises), its mean width against the oracle width (2 x 1.96 x the SD of the estimate across the data
sets), the power (the share whose interval excludes the no-effect value: under null, the false-positive rate) and
the seconds cardio's calls took. `--markdown` prints the table docs/statistics.md includes. A kind's third column
names the interval it measured (the method cardio named): run on cardio's code before issue 53 (`git stash`/another
checkout, the same command), the same kinds give the "before" table.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import time

import coverage_kinds
from coverage_kinds import KINDS, SETTINGS, Draws, fmt, holds, summarise

GOAL_MISS = 0.06  # issue 53: every interval a report prints misses at most 6.0%, each tail at most 3.5%


def load_kinds() -> None:
    """Import every module of the coverage_kinds package, so that each registers its kinds."""
    for mod in pkgutil.iter_modules(coverage_kinds.__path__):
        importlib.import_module(f"coverage_kinds.{mod.name}")


def _row(name: str, n: int, setting: str, s: dict[str, float], d: Draws, markdown: bool) -> str:
    method = d.notes[0] if d.notes else ""
    cells = [name, method, str(n), setting, f"{s['sets']:.0f}", f"{100 * s['miss_below']:.1f}",
             f"{100 * s['miss_above']:.1f}", f"{100 * s['miss']:.1f}", f"{s['width_ratio']:.2f}",
             "–" if s["power"] != s["power"] else f"{100 * s['power']:.1f}", f"{s['seconds']:.1f}"]
    return "| " + " | ".join(cells) + " |" if markdown else "  ".join(f"{c:>8}" for c in cells)


HEADER = ["kind", "interval, or a note", "patients", "setting", "sets", "misses below %", "misses above %", "misses %",
          "width ÷ oracle", "power %", "seconds"]


def grid(module: str, sizes: list[int], settings: list[str], n_sets: int, seed: int,
         rows: list[str] | None = None) -> None:
    """The kinds `coverage_kinds.<module>` registers, then its BEFORE (what a report printed before) and CANDIDATES
    (measured, not chosen), as docs/statistics.md's grids: one row a kind, one cell a size and setting."""
    mod = importlib.import_module(f"coverage_kinds.{module}")
    tables = {"KINDS (what a report prints)": {k: f for k, f in KINDS.items() if f.__module__ == mod.__name__},
              "BEFORE": getattr(mod, "BEFORE", {}), "CANDIDATES": getattr(mod, "CANDIDATES", {})}
    cells = [(n, s) for n in sizes for s in settings]
    settings_of = getattr(mod, "SETTINGS_OF", {})  # the settings a BEFORE or CANDIDATES row simulates, where fewer
    for title, table in tables.items():
        if not table:
            continue
        print(f"\n{title}: {n_sets} data sets a cell, seed {seed}\n| kind | "
              + " | ".join(f"{n}, {s}" for n, s in cells) + " |\n|---|" + "---|" * len(cells))
        for name, run in table.items():
            if rows and not any(name.startswith(r) for r in rows):
                continue
            row = []
            for n, setting in cells:
                if setting not in SETTINGS.get(name, settings_of.get(name, (setting,))):  # simulated in fewer
                    row.append("–")
                    continue
                d = run(n, setting, n_sets, seed)
                r = summarise(d)
                alone = [note for note in d.notes if "without an interval" in note]
                outside = [note.split()[0] for note in d.notes if "leaves out its own estimate" in note]
                # sets without an interval are not in the misses: a cell says how many it left out
                without = f" · {r['no_interval']:.0f} without" if alone and r["sets"] else ""
                row.append(f"no interval ({alone[0].split(': ', 1)[1]})" if alone and r["sets"] == 0
                           else fmt(r).removesuffix(" · nan") + "".join(f" · {k} outside" for k in outside)
                           + without)
            print(f"| {name} | " + " | ".join(row) + " |", flush=True)


def main() -> None:
    load_kinds()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), help=f"of {list(KINDS)}")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--settings", nargs="+", default=["null", "signal"],
                    choices=list(dict.fromkeys(s for kind in SETTINGS.values() for s in kind)))
    ap.add_argument("--sets", type=int, default=2000, help="data sets per kind, size and setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown (docs/statistics.md)")
    ap.add_argument("--smoke", action="store_true", help="4 data sets of 60 patients per kind: checks it runs")
    ap.add_argument("--grid", metavar="MODULE", help="print coverage_kinds.MODULE's kinds, BEFORE and CANDIDATES as "
                                                     "grids (e.g. regression, other)")
    ap.add_argument("--rows", nargs="+", metavar="START", help="with --grid: only the rows whose name starts so")
    args = ap.parse_args()
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown kind(s) {unknown}; known: {list(KINDS)}")
    if args.smoke:
        args.sets, args.sizes = 4, [60]
    t0 = time.perf_counter()
    if args.grid:
        grid(args.grid, args.sizes, args.settings, args.sets, args.seed, args.rows)
        print(f"({time.perf_counter() - t0:.0f} s)")
        return
    print(f"{args.sets} data sets per kind, size and setting; seed {args.seed}; 95% intervals")
    print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER) if args.markdown else
          "  ".join(f"{c:>8}" for c in HEADER))
    over = []
    for name in args.kinds:
        for n in args.sizes:
            for setting in (s for s in args.settings if s in SETTINGS[name]):
                d = KINDS[name](n, setting, args.sets, args.seed)
                r = summarise(d)
                print(_row(name, n, setting, r, d, args.markdown), flush=True)
                if r["sets"] and not holds(r, GOAL_MISS):
                    over.append(f"{name}, {n}, {setting}: {fmt(r)}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    # the goal, and what chance alone moves a cell by at this many sets (a 5% rate's 95% band)
    band = 100 * 1.96 * (0.05 * 0.95 / args.sets) ** 0.5
    print(f"Over the goal (misses > {100 * GOAL_MISS:.1f}% or a tail > 3.5%; a 5% rate is measured within "
          f"±{band:.1f} points at {args.sets} sets): " + ("none" if not over else "\n  " + "\n  ".join(over)))


if __name__ == "__main__":
    main()
