"""The import set, pinned: `import cardio`, `import cardio_stats` and `cardio --help` load no torch, matplotlib, pandas
or scikit-learn (each costs tenths of a second to seconds; a user meets it in every `python -c`, script and notebook
cell), and importing cardio sets OpenMP's passive wait policy unless the user chose one."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import cardio

HEAVY = ("torch", "matplotlib", "pandas", "sklearn", "scipy", "statsmodels")


def _loaded(code: str, env: dict | None = None) -> dict:
    probe = (f"import sys, json, os\n{code}\n"
             f"print(json.dumps({{'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})),"
             f" 'env': {{k: os.environ.get(k) for k in ('OMP_WAIT_POLICY', 'OMP_NUM_THREADS')}}}}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=env or {k: v for k, v in os.environ.items() if not k.startswith("OMP_")})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", ["import cardio", "import cardio_stats",
                                  "from cardio import hookimpl\nimport cardio_stats as stats",
                                  "import cardio_stats as s; s.__all__"])
def test_importing_cardio_and_its_stats_loads_nothing_heavy(code):
    assert _loaded(code)["heavy"] == []


def test_cardio_help_loads_nothing_heavy():
    got = _loaded("sys.argv = ['cardio', '--help']\nfrom cardio.cli import main\ntry:\n    main()\n"
                  "except SystemExit:\n    pass")
    assert got["heavy"] == [], got


def test_a_stats_function_brings_only_what_it_needs():
    got = _loaded("from cardio_stats import bootstrap_ci, auc")["heavy"]
    assert "scipy" in got and not set(got) & {"torch", "matplotlib", "sklearn", "statsmodels"}, got


def test_the_lazy_names_are_the_functions_even_after_their_submodule_loads():
    got = subprocess.run([sys.executable, "-c", (
        "import cardio_stats as s, cardio_stats.agreement, cardio_stats.calibration, cardio\n"
        "from cardio_stats import agreement, calibration\n"
        "assert callable(agreement) and callable(calibration) and s.agreement is agreement\n"
        "missing = [n for n in s.__all__ if getattr(s, n, None) is None]\n"
        "missing += [n for n in cardio.__all__ if getattr(cardio, n, None) is None]\n"
        "assert not missing, missing\n")], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr


def test_importing_cardio_sets_the_passive_wait_policy_unless_the_user_chose_one():
    env = _loaded("import cardio")["env"]
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and int(env["OMP_NUM_THREADS"]) == cardio.allotted_cpus()
    mine = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    assert _loaded("import cardio", env=mine)["env"] == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}


def test_the_default_bootstrap_ci_call_loads_nothing_heavy():
    # the percentile interval of records: NumPy alone (BCa brings scipy.special, patients pandas.factorize)
    got = _loaded("import numpy as np\nfrom cardio_stats import bootstrap_ci\n"
                  "bootstrap_ci(np.r_[0, 1, 0, 1, 1, 0, 0, 1], np.r_[.1, .9, .3, .6, .8, .2, .5, .5], n_resamples=50)")
    assert got["heavy"] == [], got
