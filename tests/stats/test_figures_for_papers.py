"""Figures fit for a paper: PNG at 300 dpi with SVG beside it from the one saving path, colour-blind-safe colours,
a unit on every quantitative axis, one CI band per ROC panel with n positive/negative, calibration only for risks,
confusion matrices with rates beside counts, and display names from the config in figures and tables."""
from __future__ import annotations

import json
import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from PIL import Image

# the kernel and its own dependencies (PyYAML): after the skip, so a stats-only venv skips this module cleanly
pytest.importorskip("cardio", reason="the cardio kernel is not installed (a stats-only venv)")
import yaml

from cardio import Predictions
from cardio.config import resolve
from cardio.study import outputs
from cardio_report import outputs as report
from cardio_report.figures import PALETTE, FigureWarning, save_figure, subplots
from cardio_report.performance import evaluate_sections
from cardio_stats import (
    StatsError,
    forest_figures,
    plot_bland_altman,
    plot_calibration,
    plot_confusion,
    plot_decision_curve,
    plot_forest,
    plot_roc,
    univariate_screen,
)
from cardio_stats.figures import colour, line_style
from cardio_testing.harness import cpu_context

NUMBER = re.compile(r"^[−\-+]?\d*\.?\d+(e[−\-+]?\d+)?%?$")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.4).astype(int)
    return y, rng.normal(size=150) + y, rng.normal(size=150) + 0.4 * y, rng


def test_save_figure_writes_png_at_300_dpi_and_svg_beside_it(tmp_path):
    fig, ax = subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path / "line.png")
    assert path == tmp_path / "line.png"
    with Image.open(path) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    svg = (tmp_path / "line.svg").read_text()
    assert "<svg" in svg
    fig2, ax2 = subplots(figsize=(2, 1.5))
    ax2.plot([0, 1], [0, 1])
    save_figure(fig2, tmp_path / "again.png")
    assert (tmp_path / "again.svg").read_text() == svg  # no date inside: the same figure, the same bytes
    # plugins save through ctx.save_figure, the same path
    ctx = cpu_context(tmp_path / "run")
    fig3, ax3 = subplots()
    ax3.plot([0, 1])
    png = ctx.save_figure(fig3, "x")
    assert png.suffix == ".png" and png.with_suffix(".svg").is_file()


def test_a_colormap_that_is_not_perceptually_uniform_is_flagged(tmp_path):
    fig, ax = subplots()
    ax.imshow(np.arange(16.0).reshape(4, 4), cmap="jet")
    with pytest.warns(FigureWarning, match="jet"):
        save_figure(fig, tmp_path / "jet.png")
    fig, ax = subplots()
    ax.imshow(np.arange(16.0).reshape(4, 4))  # the default is viridis
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_figure(fig, tmp_path / "viridis.png")


def _quantitative_axes_have_units(fig) -> list[str]:
    """Labels of every axis whose ticks are numbers; an axis without its own label uses the figure's."""
    fig.draw_without_rendering()
    sup = {"x": fig.get_supxlabel(), "y": fig.get_supylabel()}
    missing = []
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            ticks = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
            if not ticks or not all(NUMBER.match(t) for t in ticks):
                continue  # categories (a forest plot's variables, a confusion matrix's classes)
            label = axis.get_label_text() or sup[which]
            if not re.search(r"\([^)]+\)", label):
                missing.append(f"{ax.get_title() or fig.get_suptitle()}: {which} axis {label!r}")
    return missing


def test_every_quantitative_axis_states_its_unit(data):
    y, a, b, rng = data
    prob = 1 / (1 + np.exp(-a))
    df = pd.DataFrame({"y": y, "a": a, "b": b})
    figures = [plot_roc({"cnn": (y, a)}, n_resamples=100), plot_roc({"cnn": (y, a), "qrs": (y, b)}, n_resamples=100),
               plot_roc({"cnn": (y, a), "qrs": (y, b)}, ci_band=False), plot_calibration(y, prob),
               plot_decision_curve(y, {"cnn": prob}), plot_bland_altman(a, a + rng.normal(size=150)),
               plot_bland_altman(a, a + 1, quantity="LVEF", unit="%"), plot_forest(univariate_screen(df, "y", ["a"])),
               plot_confusion({"m": [[5, 1], [2, 7]]}, ["no", "yes"])]
    assert [m for f in figures for m in _quantitative_axes_have_units(f)] == []
    ba = plot_bland_altman(a, a + 1, quantity="LVEF", unit="%")
    assert ba.axes[0].get_xlabel() == "Mean of measured and predicted LVEF (%)"
    assert "(unit not stated)" in plot_bland_altman(a, a + 1).axes[0].get_ylabel()


def _bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_roc_has_one_band_per_panel_and_counts_in_the_legend(data):
    y, a, b, _ = data
    n = f"n = {y.sum()} positive, {(1 - y).sum()} negative"
    one = plot_roc({"cnn": (y, a)}, n_resamples=100)
    assert len(one.axes) == 1 and len(_bands(one.axes[0])) == 1
    legend = one.axes[0].get_legend()
    assert legend is not None and n in legend.get_texts()[0].get_text()
    three = plot_roc({"cnn": (y, a), "qrs": (y, b), "svm": (y, a + b)}, n_resamples=100, title="ROC")
    panels = [ax for ax in three.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["cnn", "qrs", "svm"]
    for i, ax in enumerate(panels):
        (band,) = _bands(ax)  # exactly one band in each panel
        own = [ln for ln in ax.get_lines() if to_hex(ln.get_color()) == PALETTE[i].lower()]
        assert len(own) == 1 and to_hex(band.get_facecolor()[0][:3]) == PALETTE[i].lower()
        assert n in " ".join(t.get_text() for t in ax.texts)
    bare = plot_roc({"cnn": (y, a), "qrs": (y, b)}, ci_band=False)
    assert len(bare.axes) == 1 and not _bands(bare.axes[0])
    legend = bare.axes[0].get_legend()
    assert legend is not None and sum(n in t.get_text() for t in legend.get_texts()) == 2


def test_calibration_is_refused_for_a_yes_no_rule(data):
    y, a, _, _ = data
    with pytest.raises(StatsError, match="yes/no rule"):
        plot_calibration(y, (a > 0.5).astype(float))


def test_confusion_matrix_shows_counts_beside_rates_and_flags_a_class_never_predicted():
    cm = np.array([[30, 0, 2], [5, 0, 1], [4, 0, 8]])
    fig = plot_confusion({"ResNet": cm}, ["N", "S", "V"], unit="beats")
    panel = fig.axes[0]
    cells = [t.get_text().split("\n") for t in panel.texts]
    assert sorted(int(c[0]) for c in cells) == sorted(cm.ravel().tolist())
    expected = sorted(f"{v:.0%}" for v in (cm / cm.sum(axis=1, keepdims=True)).ravel())
    assert sorted(c[1] for c in cells) == expected  # each cell: its count, then its rate
    ticks = [t.get_text() for t in panel.get_xticklabels()]
    assert ticks[1].startswith("S") and "never" in ticks[1] and "never" not in ticks[0] + ticks[2]
    assert "(n = 32)" in panel.get_yticklabels()[0].get_text() and panel.get_title() == "ResNet"
    assert "count (beats)" in fig.axes[-1].get_ylabel()  # the colour bar says what the cells hold
    empty = plot_confusion({"m": [[3, 1], [0, 0]]}, ["a", "b"])
    assert ["0"] in [t.get_text().split("\n") for t in empty.axes[0].texts]  # a class with no record has no rate
    with pytest.raises(StatsError, match="shape"):
        plot_confusion({"m": cm}, ["N", "S"])
    with pytest.raises(StatsError, match="whole counts"):
        plot_confusion({"m": [[1.5, 0], [0, 1]]}, ["a", "b"])


def test_nine_models_fit_a_readable_grid():
    """Nine models: a 3 x 3 grid of panels no taller than wide (was one row per model, 24 inches tall)."""
    fig = plot_confusion({f"model {i}": [[5, 1], [2, 6]] for i in range(9)}, ["no", "yes"])
    width, height = fig.get_size_inches()
    assert height <= width < 12 and sum(ax.get_visible() for ax in fig.axes[:-1]) == 9


def test_curves_never_share_a_look_and_lines_are_never_yellow():
    styles = [(colour(i), line_style(i)) for i in range(12)]
    assert len(set(styles)) == 12 and "#F0E442" not in {c for c, _ in styles}


def _bin_counts(fig) -> list[int]:
    """The records per bin that the calibration legend states ("of 20 records" or "of 19–21 records")."""
    text = next(t.get_text() for t in fig.legends[0].get_texts() if "equal-count bins" in t.get_text())
    return [int(v) for v in text.split(" of ")[1].split(" records")[0].split("–")]


def test_calibration_bins_hold_equal_counts_and_the_legend_covers_no_point():
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 200)
    y = (rng.random(200) < p).astype(int)
    fig = plot_calibration(y, p)
    ax = fig.axes[0]
    points = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][0]
    assert np.asarray(points.get_xdata()).size == 10
    assert _bin_counts(fig) == [20]
    assert not ax.texts  # no count beside a point, where it ran into the next point's error bar
    assert ax.get_legend() is None and fig.legends  # the legend is the figure's, above the axes
    small = plot_calibration(y[:35], p[:35])
    assert min(_bin_counts(small)) >= 10  # 3 bins, not 10 of ~3
    tied = plot_calibration(y, np.round(p, 1))  # ties at the quantiles: unequal bins, their range stated
    assert len(_bin_counts(tied)) == 2 and _bin_counts(tied)[0] < _bin_counts(tied)[1]


def test_forest_plots_keep_one_scale_each_and_split_long_tables():
    rows = pd.DataFrame({"variable": [f"v{i}" for i in range(70)], "or": 1.5, "ci_low": 1.1, "ci_high": 2.0,
                         "per": ["SD"] * 40 + ["unit"] * 30})
    figures = forest_figures(rows, max_rows=30)
    assert [len(f.axes[0].get_yticklabels()) for f in figures] == [30, 10, 30]
    assert ["per SD" in f.axes[0].get_xlabel() for f in figures] == [True, True, False]
    with pytest.raises(StatsError, match="2 scales"):
        plot_forest(rows)


def _predictions(seed: int = 0, n: int = 80) -> Predictions:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    risk = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=n))))
    lvef = rng.normal(30, 6, n)
    ids, pids = [f"r{i}" for i in range(n)], [f"p{i}" for i in range(n)]
    fold = np.arange(n) % 2
    parts = [Predictions.from_arrays(ids, pids, y, risk, model="risk_model", task="crt", fold=fold),
             Predictions.from_arrays(ids, pids, y, (risk > 0.5).astype(float), model="qrs_rule", task="crt",
                                     fold=fold),
             Predictions.from_arrays(ids, pids, lvef, lvef + rng.normal(0, 3, n), model="risk_model", task="lvef",
                                     kind="regression", fold=fold)]
    table = Predictions.concat(parts).table.assign(repeat=0)
    return Predictions(table)


def test_performance_section_figures_use_display_names_and_skip_calibration_for_rules(tmp_path):
    names = {"risk_model": "Risk model", "qrs_rule": "QRS rule", "crt": "CRT response", "lvef": "LVEF (%)",
             "crt=1": "responder", "crt=0": "non-responder"}
    cfg = resolve({}, sets=(f"report.display_names={json.dumps(names)}", "stats.n_resamples=200"))
    ctx = cpu_context(tmp_path / "run")
    sections = evaluate_sections(_predictions(), cfg, ctx)
    sec = sections[0]  # the headline: ROC and Bland–Altman; calibration, decision and confusion have their own part
    assert [s.part for s in sections] == ["performance", "comparison", "calibration", "methods", "summary", "cohort"]
    assert {p.name for p in sec.figures} == {"roc_crt.png", "bland_altman_risk_model_lvef.png"}
    pngs = {p.name for s in sections for p in s.figures}
    assert {"roc_crt.png", "confusion_crt.png", "calibration_risk_model_crt.png", "decision_curve_crt.png",
            "bland_altman_risk_model_lvef.png"} == pngs  # no calibration for the yes/no rule
    assert all(p.with_suffix(".svg").is_file() for s in sections for p in s.figures)
    figs = tmp_path / "run" / "figures"
    roc = (figs / "roc_crt.svg").read_text()
    assert "Risk model" in roc and "QRS rule" in roc and "CRT response" in roc and "risk_model" not in roc
    confusion = (figs / "confusion_crt.svg").read_text()
    assert "responder" in confusion and "never" not in confusion
    assert "LVEF (%)" in (figs / "bland_altman_risk_model_lvef.svg").read_text()
    assert list(sec.tables["AUC of every model and task"].columns) == ["model", "CRT response"]
    assert {"AUC", "AUC, mean ± SD over folds"} <= set(sec.tables["AUC in detail"].columns)
    assert "Bland–Altman bias" in sec.tables["agreement in detail"].columns
    assert {"PPV", "Brier score", "calibration slope"} <= {c for s in sections for t in s.tables.values()
                                                           for c in t.columns}
    assert "**Pooled AUC below chance**" not in sec.text  # a real signal: no flag

    # no signal, scored as a model that learned only the other folds' class mix: the section flags it
    n, rng = 200, np.random.default_rng(3)
    y = (rng.random(n) < 0.4).astype(float)
    fold = rng.permutation(np.arange(n) % 20)
    null = np.array([y[fold != fold[i]].mean() for i in range(n)]) + rng.normal(0, 1e-4, n)
    flat = Predictions(Predictions.from_arrays([f"r{i}" for i in range(n)], [f"p{i}" for i in range(n)], y, null,
                                               model="risk_model", task="crt", fold=fold).table.assign(repeat=0))
    null_sec = evaluate_sections(flat, cfg, cpu_context(tmp_path / "null"))[0]
    assert "**Pooled AUC below chance**" in null_sec.text and "Risk model / CRT response" in null_sec.text

    # the report's tables show the display names of the run's config.yaml; report.json keeps the names
    run_dir = tmp_path / "run"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    meta = {k: 0 for k in report.META_KEYS} | {"plugin": "toy", "folds": ["0", "1"]}
    assert outputs.write_run(run_dir, meta, _predictions(), sections, logging.getLogger(__name__))
    md = (run_dir / "report.md").read_text()
    assert "| Risk model | CRT response |" in md and "| risk_model |" not in md
    assert "| QRS rule | LVEF (%) |" not in md and "| Risk model | LVEF (%) |" in md
    assert json.loads((run_dir / "report.json").read_text())["sections"][0]["tables"]["AUC in detail"]["data"][0][0] \
        in ("risk_model", "qrs_rule")


def test_display_table_maps_names_columns_and_subgroups():
    t = pd.DataFrame({"variable": ["lvef", "age"], "subgroup": ["sex=F", "sex=M"], "lvef": [1, 2], "p": [0.1, 0.2]})
    shown = report.display_table(t, {"lvef": "LVEF (%)", "sex": "Sex"})
    assert shown["variable"].tolist() == ["LVEF (%)", "age"]
    assert shown["subgroup"].tolist() == ["Sex=F", "Sex=M"] and "LVEF (%)" in shown.columns
    assert report.split_unit("QRS duration (ms)") == ("QRS duration", "ms") and report.split_unit("age") == ("age",
                                                                                                           None)


def _band_area(band: PolyCollection) -> float:
    """Area of a shaded band (shoelace over its outline)."""
    x, y = np.asarray(band.get_paths()[0].vertices).T
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _between(band: dict) -> float:
    """Area between a band's limits, drawn as lines between its grid points (the figure's fill)."""
    return float(np.trapezoid(band["hi"] - band["lo"], band["fpr"]))


def _patients_with_copies(seed: int = 4, n: int = 40, copies: int = 4) -> tuple[np.ndarray, ...]:
    """`n` patients, each with `copies` records of one score and label: a record bootstrap treats them as 4n."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    score = rng.normal(size=n) + y
    return np.repeat(y, copies), np.repeat(score, copies), np.repeat(np.arange(n), copies)


def test_an_roc_that_climbs_the_right_edge_shows_it_inside_the_frame():
    """Positives scored below every negative: the curve reaches 1 - specificity = 1 at sensitivity 0.75 and climbs
    the right edge to (1, 1); the axes end past 1, so that segment is drawn inside the frame, not under it."""
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    score = np.array([0.5, 0.6, 0.7, 0.8, 0.1, 0.2, 0.55, 0.65, 0.75, 0.85, 0.9, 0.95])
    ax = plot_roc({"model": (y, score)}, ci_band=False).axes[0]
    (curve,) = [ln for ln in ax.get_lines() if ln.get_linestyle() != "--"]
    x, t = np.asarray(curve.get_xdata(), float), np.asarray(curve.get_ydata(), float)
    assert x[-1] == 1 and t[-1] == 1 and ((x == 1) & (t < 1)).any()  # the climb along 1 - specificity = 1
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 0 and x1 > 1 and y0 < 0 and y1 > 1


def test_roc_band_resamples_patients_when_given_their_ids():
    from cardio_stats import roc_curve_band

    y, score, pid = _patients_with_copies()
    area = {}
    for groups in (None, pid):
        band = roc_curve_band(y, score, n_resamples=200, seed=0, groups=groups)
        area["patients" if groups is not None else "records"] = _between(band)
    assert area["patients"] > 1.5 * area["records"]  # four copies of a patient are one patient's evidence
    for curves in ({"cnn": (y, score)}, {"cnn": (y, score), "rule": (y, score > 0.5)}):
        fig = plot_roc(curves, n_resamples=200, seed=0, groups={name: pid for name in curves})
        (band,) = _bands(fig.axes[0])
        assert _band_area(band) == pytest.approx(area["patients"], rel=1e-6)
    legend = plot_roc({"cnn": (y, score)}, n_resamples=200, groups={"cnn": pid}).axes[0].get_legend()
    assert legend is not None and any("patients resampled" in t.get_text() for t in legend.get_texts())
    # the legend's own interval and n count patients too, as the band does: one figure, one unit
    from cardio_stats import delong_ci, format_ci

    texts = [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    clustered = format_ci(delong_ci(y, score, groups=pid), sep="–")
    assert clustered != format_ci(delong_ci(y, score), sep="–")
    assert any(f"AUC {clustered}" in t and "n = " in t and "patients (" in t for t in texts), texts
    assert "DeLong, patients" in texts[-1]


def test_roc_band_of_one_record_per_patient_is_the_record_band():
    """The pair's neutral control, at the same settings (160 records, 200 resamples, seed 0): where every patient has
    one record, resampling patients is resampling records, so the band is the record band, not wider."""
    from cardio_stats import roc_curve_band

    y, score, pid = _patients_with_copies(n=160, copies=1)
    records = roc_curve_band(y, score, n_resamples=200, seed=0)
    patients = roc_curve_band(y, score, n_resamples=200, seed=0, groups=pid)
    np.testing.assert_array_equal(patients["lo"], records["lo"])
    np.testing.assert_array_equal(patients["hi"], records["hi"])
    (band,) = _bands(plot_roc({"cnn": (y, score)}, n_resamples=200, seed=0, groups={"cnn": pid}).axes[0])
    (plain,) = _bands(plot_roc({"cnn": (y, score)}, n_resamples=200, seed=0).axes[0])
    assert _band_area(band) == pytest.approx(_band_area(plain), rel=1e-12)


def test_performance_roc_band_is_clustered_by_patient(tmp_path, monkeypatch):
    y, score, pid = _patients_with_copies()
    records = [f"r{i}" for i in range(y.size)]
    table = Predictions.from_arrays(records, [f"p{i}" for i in pid], y.astype(float), 1 / (1 + np.exp(-score)),
                                    model="risk_model", task="crt", fold=pid % 2).table  # one fold a patient
    ctx = cpu_context(tmp_path / "run")
    drawn = {}
    save = type(ctx).save_figure

    def keep(self, fig, name, **kw):  # the figure as drawn, then saved as the report saves it
        drawn[name] = fig
        return save(self, fig, name, **kw)

    monkeypatch.setattr(type(ctx), "save_figure", keep)
    evaluate_sections(Predictions(table.assign(repeat=0)), resolve({}, sets=("stats.n_resamples=200",)), ctx)
    (band,) = _bands(drawn["roc_crt"].axes[0])
    from cardio_stats import roc_curve_band

    clustered = roc_curve_band(y, 1 / (1 + np.exp(-score)), n_resamples=500, seed=ctx.seed, groups=pid)
    expected = _between(clustered)
    assert _band_area(band) == pytest.approx(expected, rel=1e-6)
