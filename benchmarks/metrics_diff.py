"""Two runs' metrics.json compared value by value: is a refactor's run the same as the run before it?

    python benchmarks/metrics_diff.py BEFORE/metrics.json AFTER/metrics.json [--tol 0]

Every leaf of the two files (each estimate, interval bound, p-value, test, count) is compared at its path; the
run's elapsed time is left out (it is the machine's, not the method's). Printed: how many leaves are identical,
how many differ (the first ten named) and the largest numeric difference, and how many leaves only one file has.
Exit 1 when any leaf differs by more than --tol or is in one file only.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IGNORED = {"elapsed_s"}  # wall time: differs between any two runs


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every leaf: dict keys joined by '.', list items as [i]."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in IGNORED:
                yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def difference(a: Any, b: Any) -> float:
    """0 for equal leaves (NaN equals NaN), |a - b| for two numbers, inf for any other mismatch."""
    if a == b:
        return 0.0
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers and math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) if numbers and math.isfinite(a - b) else math.inf


def compare(before: dict, after: dict, tol: float = 0.0) -> tuple[int, list[tuple[str, Any, Any, float]], list[str]]:
    """(identical count, [(path, before, after, difference)] over tol, paths in one file only)."""
    a, b = dict(leaves(before)), dict(leaves(after))
    same, differ = 0, []
    for path in a.keys() & b.keys():
        d = difference(a[path], b[path])
        if d <= tol:
            same += 1
        else:
            differ.append((path, a[path], b[path], d))
    return same, sorted(differ, key=lambda r: -r[3]), sorted(a.keys() ^ b.keys())


def estimates(before: dict, after: dict, differ: list, alone: list[str]) -> str:
    """'k of n identical': the estimates (rows of `estimates`) with every leaf the same in both files."""
    n = max(len(before.get("estimates", [])), len(after.get("estimates", [])))
    bad = {p.split("]")[0] + "]" for p in [*(r[0] for r in differ), *alone] if p.startswith("estimates[")}
    return f"{n - len(bad)} of {n} identical"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tol", type=float, default=0.0, help="largest difference still counted identical")
    args = parser.parse_args()
    before, after = json.loads(args.before.read_text()), json.loads(args.after.read_text())
    same, differ, alone = compare(before, after, args.tol)
    largest = max((d for *_, d in differ), default=0.0)
    print(f"{args.before} vs {args.after}: {same} identical, {len(differ)} different (largest difference "
          f"{largest:.3g}), {len(alone)} in one file only")
    print(f"  estimates: {estimates(before, after, differ, alone)}")
    for path, a, b, _ in differ[:10]:
        print(f"  {path}: {a!r} -> {b!r}")
    for path in alone[:10]:
        print(f"  only in one: {path}")
    return 1 if differ or alone else 0


if __name__ == "__main__":
    sys.exit(main())
