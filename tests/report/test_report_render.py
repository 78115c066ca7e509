"""The report as a reader sees it: report.html laid out by headless Chromium in a 1280 px window fits the window,
shows every figure, and reads in a paper's order (summary, cohort, performance, comparisons, calibration,
explanations, appendices); report.md reads as plain text; the TRIPOD+AI checklist maps the run. The plugins' own
end-to-end runs are checked the same way (cardio_testing.harness.report_page) where Chromium is installed."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from cardio.data import PARTS
from cardio_report import outputs as report
from cardio_report import tripod
from cardio_report.figures import save_figure, subplots
from cardio_testing.harness import chromium, report_page, report_page_problems

needs_chromium = pytest.mark.skipif(chromium() is None, reason="no Chromium found (Debian: apt-get install chromium; "
                                                                 ".ci/run installs it where it runs as root)")
NAMES = {"label": "CRT response (LVEF gain >= 5 points)", "mlp": "multilayer perceptron",
         "sex": "Sex at birth"}


@pytest.fixture(scope="module")
def toy_run(toy_env):
    """A finished toy run with subgroups and display names: every part of the report has something in it."""
    from cardio_testing.harness import invoke

    result = invoke("run", "--plugin", "toy", "--out", "run", "--set", "subgroups=[sex]",
                    "--set", f"report.display_names={json.dumps(NAMES)}")
    assert result.exit_code == 0, result.stderr[-3000:]
    return toy_env / "run"


def _page(run_dir: Path) -> dict:
    """report_page's measures of the run's report.html (None only without Chromium: these tests need it)."""
    page = report_page(run_dir)
    assert page is not None
    return page


@needs_chromium
def test_toy_report_fits_1280_px_shows_every_figure_in_paper_order(toy_run):
    page = _page(toy_run)
    assert report_page_problems(page) == [], page
    assert page["parts"] == ["summary", "cohort", "performance", "comparison", "calibration", "explanation",
                             "methods", "tripod"]
    figures = dict(page["figures_before"])
    assert figures["summary"] == figures["cohort"] == 0 and figures["performance"] >= 1  # the ROC leads
    doc = json.loads((toy_run / "report.json").read_text())
    # ROC, calibration, decision curve, confusion and the subgroups' AUC by sex
    assert page["images"] == page["loaded"] == sum(len(s["figures"]) for s in doc["sections"]) == 5


@needs_chromium
def test_the_page_check_sees_sideways_scroll_an_overflowing_table_a_broken_image_and_a_dead_link(toy_run, tmp_path):
    """The control of the check above: the same page, damaged four ways, is refused four ways."""
    page = (toy_run / "report.html").read_text()
    damaged = re.sub(r'src="data:image/png;base64,[^"]{20}', 'src="data:image/png;base64,AAAA', page, count=1)
    damaged = damaged.replace("</h1>", '</h1><div style="width:1900px">wide</div><a href="#nowhere">x</a>'
                                       f'<div class="tw"><table><tr><td>{"x" * 900}</td></tr></table></div>', 1)
    (tmp_path / "report.html").write_text(damaged)
    problems = report_page_problems(_page(tmp_path))
    assert len(problems) == 4, problems
    assert "wide in a 1280 px window" in problems[0] and "did not load" in problems[1]
    assert "overflow" in problems[2] and "nowhere" in problems[3]


def test_sections_take_their_parts_and_long_tables_go_to_the_appendix(toy_run):
    doc = json.loads((toy_run / "report.json").read_text())
    assert {s["part"] for s in doc["sections"]} == set(PARTS)
    assert doc["sections"][0]["title"] == "Performance"  # metrics.json's estimates keep their section
    lay = report.layout(doc, toy_run, NAMES)
    assert [key for key, _ in lay.parts] == list(PARTS)
    md = (toy_run / "report.md").read_text()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## Contents", "## Summary", "## Cohort", "## Performance", "## Comparisons",
                     "## Calibration, thresholds and decision curves", "## Explanations", "## Appendix A: Methods",
                     "## Appendix C: TRIPOD+AI checklist"]
    assert md.index("![Figure 1]") < md.index("### Statistical methods")  # the first figure before the methods
    assert "*Figure 1.* ROC curve of multilayer perceptron for CRT response (LVEF gain >= 5 points) " \
           "(out-of-fold)." in md  # a caption in words, display names and all, not a file name
    assert "&gt;" not in md and "&amp;" not in md  # text reads as text


def test_captions_come_from_the_figure_file_and_page_images_are_small(tmp_path):
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50) ** 2)
    ax.set_title("a title")
    save_figure(fig, tmp_path / "figures" / "curve.png", caption="A curve rising -> up, as drawn")
    fig, ax = subplots(figsize=(6, 4))
    ax.imshow(gaussian_filter(np.random.default_rng(0).random((300, 450)), 3), cmap="gray")  # like a photograph
    save_figure(fig, tmp_path / "figures" / "noise.png")
    assert report._caption(tmp_path / "figures" / "curve.png", "x") == "A curve rising -> up, as drawn."
    assert report._caption(tmp_path / "figures" / "noise.png", "figures/photo_of_noise.png") == "Photo of noise."
    plot = report._web_image(tmp_path / "figures" / "curve.png", report.SCALE)
    photo = report._web_image(tmp_path / "figures" / "noise.png", report.SCALE)
    assert plot is not None and photo is not None
    assert plot.mime == "image/png" and photo.mime == "image/webp"  # lines keep their edges; shades compress
    assert plot.width < 6.5 * report.SCALE and plot.size() < 40_000  # about 6 inches at SCALE pixels per inch


def test_a_page_too_big_for_its_figures_shrinks_them_then_links_the_last(tmp_path):
    rng = np.random.default_rng(1)
    figures = []
    for i in range(6):
        fig, ax = subplots(figsize=(6, 4))
        ax.imshow(rng.random((100, 150, 3)))  # incompressible
        figures.append(save_figure(fig, tmp_path / "figures" / f"n{i}.png", dpi=40, svg=False))
    placed = [report._Figure(str(p.relative_to(tmp_path)), i + 1, "", p) for i, p in enumerate(figures)]
    first = report._web_image(figures[0], report.SCALE)
    assert first is not None
    one = first.size()
    images, scale = report._images(placed, 3 * one)  # room for 3 at full scale: all 6 a little smaller
    assert report.MIN_SCALE < scale < report.SCALE and len(images) == 6
    assert sum(im.size() for im in images.values()) <= 3 * one
    images, scale = report._images(placed, one)  # not even at the smallest scale: the last are linked
    assert scale == report.MIN_SCALE and 0 < len(images) < 6
    assert sum(im.size() for im in images.values()) <= one
    assert [f.link for f in placed[:len(images)]] == list(images)  # the first in reading order keep their place


def test_cardio_report_checklist_writes_tripod_ai_md(toy_run, cardio_cli, toy_site):
    result = cardio_cli("report", str(toy_run), "--checklist", check=True)
    assert "## Summary" in result.stdout and "## Performance" in result.stdout
    text = (toy_run / tripod.FILE).read_text()
    items = re.findall(r"^\| (\d+[a-g]?) \|", text, re.M)
    assert len(items) == len(tripod.ITEMS) == 52 and len({i.rstrip("abcdefg") for i in items}) == 27
    rows = tripod.checklist(json.loads((toy_run / "report.json").read_text()), report.run_config(toy_run),
                            report.layout(json.loads((toy_run / "report.json").read_text()), toy_run, {}).anchors())
    n = tripod.counts(rows)
    assert n[tripod.ANSWERED] >= 8 and n[tripod.YOURS] >= 20 and sum(n.values()) == 52
    by = {r.item.number: r for r in rows}
    assert by["14"].status == tripod.PARTLY and by["14"].part == "comparison"  # subgroups were asked for
    assert by["12a"].status == tripod.ANSWERED and "5-fold cross-validation by patient" in by["12a"].note
    assert by["17"].status == by["18a"].status == tripod.YOURS  # ethics and funding are the authors'
    assert "[Cohort](report.html#cohort)" in text


@needs_chromium
def test_a_table_too_wide_for_the_page_is_cut_into_column_groups(tmp_path):
    """A paper's Table 2 of 15 interval columns fits the page as two tables, each led by the model column."""
    columns = ["model"] + [f"metric {i} [CI]" for i in range(14)]
    rows = [[f"model-{r}"] + [f"0.{r}12 [0.{r}01, 0.{r}99]"] * 14 for r in range(6)]
    meta = {k: 0 for k in report.META_KEYS} | {"plugin": "wide", "folds": []}
    doc = {"meta": meta, "sections": [{"title": "Table 2", "text": "", "figures": [], "part": "comparison",
                                       "tables": {"Table 2": {"columns": columns, "data": rows}}}]}
    (tmp_path / "report.json").write_text(json.dumps(doc))
    report.render(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert html.count("<th>model</th>") == 2 and "(continued)" in html
    assert report_page_problems(_page(tmp_path)) == []


def test_the_checklist_calls_a_holdout_a_held_out_split_as_the_summary_does():
    """mmode_septal_flash's default (cv.method=holdout) read "1-fold cross-validation split by patient" in TRIPOD+AI
    items 12a and 12c, while its summary said "a single held-out split"."""
    facts = tripod._Facts(plugin="p", versions="v", external=False, folds=1, cv_method="holdout", synthetic="",
                          subgroups=(), sites=False, final_model=True, n_patients=29, n_records=29)
    assert tripod._validation(facts).startswith("a single held-out split by patient (cv.method=holdout)")
    assert tripod._validation(replace(facts, folds=5, cv_method="kfold")).startswith("5-fold cross-validation by")
