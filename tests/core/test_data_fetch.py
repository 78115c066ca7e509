"""`cardio data fetch NAME --dir D --from SOURCE`: a data set taken from a folder, an archive, or the URL of one (a
local HTTP server and a file:// URL here, never the network), every listed file checked where it lands."""
from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from cardio.data import CardioError
from cardio_public import fetch as fetching
from cardio_public.fetch import Dataset

FILES = {"a.hea": b"header a\n", "a.dat": bytes(range(256)) * 40, "b.hea": b"header b\n"}


def _dataset(hashes: bool = True) -> Dataset:
    def offline(dest: Path) -> None:
        raise CardioError("could not download toy: no network here")

    return Dataset("toy", "1 kB", "CC0", "https://example.invalid/toy", offline, files=tuple(FILES),
                   sha256={n: hashlib.sha256(b).hexdigest() for n, b in FILES.items()} if hashes else {})


def _archive(path: Path, damaged: str | None = None) -> Path:
    """A zip laid out as PhysioNet's: a top folder with the files and others the data set does not list."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in FILES.items():
            z.writestr(f"toy-1.0.0/{name}", data[:-1] + b"!" if name == damaged else data)
        z.writestr("toy-1.0.0/RECORDS", "a\nb\n")
        z.writestr("toy-1.0.0/x_toy/x_a.hea", "other\n")
    return path


@pytest.fixture()
def server(tmp_path):
    """A local HTTP server over tmp_path/www: its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_folder_an_archive_and_a_url_each_place_the_listed_files_checked(tmp_path, server):
    www, url = server
    folder = tmp_path / "copy" / "deep"
    folder.mkdir(parents=True)
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    zipped = _archive(www / "toy-1.0.0.zip")
    for n, source in enumerate([str(tmp_path / "copy"), str(zipped), f"{url}/toy-1.0.0.zip", zipped.as_uri()]):
        dest = tmp_path / f"dest{n}"
        assert sorted(fetching.place("toy", _dataset(), source, dest)) == sorted(FILES)
        assert {p.name: p.read_bytes() for p in dest.iterdir()} == FILES  # only the listed files, byte for byte
        assert fetching.problems("toy", _dataset(), dest) == []
    assert fetching.place("toy", _dataset(), str(zipped), tmp_path / "dest0") == []  # intact files are kept


def test_a_damaged_or_incomplete_source_is_refused_and_leaves_nothing_half_written(tmp_path, server):
    www, url = server
    _archive(www / "bad.zip", damaged="a.dat")
    with pytest.raises(CardioError, match=r"a\.dat differs from the published file \(SHA-256"):
        fetching.place("toy", _dataset(), f"{url}/bad.zip", tmp_path / "dest")
    assert not (tmp_path / "dest" / "a.dat").exists() and not list((tmp_path / "dest").glob(".*part"))
    partial_copy = tmp_path / "partial"
    partial_copy.mkdir()
    (partial_copy / "a.hea").write_bytes(FILES["a.hea"])
    with pytest.raises(CardioError, match=r"lacks 2 of the 3 files of toy \(a\.dat, b\.hea\); nothing was copied"):
        fetching.place("toy", _dataset(), str(partial_copy), tmp_path / "dest2")
    assert not (tmp_path / "dest2" / "a.hea").exists()
    with pytest.raises(CardioError, match="could not be read"):
        fetching.place("toy", _dataset(), f"{url}/absent.zip", tmp_path / "dest3")
    # a copy placed by hand and damaged later is named by the check every fetch and run makes
    (tmp_path / "dest4").mkdir()
    for name, data in FILES.items():
        (tmp_path / "dest4" / name).write_bytes(data if name != "b.hea" else b"edited\n")
    assert "differ from the published ones (SHA-256): b.hea" in fetching.problems("toy", _dataset(),
                                                                                  tmp_path / "dest4")[0]
    (tmp_path / "dest4" / "a.dat").unlink()
    assert "1 of the 3 files of toy are missing (a.dat)" in fetching.problems("toy", _dataset(), tmp_path / "dest4")[0]
