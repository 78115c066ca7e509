"""Text from the data made safe in the report's Markdown, the headings of the report's parts and the words for the
run's split: shared by the report (outputs, summary) and its TRIPOD+AI checklist (tripod), which each import it and
not each other."""
from __future__ import annotations

import re

# The report's parts in reading order (cardio.data.PARTS), as headed; the methods part is the appendix's first.
HEADINGS = {"summary": "Summary", "cohort": "Cohort", "performance": "Performance", "comparison": "Comparisons",
            "calibration": "Calibration, thresholds and decision curves", "explanation": "Explanations",
            "methods": "Appendix A: Methods"}
TABLES_HEADING = "Appendix B: Full tables"
CHECKLIST_HEADING = "Appendix C: TRIPOD+AI checklist"
_LINK_END = re.compile(r"\](?=\s*[(\[:])")  # the only ways a "]" can close a link, image or reference
_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")  # what can open a tag, comment or entity
_QUOTE_START = re.compile(r"^(\s*)>", re.MULTILINE)  # a line starting a block quote


def split_words(folds: int) -> str:
    """How a run's models were fitted and scored, as the summary and the checklist both say it."""
    return "a single held-out split" if folds == 1 else f"{folds}-fold cross-validation"


def plain_text(v) -> str:
    """Text with no way to link, embed or mark up in Markdown, and readable as it stands: only a "<" that could
    open a tag and an "&" that could start an entity become entities (so "->" stays "->"); backslashes,
    link-closing brackets and a quote's opening ">" are escaped."""
    text = _MARKUP.sub(lambda m: "&lt;" if m.group() == "<" else "&amp;", str(v)).replace("\\", "\\\\")
    return _QUOTE_START.sub(r"\1\\>", _LINK_END.sub(r"\\]", text))


def table_text(v) -> str:
    """A value from the data as text in a Markdown table: as plain_text, and no bar left to split a cell."""
    return plain_text(v).replace("|", "\\|")
