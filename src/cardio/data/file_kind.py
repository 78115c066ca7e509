"""What a file is by its first bytes, whatever its name says: an EDF saved as .csv, an AVI saved as .dcm.

The readers call `misnamed` when a file does not read as its suffix promises, so that the one line they print names
the file's real kind and the suffix to give it, not the parser's complaint about bytes it was never meant to read.
"""
from __future__ import annotations

from pathlib import Path

from cardio import pip_install
from cardio.data import CardioError

#: kind -> (suffix to give it, test of the first 264 bytes)
_SIGNATURES = {
    "DICOM": (".dcm", lambda b: b[128:132] == b"DICM"),
    "EDF": (".edf", lambda b: b[:8] == b"0       " and b[184:192].strip().isdigit()),
    "AVI video": (".avi", lambda b: b[:4] == b"RIFF" and b[8:12] == b"AVI "),
    "MP4 video": (".mp4", lambda b: b[4:8] == b"ftyp"),
    "NumPy array": (".npy", lambda b: b[:6] == b"\x93NUMPY"),
    "ZIP archive": (".zip", lambda b: b[:4] == b"PK\x03\x04"),
    "PDF document": (".pdf", lambda b: b[:5] == b"%PDF-"),
    "JPEG image": (".jpg", lambda b: b[:3] == b"\xff\xd8\xff"),
    "PNG image": (".png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    "XML file": (".xml", lambda b: b.lstrip(b"\xef\xbb\xbf \r\n\t")[:5] == b"<?xml"),
}


def kind_of(path: str | Path) -> str | None:
    """The kind of file its first bytes say (DICOM, EDF, AVI video ...), or None when they say none of these."""
    try:
        with open(path, "rb") as f:
            head = f.read(264)
    except OSError:
        return None
    return next((kind for kind, (_, test) in _SIGNATURES.items() if test(head)), None)


def misnamed(path: str | Path, expected: str) -> str | None:
    """The problem of a file named as `expected` (a kind above) whose bytes are another known kind: "an AVI video
    saved under a .dcm name: rename it .avi", else None."""
    kind = kind_of(path)
    if kind is None or kind == expected:
        return None
    article = "an" if kind[0] in "AEIMOX" else "a"  # an AVI, an EDF, an MP4, an XML; a DICOM
    return (f"{path}: {article} {kind} saved under a {Path(path).suffix or 'bare'} name, not a {expected} file: "
            f"rename it {_SIGNATURES[kind][0]}")


def read_dicom(path: str | Path, **kw: object):
    """pydicom.dcmread, its failures as one CardioError naming what the file is: another kind of file under a DICOM
    name (misnamed), a file cut short (pydicom's "No tag to read", or its warning "End of file reached before
    delimiter", which would otherwise leak to the screen and leave a dataset without its pixel data), or unreadable."""
    import warnings

    try:  # a dependency of the plugins and services that read DICOM (the kernel's dicom extra), not of the kernel
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise CardioError(f"{path}: reading DICOM needs pydicom, which is not installed: "
                          f"{pip_install(repr('cardio-crt[dicom]'))}") from None

    size = Path(path).stat().st_size
    cut = (f"{path}: truncated DICOM file: its {size:,} bytes end inside an element (the transfer or the copy was "
           "cut short); export or copy it again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, **kw)  # type: ignore[arg-type]
        except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            wrong = misnamed(path, "DICOM")
            if wrong:
                raise CardioError(wrong) from None
            if isinstance(exc, EOFError) or "No tag to read" in str(exc):
                raise CardioError(cut) from None
            raise CardioError(f"{path}: unreadable DICOM file ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]})") from None
    if any("End of file reached" in str(w.message) for w in caught):
        raise CardioError(cut)
    return ds
