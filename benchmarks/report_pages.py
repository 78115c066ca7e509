"""Each run's report as a reader gets it: report.html re-rendered by this tree, its size against the 2 MB limit, the
figures shown and linked, and the page laid out by headless Chromium in a 1280 px window (width, images loaded,
parts in order, tables overflowing their box).

    python benchmarks/report_pages.py RUN_DIR [RUN_DIR ...]   # e.g. the plugins' default runs (cardio run --plugin X)
    python benchmarks/report_pages.py --smoke                 # a made-up run of 8 figures, seconds

Prints one line per run and `problems: none` or what is wrong; exits 1 where a page has a problem.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

LIMIT = 2_000_000  # bytes: the page's budget (cardio_report.outputs.PAGE_LIMIT)


def smoke_run(root: Path) -> Path:
    """A made-up finished run: a performance section with 8 figures (plots and one photograph-like image) and a
    long table, enough for the renderer's layout, encoding and budget."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from cardio_report.figures import save_figure, subplots
    from cardio_report.outputs import META_KEYS

    run = root / "run"
    figures = []
    rng = np.random.default_rng(0)
    for i in range(7):
        fig, ax = subplots(figsize=(5.6, 5.4))
        ax.plot(np.sort(rng.random(50)), np.sort(rng.random(50)))
        figures.append(save_figure(fig, run / "figures" / f"roc_{i}.png", caption=f"Curve {i}, drawn at random."))
    fig, ax = subplots(figsize=(12, 3.5))
    ax.imshow(gaussian_filter(rng.random((120, 480)), 2), cmap="gray")
    figures.append(save_figure(fig, run / "figures" / "clip.png", caption="A photograph-like strip."))
    table = {"columns": ["model", "task", "AUC"], "data": [[f"m{i}", "t", "0.7 [0.6, 0.8]"] for i in range(30)]}
    doc = {"meta": {**{k: 0 for k in META_KEYS}, "plugin": "smoke", "folds": []},
           "sections": [{"title": "Performance", "part": "performance", "text": "Made up.", "tables": {"long": table},
                         "figures": [str(f.relative_to(run)) for f in figures]}]}
    (run / "report.json").write_text(json.dumps(doc))
    return run


def measure(run: Path) -> tuple[str, list[str]]:
    """(the run's line, its page's problems)."""
    from cardio_report import outputs as report
    from cardio_testing.harness import report_page, report_page_problems

    t0 = time.perf_counter()
    report.render(run, checklist=True)
    seconds = time.perf_counter() - t0
    html = (run / "report.html").read_text()
    shown = len(re.findall(r"<img ", html))
    webp = html.count("data:image/webp;base64,")
    pngs = len(list((run / "figures").glob("*.png"))) if (run / "figures").is_dir() else 0
    size = (run / "report.html").stat().st_size
    page = report_page(run)
    problems = ["no Chromium: not laid out"] if page is None else report_page_problems(page)
    laid = "" if page is None else (f", {page['width']} px wide in {page['viewport']}, {page['loaded']}/"
                                    f"{page['images']} images loaded, parts {'>'.join(page['parts'])}")
    line = (f"{run.name}: report.html {size:,} bytes ({size / LIMIT:.2f} of 2 MB), {shown} of {pngs} figures shown "
            f"({webp} as WebP), rendered in {seconds:.1f} s{laid}")
    return line, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:  # a toy run in a folder of its own, removed after (every CI run left one behind)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cardio-report-pages-") as tmp:
            return _report(parser, [smoke_run(Path(tmp))])
    return _report(parser, args.runs)


def _report(parser: argparse.ArgumentParser, runs: list[Path]) -> int:
    """Each run's line and problems; 1 when any run has a problem other than a missing Chromium."""
    if not runs:
        parser.error("name at least one run directory, or --smoke")
    failed = False
    for run in runs:
        line, problems = measure(run)
        print(line)
        print("  problems: " + ("; ".join(problems) if problems else "none"))
        failed |= bool(problems) and problems != ["no Chromium: not laid out"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
