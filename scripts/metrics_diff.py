"""Compare two runs' metrics.json estimate by estimate: what a refactor removed, added or changed.

Usage: python scripts/metrics_diff.py BEFORE_RUN AFTER_RUN
An estimate's identity is its section, model, task, metric, method, fold, repeat and subgroup (and, for a
plugin's own rows, the keys of its `extra` that name things); its value is estimate, ci_low, ci_high and n.
Exit code 0 when nothing changed but removals and additions, 1 when a shared estimate's value changed. The last
line is the largest numeric difference over every shared estimate and test (0 when all are identical).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ("section", "model", "task", "metric", "method", "fold", "repeat", "subgroup")
VALUES = ("estimate", "ci_low", "ci_high", "n")


def _identity(e: dict) -> tuple:
    named = tuple(sorted((k, str(v)) for k, v in (e.get("extra") or {}).items() if isinstance(v, str)))
    return (*(str(e.get(k)) for k in KEYS), named)


def _table(run: Path, field: str) -> dict[tuple, dict]:
    rows = json.loads((run / "metrics.json").read_text())[field]
    out: dict[tuple, dict] = {}
    for r in rows:
        key = _identity(r)
        while key in out:  # rows of one identity keep their order
            key = (*key, "#")
        out[key] = r
    return out


def diff(before: Path, after: Path) -> tuple[list[str], int, float]:
    """(the lines to print, how many shared rows changed, the largest numeric difference between them)."""
    lines, total, largest = [], 0, 0.0
    for field in ("estimates", "tests"):
        changed = 0
        a, b = _table(before, field), _table(after, field)
        for key in a.keys() - b.keys():
            lines.append(f"removed {field[:-1]}: {_show(key)} = {_value(a[key])}")
        for key in b.keys() - a.keys():
            lines.append(f"added {field[:-1]}: {_show(key)} = {_value(b[key])}")
        for key in a.keys() & b.keys():
            if _value(a[key]) != _value(b[key]):
                changed += 1
                largest = max(largest, _largest(a[key], b[key]))
                lines.append(f"CHANGED {field[:-1]}: {_show(key)}: {_value(a[key])} -> {_value(b[key])}")
        lines.append(f"{field}: {len(a.keys() & b.keys())} shared ({len(a.keys() & b.keys()) - changed} identical), "
                     f"{len(a.keys() - b.keys())} removed, {len(b.keys() - a.keys())} added")
        total += changed
    return sorted(lines, key=lambda s: (not s.startswith("CHANGED"), s)), total, largest


def estimate_deltas(before: Path, after: Path, metric: str) -> list[float]:
    """|after - before| of every shared estimate of one metric (e.g. "auc") whose estimate is a number in both."""
    a, b = _table(before, "estimates"), _table(after, "estimates")
    pairs = [(a[k].get("estimate"), b[k].get("estimate")) for k in a.keys() & b.keys() if a[k].get("metric") == metric]
    return [abs(x - y) for x, y in pairs if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x == x
            and y == y]


def _largest(a: dict, b: dict) -> float:
    """The largest |a - b| over a row's numeric values; inf when one is missing or not a number in the other."""
    out = 0.0
    for k in (*VALUES, "p_value", "statistic"):
        x, y = a.get(k), b.get(k)
        if x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y):  # equal, or both NaN
            continue
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        out = max(out, abs(x - y) if numbers else float("inf"))  # type: ignore[operator]
    return out


def _show(key: tuple) -> str:
    parts = [f"{k}={v}" for k, v in zip(KEYS, key) if v not in ("None", "0") or k == "repeat"]
    return ", ".join(parts + [f"{k}={v}" for k, v in (key[len(KEYS)] if len(key) > len(KEYS) else ())])


def _value(e: dict) -> str:
    v = {k: e.get(k) for k in (*VALUES, "p_value", "statistic") if k in e}
    return json.dumps(v, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, n_changed, largest = diff(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(out))
    print(f"largest difference: {largest:.3g}")
    sys.exit(1 if n_changed else 0)
