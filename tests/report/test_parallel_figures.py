"""cardio_report.figures.parallel_saves: figures rendered by worker processes are the files save_figure writes
itself, byte for byte, all written when the block ends; any figure (a lambda formatter too) renders in a worker, and a
worker's error surfaces when the block ends (issue 40: figures were ~70% of the evaluate stage)."""
import numpy as np
import pytest

from cardio_report.figures import parallel_saves, save_figure, subplots
from cardio_stats.figures import plot_confusion, plot_roc


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
