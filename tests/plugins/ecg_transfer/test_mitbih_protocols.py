"""Issue 56: benchmarks/mitbih_protocols.py prints both MIT-BIH protocols beside the published figures, labelled,
and makes the paper profile's DS2 look at most once."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio import CardioError
from cardio_ecg_transfer.mitdb import mitdb_dir
from cardio_testing.harness import load_script, plugin_config

REPO = Path(__file__).resolve().parents[3]
bench = load_script(REPO / "benchmarks" / "mitbih_protocols.py")


def test_the_smoke_table_has_both_protocols_labelled_beside_the_published_rows(tmp_path):
    """The benchmark's smoke mode, started as a user starts it (tests/test_benchmarks_smoke.py's RUN_ELSEWHERE: this
    test is its one smoke run), read for its table."""
    if not (mitdb_dir() / "101.dat").is_file():
        pytest.skip("MIT-BIH is not in $CARDIO_DATA/mitdb")
    env = {**os.environ, "CARDIO_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "mitbih_protocols.py"), "--smoke", "--out",
                          str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    table = [line for line in out.splitlines() if line.startswith("| ")]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in table[1:]}
    chazal = ("inter-patient", "published: de Chazal et al. 2004 (IEEE TBME 51(7):1196-1206), LD, RR + morphology")
    assert rows[chazal].endswith("| 86.20 [b] | – | 75.90 [a] | 38.50 [a] | 77.70 [a] | 81.90 [a] |")
    mondejar = ("inter-patient", "published: Mondejar-Guerra et al. 2019 (BSPC 47:41-48), SVM ensemble")
    assert rows[mondejar].endswith("| 94.50 [b] | – | 78.00 [a] | 49.50 [a] | 94.70 [a] | – |")  # V +P: no source
    for key in "abcd":  # every keyed figure's source is printed under the table
        assert f"\n[{key}] " in out
    intra = {k[1]: v for k, v in rows.items() if k[0] == "intra-patient"}
    assert "| 97.45 [c] |" in intra["published: Hua et al. 2020 [40], 1-D CNN (cited by He et al., section 4)"]
    assert "| 99.00 [d] |" in intra["published: Huang et al. 2019 [24], STFT spectrogram 2-D CNN (cited by He et al., "
                               "section 4)"]
    ours = [k for k in rows if k[1].startswith("this run")]
    assert [k[0] for k in ours] == ["inter-patient", "intra-patient"]
    assert all("(smoke: not a result)" in k[1] for k in ours)
    assert any(k[1].startswith("this project, DS2 looks 8, 9, 10") for k in rows)  # the ledger's looks, labelled


def test_the_paper_profile_looks_at_ds2_at_most_once(tmp_path, monkeypatch):
    ledger = tmp_path / "aami_ds2.csv"
    config = plugin_config("ecg_transfer", ["profile=paper", "device=cpu"])
    with ledger.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=bench.AAMI.LEDGER_COLUMNS)
        w.writeheader()
        w.writerow({"look": 1, "config_hash": bench.AAMI.config_hash(config, "validated"), "status": "ledgered"})
    monkeypatch.setattr(bench.AAMI, "LEDGER", ledger)
    with pytest.raises(CardioError, match="already holds the paper profile's DS2 look"):
        bench.main(["--look", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        bench.main(["--look", "--set", "ecg_transfer.pretrain.epochs=1"])
    # a look split over processes (--seeds): each seed once
    with ledger.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=bench.AAMI.LEDGER_COLUMNS)
        w.writeheader()
        w.writerow({"look": 1, "config_hash": bench.AAMI.config_hash(config, "validated"), "seed": 0,
                    "status": "ledgered"})
    with pytest.raises(CardioError, match=r"DS2 look of seed\(s\) \[0\]"):
        bench.main(["--look", "--seeds", "0,1,2", "--out", str(tmp_path / "out")])
