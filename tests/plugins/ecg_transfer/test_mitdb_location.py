"""Where MIT-BIH is found (ecg_transfer.mitdb_dir -> $CARDIO_DATA/mitdb -> the cache), downloaded when online, and the
one line that names the fetch command offline."""
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio import CardioError
from cardio_ecg_transfer import mitdb, records


def test_location_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
    assert mitdb.mitdb_dir(tmp_path / "mine") == tmp_path / "mine"
    assert mitdb.mitdb_dir(None) == tmp_path / "data" / "mitdb"
    monkeypatch.delenv("CARDIO_DATA")
    assert mitdb.mitdb_dir(None, cache_dir=tmp_path / "run-cache") == tmp_path / "run-cache" / "mitdb"
    assert mitdb.mitdb_dir(None) == tmp_path / "cache" / "mitdb"
    monkeypatch.delenv("CARDIO_CACHE")
    assert mitdb.mitdb_dir(None) == Path.home() / ".cache" / "cardio" / "mitdb"
    # no default names a development tree
    assert "shared" not in str(mitdb.mitdb_dir(None))


def test_offline_names_the_fetch_command(tmp_path):
    with pytest.raises(CardioError) as refused:
        mitdb.ensure_mitdb(tmp_path / "mitdb", online=lambda: False)
    text = str(refused.value)
    assert f"cardio data fetch mitdb --dir {tmp_path / 'mitdb'}" in text and "\n" not in text


def test_online_downloads_record_by_record_with_progress(tmp_path, monkeypatch):
    """wfdb.dl_database is called once per missing record, under a progress bar (PhysioNet is not reachable
    here, so the download itself is wfdb's own function pointed at a local copy of record files)."""
    calls, shown = [], []

    def dl_database(db, dest, records, annotators):  # writes what PhysioNet would
        calls.append(records)
        for ext in ("hea", "dat", "atr"):
            (Path(dest) / f"{records[0]}.{ext}").write_text("x")

    def progress(it, desc="", total=None):
        shown.append((desc, total))
        return it

    monkeypatch.setattr(records.wfdb, "dl_database", dl_database)
    (tmp_path / "mitdb").mkdir()
    mitdb.fetch_mitdb(tmp_path / "mitdb", progress=progress)
    assert len(calls) == 48 and shown == [("MIT-BIH download", 48)]
    calls.clear()
    assert mitdb.ensure_mitdb(tmp_path / "mitdb", online=lambda: False) == tmp_path / "mitdb"
    assert not calls  # complete: nothing fetched


def test_real_mitdb_is_used_where_it_is(mitdb_dir):
    assert mitdb.ensure_mitdb(mitdb_dir, online=lambda: False) == mitdb_dir


def _physionet_zip(mitdb_dir: Path, path: Path, damaged: str | None = None) -> Path:
    """MIT-BIH as PhysioNet's zip lays it out (a top folder, RECORDS, x_mitdb/), built from the real files."""
    import zipfile

    top = "mit-bih-arrhythmia-database-1.0.0"
    with zipfile.ZipFile(path, "w") as z:  # stored: the .dat files are already packed
        for f in sorted(mitdb_dir.glob("*.*")):
            if f.suffix in (".hea", ".dat", ".atr"):
                data = f.read_bytes()
                z.writestr(f"{top}/{f.name}", data[:-1] + bytes([data[-1] ^ 1]) if f.name == damaged else data)
        z.writestr(f"{top}/RECORDS", "\n".join(mitdb.MITDB_RECORDS) + "\n")
        z.writestr(f"{top}/x_mitdb/x_108.hea", "x_108 2 360 21600\n")
    return path


def test_fetch_takes_physionets_zip_from_a_url_and_checks_every_file(mitdb_dir, tmp_path, cardio_cli):
    """The offline route: PhysioNet's zip (built here from the real files, served by a local HTTP server, and as a
    file:// URL and a plain path) placed by `cardio data fetch --from`, its 144 files checked against the published
    SHA-256; one altered byte is refused by name and nothing of that file is kept."""
    import http.server
    import threading
    from functools import partial

    www = tmp_path / "www"
    www.mkdir()
    good = _physionet_zip(mitdb_dir, www / "mit-bih-arrhythmia-database-1.0.0.zip")
    _physionet_zip(mitdb_dir, www / "damaged.zip", damaged="203.dat")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                      directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{good.name}"
        got = cardio_cli("data", "fetch", "mitdb", "--dir", str(tmp_path / "a"), "--from", url)
        assert got.returncode == 0, got.stderr
        assert "144 file(s) copied" in got.stdout and "144 files checked, 144 by SHA-256" in got.stdout
        assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
            f"{r}.{e}" for r in mitdb.MITDB_RECORDS for e in ("hea", "dat", "atr"))  # no RECORDS, no x_mitdb
        refused = cardio_cli("data", "fetch", "mitdb", "--dir", str(tmp_path / "b"), "--from",
                             f"http://127.0.0.1:{httpd.server_address[1]}/damaged.zip")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert refused.returncode == 2 and "203.dat differs from the published file (SHA-256" in refused.stderr
    assert not (tmp_path / "b" / "203.dat").exists()
    again = cardio_cli("data", "fetch", "mitdb", "--dir", str(tmp_path / "b"), "--from", good.as_uri())
    assert again.returncode == 0 and "every file already there" not in again.stdout, again.stderr
    assert (tmp_path / "b" / "203.dat").read_bytes() == (mitdb_dir / "203.dat").read_bytes()


def test_mitdb_is_checked_before_featurize_in_validate_and_in_the_run(tmp_path, cardio_cli, monkeypatch):
    """Offline without MIT-BIH: validate names the folder and the offline route, and the run stops on the same line
    before loading the cohort (no run folder is left); with ecg_transfer.pretrain.weights_file nothing asks for
    MIT-BIH."""
    monkeypatch.setattr(mitdb, "_online", lambda timeout=3.0: False)
    empty = tmp_path / "data"
    (empty / "mitdb").mkdir(parents=True)
    env = {"CARDIO_DATA": str(empty)}
    small = ["--set", "ecg_transfer.synthetic.n_patients=24", "--set", "cv.folds=2"]
    checked = cardio_cli("validate", "--plugin", "ecg_transfer", *small, "--write-synthetic", env=env)
    assert checked.returncode == 2, checked.stderr
    line = f"MIT-BIH not found at {empty / 'mitdb'}"
    assert line in checked.stderr and "cardio data fetch mitdb --dir" in checked.stderr
    assert "--from mit-bih-arrhythmia-database-1.0.0.zip" in checked.stderr
    ran = cardio_cli("run", "--plugin", "ecg_transfer", *small, "--out", str(tmp_path / "run"), env=env)
    assert ran.returncode == 2 and line in ran.stderr and "stage load" not in ran.stderr, ran.stderr[-2000:]
    assert not (tmp_path / "run").exists()
    (tmp_path / "w.pt").write_bytes(b"")
    ok = cardio_cli("validate", "--plugin", "ecg_transfer", *small, "--set",
                    f"ecg_transfer.pretrain.weights_file={tmp_path / 'w.pt'}", env=env)
    assert "MIT-BIH" not in ok.stderr, ok.stderr
