"""Values from the data reach report.md and report.html as text: no link, image, script or handler they did not
come with from cardio itself (hypothesis over cohort values, subgroup, model and section names)."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import markdown
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardio import report

ATTACKS = ["[x](javascript:alert(1))", "![t](http://host/beacon)", "<script>alert(1)</script>",
           "<img src=x onerror=alert(2)>", "[a]: javascript:alert(3)\n[a]", "<http://host/x>", "x\\](y)",
           "| cell | split |", "[r] [a]", "<a href='javascript:1'>k</a>", "javascript:void(0)"]


class _Markup(HTMLParser):
    """Every element and attribute that can fetch, link or run something."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.lower().startswith("on") or "javascript:" in (value or "").lower():
                self.found.append(f"{tag} {name}={value}")
        if tag == "script":
            self.found.append("script")
        src = dict(attrs).get("src") or ""
        if tag == "img" and not (src.startswith("data:image/png;base64,") or src.startswith("figures/")):
            self.found.append(f"img {attrs}")
        if tag == "a" and not (dict(attrs).get("href") or "").startswith("#s"):  # cardio's contents links only
            self.found.append(f"a {attrs}")


def _markup(text: str) -> list[str]:
    parser = _Markup()
    parser.feed(text)
    return parser.found


def _run_dir(tmp: Path, text: str) -> Path:
    run = tmp / "run"
    (run / "figures").mkdir(parents=True, exist_ok=True)
    (run / "figures" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a file of the run (not decodable)
    meta = {"plugin": "toy", "cardio_version": "0", "plugin_version": text, "seed": 0, "device": "cpu",
            "world_size": 1, "n_records": 3, "n_patients": 3, "folds": [], "elapsed_s": 1.0,
            "probable_leaks": [text]}
    table = pd.DataFrame({"model": [text, "svm"], "subgroup": [f"sex={text}", "sex=F"], text: [0.5, np.nan],
                          "task": ["label", text]})
    long = pd.DataFrame({"variable": [text] * 20, "p_value": np.linspace(0, 1, 20)})
    doc = {"meta": meta, "sections": [
        {"title": text, "text": f"**bold** {text} and `code`", "figures": [text, "figures/none.png", "figures/ok.png"],
         "tables": {text: json.loads(table.to_json(orient="split", index=False)),
                    "pairwise": json.loads(long.to_json(orient="split", index=False))}}]}
    (run / "report.json").write_text(json.dumps(doc))
    return run


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.sampled_from(ATTACKS), st.text(alphabet=st.sampled_from(list("[]()!<>:|\\/ aj'\"=xhtps")),
                                                    min_size=1, max_size=40)))
def test_no_markup_from_data(tmp_path, text):
    run = _run_dir(tmp_path, text)
    md = report.render(run)
    html = (run / "report.html").read_text()
    assert _markup(html) == [], text
    assert _markup(markdown.markdown(md, extensions=["tables"])) == [], text  # report.md as a viewer shows it


def test_report_for_people(tmp_path):
    """Contents first, short tables before figures, long tables collapsed after them, display names on headers."""
    run = _run_dir(tmp_path, "ok")
    report.render(run)
    html = (run / "report.html").read_text()
    assert html.index("<nav>") < html.index('<section id="s1">')
    assert html.index("<details><summary>pairwise (20 rows)") > html.index("figure ok is not embedded")
    assert "<th>p</th>" in html and "p_value" not in html
