"""External beat databases (svdb, incartdb): small records written with wfdb in each database's layout are put in
MIT-BIH's (two channels at 360 Hz, .atr labels), their symbols mapped to AAMI classes, and the external look of
benchmarks/aami_interpatient.py writes its ledger row (a tmp ledger, never the real one) and is refused a second
time."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np
import wfdb

from cardio import CardioError
from cardio_ecg_transfer import aami, beat_set, databases, plugin
from cardio_testing.harness import cpu_context, load_script, plugin_config

REPO = Path(__file__).resolve().parents[3]

bench = load_script(REPO / "benchmarks" / "aami_interpatient.py")  # the protocol and its ledgers
INCART_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
#: Beat labels of a small record: MIT-BIH's symbols and the ones only these databases use (B, n, r, ?).
SYMBOLS = ["N", "N", "A", "N", "V", "N", "B", "n", "N", "r", "S", "F", "N", "?", "N", "j"]


def _write(dest: Path, name: str, fs: float, leads: list[str], seconds: float = 40.0, seed: int = 0) -> list[str]:
    """A record whose beats (Gaussian QRS every ~0.8 s, wider for V) carry SYMBOLS in turn; a rhythm mark first."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    beats = np.arange(1.0, seconds - 1.0, 0.8) + rng.normal(0, 0.02, len(np.arange(1.0, seconds - 1.0, 0.8)))
    symbols = [SYMBOLS[i % len(SYMBOLS)] for i in range(len(beats))]
    x = rng.normal(0, 0.02, n)
    for b, s in zip(beats, symbols):
        width = 0.04 if s in ("V", "r") else 0.012
        x += np.exp(-0.5 * ((t - b) / width) ** 2) - 0.2 * np.exp(-0.5 * ((t - b - 0.25) / 0.05) ** 2)
    gains = np.linspace(0.5, 1.2, len(leads))
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(leads), sig_name=leads, p_signal=np.outer(x, gains),
                fmt=["212" if len(leads) == 2 else "16"] * len(leads), write_dir=str(dest))
    samples = np.concatenate([[int(0.5 * fs)], np.round(beats * fs).astype(int)])
    wfdb.wrann(name, "atr", samples, ["+"] + symbols, aux_note=["(N"] + [""] * len(symbols), write_dir=str(dest),
               fs=fs)
    return symbols


@pytest.fixture(scope="module")
def small_dbs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("external")
    out = {}
    for db, name, fs, leads in (("svdb", "800", 128.0, ["ECG1", "ECG2"]), ("incartdb", "I01", 257.0, INCART_LEADS)):
        (root / db).mkdir()
        out[db] = (root / db, _write(root / db, name, fs, leads))
    return out


def test_the_plugin_offers_the_external_databases():
    sets = plugin.cardio_datasets()
    assert {"mitdb", "svdb", "incartdb"} <= set(sets)
    assert "physionet.org/content/svdb" in sets["svdb"].url and "257 Hz" in sets["incartdb"].description
    assert len(databases.DATABASES["svdb"].records) == 78 and len(databases.DATABASES["incartdb"].records) == 75
    with pytest.raises(CardioError, match="unknown beat database 'ltdb'"):
        databases.database("ltdb")


@pytest.mark.parametrize("db", ["svdb", "incartdb"])
def test_records_are_read_as_mitdb_and_labelled_in_aami_classes(small_dbs, tmp_path, db):
    root, symbols = small_dbs[db]
    names = databases.to_mitdb_layout(root, db, tmp_path / "as_mitdb")
    assert names == ["800" if db == "svdb" else "I01"]
    header = wfdb.rdheader(str(tmp_path / "as_mitdb" / names[0]))
    assert header.fs == 360 and header.sig_name == (["ECG1", "ECG2"] if db == "svdb" else ["II", "V1"])
    config = plugin_config("ecg_transfer", ("ecg_transfer.pretrain.side_features=[rr,shape,two_lead]",))
    beats = beat_set.build_beat_set(tmp_path / "as_mitdb", names, config, max_per_class=None, max_total=None, seed=0)
    # every beat label became its AAMI class (B, n -> N; r -> V; ? -> Q); the rhythm mark is no beat
    expected = np.bincount(aami.class_index(symbols), minlength=5)
    got = np.bincount(beats.y, minlength=5)
    assert np.all(got <= expected) and got.sum() >= expected.sum() - 2  # a beat at an edge may lack a window
    assert got[aami.AAMI_CLASSES.index("Q")] >= 1 and got[aami.AAMI_CLASSES.index("V")] >= 4
    assert beats.side.shape[1] > 0 and np.isfinite(beats.side).all()


def test_a_directory_without_the_database_is_one_line(tmp_path):
    with pytest.raises(CardioError, match="no svdb record with a header and .atr annotations"):
        databases.records_in(tmp_path, "svdb")
    with pytest.raises(CardioError, match="cardio data fetch incartdb"):
        databases.records_in(tmp_path / "absent", "incartdb")


def test_the_external_look_writes_its_ledger_row_once(small_dbs, tmp_path, mitdb_dir):
    config = plugin_config("ecg_transfer", (
        f"ecg_transfer.mitdb_dir={mitdb_dir}", "ecg_transfer.pretrain.max_beats_per_class=30",
        "ecg_transfer.pretrain.epochs=1", "ecg_transfer.pretrain.side_features=[rr,shape]",
        "ecg_transfer.pretrain.side_models=[{model: logistic, features: [rr, shape]}]"))
    ctx = cpu_context(tmp_path / "run")
    fitted = bench.fit_fused(mitdb_dir, ["101", "106"], config, ctx, seed=0, name="tiny")
    ledger = tmp_path / "aami_svdb.csv"
    root, _ = small_dbs["svdb"]
    result = bench.external_look(config, ctx, root, "svdb", ledger, REPO, seed=0, fitted=fitted)
    rows = bench.read_ledger(ledger)
    assert len(rows) == 1 and rows[0]["records"] == "svdb (1)" and rows[0]["status"] == "ledgered"
    assert int(rows[0]["n_beats"]) == result["n"] > 40 and rows[0]["config_hash"] == bench.config_hash(
        config, "fused")
    assert result["evaluated_on"] == "svdb (all annotated beats)" and result["leads"] == ["0", "1"]
    # the benchmark refuses a second look of the same protocol at the same database, before fitting anything
    assert bench.external_ledger("incartdb").name == "aami_incartdb.csv"
    with pytest.raises(CardioError, match="already holds 1 look"):
        bench.run_external(config, ctx, "svdb", root, [0, 1, 2], tmp_path, "", ledger=ledger)
    with pytest.raises(SystemExit):
        bench.main(["--mode", "external", "--db", "svdb", "--seeds", "0", "1", "2"])  # no --dir
