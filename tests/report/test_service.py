"""The report service joins the kernel through the entry-point group `cardio.services` (cardio.services): `cardio
report`, the performance and subgroup sections of every study, report.md and report.html, and ctx.save_figure are
its. Without it a run still writes its product (predictions.csv, metrics.json, report.json) and says in one log line
what is missing and how to install it."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("cardio_report")

from cardio.data import CardioError
from cardio_testing.harness import cpu_context
from cardio_testing.harness import invoke_with_services as cardio


def test_report_is_the_report_services_command_and_its_sections_are_plugins(toy_env):
    installed, bare = cardio("--help"), cardio("--help", services={})
    assert installed.returncode == bare.returncode == 0, installed.stderr + bare.stderr
    assert "  report " in installed.stdout and "  report " not in bare.stdout and "  run " in bare.stdout
    listed = cardio("plugins")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("report ") and line.endswith("service  adds: cardio report, report.md and report.html")
               for line in listed.stdout.splitlines()), listed.stdout
    rows = {r["name"]: r for r in json.loads(cardio("plugins", "--json").stdout)}
    assert "(service)" in rows["performance"]["version"] and "(service)" in rows["subgroups"]["version"]
    alone = {r["name"] for r in json.loads(cardio("plugins", "--json", services={}).stdout)}
    assert "toy" in alone and not {"performance", "subgroups"} & alone


def test_without_the_report_service_a_run_keeps_its_product_and_says_so_in_one_line(toy_env):
    done = cardio("run", "--plugin", "toy", "--out", "bare", services={})
    assert done.returncode == 0, done.stderr[-3000:]
    run = toy_env / "bare"
    assert all((run / f).is_file() for f in ("predictions.csv", "metrics.json", "report.json"))
    assert not (run / "report.md").exists() and not (run / "report.html").exists()
    said = [line for line in done.stderr.splitlines() if "cardio-crt-report" in line]
    assert len(said) == 1, done.stderr[-3000:]
    assert "WARNING report.md and report.html are not written, nor the performance and subgroup sections" in said[0]
    assert "-m pip install -e services/report" in said[0]
    assert "INFO done in " in done.stderr and "bare/metrics.json" in done.stderr
    sections = {s["title"] for s in json.loads((run / "report.json").read_text())["sections"]}
    assert "Performance" not in sections, sections  # the report service's section, absent with it
    with_it = cardio("run", "--plugin", "toy", "--out", "full", "--set", "report.figures=false")  # its text is read
    assert with_it.returncode == 0, with_it.stderr[-3000:]
    assert (toy_env / "full" / "report.md").is_file() and "cardio-crt-report" not in with_it.stderr
    assert "Performance" in {s["title"] for s in json.loads((toy_env / "full" / "report.json").read_text())["sections"]}


def test_without_the_report_service_a_figure_is_one_line_naming_it(tmp_path, monkeypatch):
    from cardio import services
    from cardio_report.figures import subplots

    ctx = cpu_context(tmp_path)
    fig, ax = subplots()
    ax.plot([0, 1], [0, 1])
    assert ctx.save_figure(fig, "line").is_file()
    report = services.installed().pm.unregister(name="report")
    try:
        fig, ax = subplots()
        with pytest.raises(CardioError, match=r"figure 'again' cannot be saved: figures come with the report "
                                              r"service, cardio-crt-report \(.* -m pip install -e services/report\)$"):
            ctx.save_figure(fig, "again")
    finally:
        services.installed().pm.register(report, name="report")
