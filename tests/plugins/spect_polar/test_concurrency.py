"""Two processes write the same synthetic SPECT cohort into one cache at once: no crash, one whole cohort.

Before the core's cache, fixed `.tmp` names in the DICOM writer raced (FileNotFoundError at n = 120).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("cardio_spect_polar")

WORKER = """
import hashlib, sys
from pathlib import Path
from cardio import Cache
from cardio_spect_polar.cohort import write_default_cohort
folder = write_default_cohort(Cache(sys.argv[1]), n_patients=24, seed=4, gates=8, progress=lambda it, **kw: it,
                              slices=16, size=32)
digest = hashlib.sha256()
for p in sorted(folder.rglob("*")):
    if p.is_file():
        digest.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
print(folder, digest.hexdigest())
"""


def test_two_processes_build_one_cohort(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    seen = set()
    for _ in range(2):  # an empty cache, then the same one again
        procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
        seen |= {out.strip() for out, _ in outs}
    assert len(seen) == 1  # one folder, identical content, every time
    assert not [p for p in (tmp_path / "cache").rglob("*") if ".tmp" in p.name]
