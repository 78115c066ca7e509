"""cardio_report.figures.parallel_saves: figures rendered by worker processes are the files save_figure writes
itself, byte for byte, all written when the block ends; any figure (a lambda formatter too) renders in a worker, and a
worker's error surfaces when the block ends (issue 40: figures were ~70% of the evaluate stage)."""
import os

import numpy as np
import pytest
from matplotlib.artist import Artist

from cardio import allotted_cpus, hookimpl
from cardio_report.figures import Figure, parallel_saves, save_figure, subplots
from cardio_stats.figures import plot_confusion, plot_roc
from cardio_testing.harness import run_plugin


def _figures():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    score = np.clip(rng.random(60) * 0.6 + 0.4 * y, 0, 1)
    return {"roc": plot_roc({"a": (y, score), "b": (y, score ** 2)}, n_resamples=50),
            "confusion": plot_confusion({"a": np.array([[10, 5], [3, 12]])}, ["no", "yes"])}


def test_parallel_saves_write_the_same_bytes(tmp_path):
    (tmp_path / "serial").mkdir()
    (tmp_path / "parallel").mkdir()
    for name, fig in _figures().items():
        save_figure(fig, tmp_path / "serial" / f"{name}.png")
    with parallel_saves(workers=2):
        for name, fig in _figures().items():
            assert save_figure(fig, tmp_path / "parallel" / f"{name}.png") == tmp_path / "parallel" / f"{name}.png"
        local = subplots()[0]
        local.gca().xaxis.set_major_formatter(lambda x, pos: f"{x:.1f}")  # no pickling: a lambda is fine
        save_figure(local, tmp_path / "parallel" / "local.png", svg=False)
    files = sorted(p.name for p in (tmp_path / "serial").iterdir())
    assert files == ["confusion.png", "confusion.svg", "roc.png", "roc.svg"]
    for name in files:
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name
    assert (tmp_path / "parallel" / "local.png").stat().st_size > 0


def test_a_workers_error_is_raised_when_the_block_ends(tmp_path):
    fig = _figures()["confusion"]
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(OSError), parallel_saves(workers=2):
        save_figure(fig, tmp_path / "a file" / "confusion.png")  # returns; the worker fails


class _Where(Artist):
    """Writes the id of the process that draws it."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path

    def draw(self, renderer) -> None:
        self.path.write_text(str(os.getpid()))


class ExplainFigure:
    """An add-on that saves one figure inside the explain stage (around the toy plugin's cardio_explain)."""

    __name__ = "explain_figure"

    def __init__(self, path) -> None:
        self.path = path

    @hookimpl(wrapper=True)
    def cardio_explain(self, model, features, index, config, ctx):
        fig = Figure()
        fig.add_artist(_Where(self.path))
        ctx.save_figure(fig, "where")
        return (yield)


def test_the_explain_stages_figures_render_in_workers(toy_site, tmp_path, monkeypatch):
    """The explain stage's figures render side by side in forked workers, as evaluate's do (spect_polar's toy run:
    its explain 6.4 -> 2.7 s on 2 cores), and are written when the stage ends."""
    if allotted_cpus() < 2:
        pytest.skip("one CPU allotted: figures save in the run's process")
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
    where = tmp_path / "pid"
    run = run_plugin("toy", tmp_path / "r", sets=["train.epochs=1", "report.figures=false"],
                     register=[ExplainFigure(where)])
    assert (run / "figures" / "where.png").is_file() and (run / "figures" / "where.svg").is_file()
    assert int(where.read_text()) != os.getpid()
