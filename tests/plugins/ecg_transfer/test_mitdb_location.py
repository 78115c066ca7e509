"""Where MIT-BIH is found (data.mitdb_dir -> $CARDIO_DATA/mitdb -> the cache), downloaded when online, and the
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
