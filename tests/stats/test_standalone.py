"""The statistics service stands alone (issue 54): cardio_stats, every module of it and every public name, loads no
torch, no pluggy and no cardio package, so `pip install services/stats` is a whole statistics library. Runs in the
full venv and in CI's stats-only venv (.ci/run), where the kernel is not installed at all."""
from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "torchvision", "pluggy", "cardio")

# every submodule, then every public name (the lazy package loads each on first use); figures only where matplotlib
# is installed (the service's `figures` extra)
PROBE = f"""
import importlib, importlib.util, json, pkgutil, sys
import cardio_stats
mods = [m.name for m in pkgutil.iter_modules(cardio_stats.__path__)]
if importlib.util.find_spec("matplotlib") is None:
    mods.remove("figures")
for m in mods:
    importlib.import_module(f"cardio_stats.{{m}}")
names = [n for n in cardio_stats.__all__ if "figures" in mods or cardio_stats._SUBMODULE[n] != "figures"]
missing = [n for n in names if getattr(cardio_stats, n, None) is None]
print(json.dumps({{"modules": len(mods), "missing": missing,
                  "forbidden": sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))}}))
"""


def test_cardio_stats_imports_no_torch_no_pluggy_and_no_cardio():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["forbidden"] == [] and got["missing"] == [], got
    assert got["modules"] >= 20, got  # the probe really walked the package
