"""Values from the data reach report.md and report.html as text: no link, image, script or handler they did not
come with from cardio itself (hypothesis over cohort values, subgroup, model and section names)."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import markdown
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardio_report import outputs as report

ATTACKS = ["[x](javascript:alert(1))", "![t](http://host/beacon)", "<script>alert(1)</script>",
           "<img src=x onerror=alert(2)>", "[a]: javascript:alert(3)\n[a]", "<http://host/x>", "x\\](y)",
           "| cell | split |", "[r] [a]", "<a href='javascript:1'>k</a>", "javascript:void(0)"]


class _Markup(HTMLParser):
    """Every element and attribute that can fetch, link or run something, but cardio's own: images embedded as data
    or figure files of the run, links to the page's anchors or to a file of the run (a figure's full size)."""

    def __init__(self, run: Path):
        super().__init__()
        self.run = run.resolve()
        self.found: list[str] = []

    def _in_run(self, link: str) -> bool:
        path = (self.run / unquote(link)).resolve()
        return path.is_relative_to(self.run) and path.is_file()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.lower().startswith("on") or "javascript:" in (value or "").lower():
                self.found.append(f"{tag} {name}={value}")
        if tag == "script":
            self.found.append("script")
        src = dict(attrs).get("src") or ""
        if tag == "img" and not (src.startswith(("data:image/png;base64,", "data:image/webp;base64,"))
                                 or self._in_run(src)):
            self.found.append(f"img {attrs}")
        href = dict(attrs).get("href") or ""
        if tag == "a" and not (href.startswith("#") or self._in_run(href)):
            self.found.append(f"a {attrs}")


def _markup(text: str, run: Path) -> list[str]:
    parser = _Markup(run)
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
    assert _markup(html, run) == [], text
    assert _markup(markdown.markdown(md, extensions=["tables"]), run) == [], text  # report.md as a viewer shows it


def test_report_for_people(tmp_path):
    """Contents first, short tables before figures, long tables in the appendix after every figure, display names on
    headers, and text that reads as written in report.md (no entity for "->", "<" or "&")."""
    run = _run_dir(tmp_path, "Echo -> CMR & LV<50%")
    md = report.render(run)
    html = (run / "report.html").read_text()
    assert html.index("<nav>") < html.index('<section id="comparison"')
    assert html.index('id="tB1"><h3>B1. Pairwise') > html.index("Figure 3")
    assert "<th>p</th>" in html and "p_value" not in html
    assert "### Echo -> CMR & LV<50%" in md and "&gt;" not in md and "&amp;" not in md
    assert "Echo -&gt; CMR &amp; LV&lt;50%" in html  # the page escapes what the text file need not
