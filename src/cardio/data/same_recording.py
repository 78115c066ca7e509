"""One recording, scan or clip under two ids, found by its content rather than its bytes: what a matcher returns
(`Match`: the signal service's cardio_signal.same_signal, the imaging service's cardio_imaging.same_image) and the
one problem line a cohort gives each such pair of different patients (`copy_problems`, for every plugin). The
matchers, which only the plugins of their kind of record need, are the services'.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from cardio.data.cohort import same_content

if TYPE_CHECKING:
    import pandas as pd

    from cardio.data.cohort import Problems


Id = TypeVar("Id", bound=Hashable)  # a record's id: its path, its row, whatever the caller keys it by


@dataclass(frozen=True)
class Match(Generic[Id]):
    """Records `a` and `b` hold one recording; `b`'s starts `lag_s` seconds into `a`'s (negative: before)."""

    a: Id
    b: Id
    lag_s: float
    r: float


def copy_problems(table: pd.DataFrame, problems: Problems, column: str, matches: list[Match[int]], what: str,
                  evidence: str, lag: bool = False) -> None:
    """One problem line per pair of rows of different patients whose files hold one `what` (a recording, a scan, a
    study, a clip) by content (`matches` by row: cardio_signal.same_signal's same_recordings,
    cardio_imaging.same_image's same_images or same_cines), naming both files, lines and patients and the `evidence`
    (what correlates); with `lag`, where the second starts in the first. Files of the same bytes are
    cardio.data.cohort's to name, and one patient's pair is no copy."""

    root = Path(problems.file).parent
    for m in matches:
        i, j, lag_s = (m.a, m.b, m.lag_s) if m.a < m.b else (m.b, m.a, -m.lag_s)  # the earlier line first
        pa, pb = table["patient_id"].iloc[i], table["patient_id"].iloc[j]
        paths = [str(table[column].iloc[k]) for k in (i, j)]
        if pa == pb or same_content(paths)[0]:
            continue
        shown = [Path(p).relative_to(root) if Path(p).is_relative_to(root) else Path(p) for p in paths]
        start = f" (the second starting {lag_s:.2f} s into the first)" if lag else ""
        problems.add(f"{shown[0]} (line {i + 2}, patient {pa!r}) and {shown[1]} (line {j + 2}, patient {pb!r}) hold "
                     f"one {what}: {evidence} correlate at r = {m.r:.3f}{start}; a {what} belongs to one patient: keep "
                     "the right patient's row", j + 2, column, readable=True)
