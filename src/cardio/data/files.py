"""Record files read no further than their bytes allow: a header's claim is checked against the file's size before
anything is allocated.

A .npy header, a WFDB header or a DICOM's NumberOfFrames each state how much data follows; a damaged or hostile one
can claim 10^9 samples in a 7 KB file, and the reader would allocate gigabytes before it found out. Every reader of a
user's record files checks the claim here first (`check_claim`, `check_dicom_frames`), and every plugin reads its
NumPy records through `read_npy`, which also tells an .npz archive saved under a .npy name from an array.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cardio.data import CardioError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive of .npy members


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_claim(path: str | Path, need: float, what: str, *, kind: str = "file", have: int | None = None,
                part: str = "the file") -> None:
    """Refuse, in one line naming the file, a header claiming `what` in `need` bytes when the file (or `have`, the
    bytes of `part`, the part that holds them) is shorter: a truncated `kind` or a damaged header, found before any
    allocation."""
    have = Path(path).stat().st_size if have is None else int(have)
    if need > have:
        raise CardioError(f"{path}: truncated {kind}, or its header is damaged: the header claims {what} "
                          f"(at least {_size(need)}), {part} holds {_size(have)}; export it again")


def npy_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy file from its header alone, the claimed size checked against the file
    (check_claim). An .npz archive, a file with no NumPy header and a damaged header are CardioErrors naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
            if magic.startswith(ZIP_MAGIC[:2]):
                raise CardioError(f"{path}: an .npz archive (a zip of arrays) saved as .npy; save the one array with "
                                  "numpy.save")
            if magic != NPY_MAGIC:
                raise CardioError(f"{path}: not a .npy array (no NumPy header)")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as exc:  # a damaged header: numpy says what it could not parse
        raise CardioError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())[:160]})") from None
    if dtype.hasobject:
        raise CardioError(f"{path}: a .npy array of Python objects (reading it would unpickle them); save numbers")
    check_claim(path, offset + float(np.prod(shape, dtype=float)) * dtype.itemsize,
                f"a {dtype} array of shape {tuple(shape)}", kind=".npy array")
    return tuple(shape), dtype, offset


def read_npy(path: str | Path, *, mmap: bool = False) -> np.ndarray:
    """The array of a .npy record file, its header checked first (npy_header: not an .npz, no objects, no more data
    claimed than the file holds); `mmap` maps it instead of reading it. Every failure is a CardioError naming it."""
    npy_header(path)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CardioError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())[:160]})") from None


def check_dicom_frames(ds: Any, path: str | Path, frames: int) -> None:
    """A DICOM image's claim of `frames` frames of Rows x Columns against its pixel data, before pydicom allocates
    the decoded frames: native pixel data holds every frame's bytes; encapsulated (compressed) pixel data holds at
    least one fragment per frame (pydicom sizes its output by the claim, then finds the fragments missing)."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    data = ds.get("PixelData")
    if data is None:
        return
    if syntax is None or not syntax.is_compressed:
        from pydicom.pixels.utils import get_expected_length  # YBR_FULL_422 holds 2 samples a pixel, not 3

        need = get_expected_length(ds, unit="bytes") // max(1, int(ds.get("NumberOfFrames") or 1)) * frames
        check_claim(path, need, f"{frames:,} frame(s) of {ds.Rows} x {ds.Columns} pixels", kind="DICOM pixel data",
                    have=len(data), part="its pixel data")
        return
    from pydicom.encaps import parse_fragments

    table = int.from_bytes(data[4:8], "little") if data[:4] == b"\xfe\xff\x00\xe0" else 0  # the basic offset table
    try:
        fragments, _ = parse_fragments(data[8 + table:])
    except (ValueError, EOFError) as exc:
        raise CardioError(f"{path}: damaged encapsulated pixel data ({' '.join(str(exc).split())[:160]})") from None
    if frames > fragments:
        raise CardioError(f"{path}: truncated DICOM pixel data, or its header is damaged: NumberOfFrames claims "
                          f"{frames:,} frames, the compressed pixel data holds {fragments:,} fragment(s); export it "
                          "again")
