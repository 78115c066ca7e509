"""The one figure helper: a headless backend chosen once, a colour-blind-safe style, and figures saved where the
report finds them (PNG at 300 dpi for the report, SVG beside it for a journal).

Plugins build figures with `cardio_report.figures.subplots` (or `Figure`), which never touch a GUI, and
hand them to `ctx.save_figure(fig, name)`. Colours: `PALETTE` (Okabe–Ito) for lines and groups,
`SEQUENTIAL`/`CVD_SEQUENTIAL` for magnitudes, `DIVERGING` for signed differences, `CYCLIC` for phase.
"""
from __future__ import annotations

import gc
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import matplotlib

if "MPLBACKEND" not in os.environ:  # a notebook's kernel sets it: cardio_stats' figures keep working inline there
    matplotlib.use("Agg")  # the one place cardio picks a backend: runs are headless (clusters, CI)
from cycler import cycler
from matplotlib.figure import Figure

from cardio import allotted_cpus
from cardio.data.cache import atomic_path

# the one palette, defined where the statistics service's figures (which need no kernel) can reach it too
from cardio_stats.palette import CVD_SEQUENTIAL, CYCLIC, DIVERGING, NOT_UNIFORM, PALETTE, SEQUENTIAL

DPI = 300  # print resolution: journals ask for >= 300 dpi

matplotlib.rcParams.update({
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "image.cmap": SEQUENTIAL,
    "savefig.dpi": DPI,
    "svg.fonttype": "none",  # text stays text in the SVG: a journal's editor can restyle it
    "svg.hashsalt": "cardio",  # fixed element ids: the same figure gives the same SVG bytes
})

__all__ = ["Figure", "subplots", "save_figure", "figure_title", "parallel_saves", "DPI", "PALETTE", "SEQUENTIAL",
           "CVD_SEQUENTIAL", "DIVERGING", "CYCLIC", "NOT_UNIFORM", "FigureWarning", "colormaps_used"]


class FigureWarning(UserWarning):
    """A saved figure uses a colormap that is not perceptually uniform (e.g. jet)."""

def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A bare matplotlib Figure and its axes, like pyplot.subplots but without pyplot's global state."""
    subplot_kw = kwargs.pop("subplot_kw", None)
    squeeze = kwargs.pop("squeeze", True)
    sharex, sharey = kwargs.pop("sharex", False), kwargs.pop("sharey", False)
    gridspec_kw = kwargs.pop("gridspec_kw", None)
    fig = Figure(**kwargs)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, subplot_kw=subplot_kw, sharex=sharex, sharey=sharey,
                        gridspec_kw=gridspec_kw)
    return fig, axes


def colormaps_used(fig: Any) -> set[str]:
    """Names of the colormaps of every image, mesh and scatter in a figure (without a `_r` suffix)."""
    names = set()
    for ax in fig.axes:
        for artist in [*ax.images, *ax.collections]:
            cmap = getattr(artist, "cmap", None) if artist.get_array() is not None else None
            if cmap is not None:
                names.add(cmap.name.removesuffix("_r"))
    return names


def save_figure(fig: Any, path: str | Path, dpi: int = DPI, svg: bool = True, caption: str | None = None) -> Path:
    """Save a Figure as PNG at `dpi` (tight bounding box) and, with `svg`, as SVG beside it; release it.

    Returns the PNG's path (the report embeds it). A path with another suffix (.pdf, .svg) is written in
    that format alone. A colormap that is not perceptually uniform raises a FigureWarning naming it.
    The caption goes into the file's Description (PNG text chunk, SVG metadata), where the report reads it;
    without one, the figure's title stands in.
    """
    path = Path(path)
    caption = caption or figure_title(fig)
    fmt = path.suffix.lstrip(".").lower() or "png"
    bad = sorted(colormaps_used(fig) & NOT_UNIFORM)
    if bad:
        warnings.warn(f"figure {path.stem} uses colormap(s) {', '.join(bad)}, which are not perceptually uniform "
                      f"nor colour-blind-safe; use cardio_report.figures.SEQUENTIAL ({SEQUENTIAL}) or DIVERGING "
                      f"({DIVERGING})", FigureWarning, stacklevel=2)
    if _saver is not None and _saver.submit(fig, path, dpi, svg, caption):
        return path
    _write(fig, path, fmt, dpi, svg, caption)
    return path


def figure_title(fig: Any) -> str:
    """The figure's suptitle, else its first axes title ('' when it has neither)."""
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        return " ".join(suptitle.get_text().split())
    titles = [ax.get_title(loc).strip() for ax in fig.axes for loc in ("center", "left")]
    return " ".join(next((t for t in titles if t), "").split())


def _write(fig: Any, path: Path, fmt: str, dpi: int, svg: bool, caption: str = "") -> None:
    """Render the figure into its file(s) and release it."""

    targets = [(path, fmt)] + ([(path.with_suffix(".svg"), "svg")] if svg and fmt == "png" else [])
    for target, kind in targets:
        # no creation date in the SVG (with svg.hashsalt): the same figure gives the same bytes
        meta: dict | None = {"Date": None} if kind == "svg" else None
        if caption and kind in ("png", "svg"):
            meta = {**(meta or {}), "Description": caption}
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=kind, metadata=meta)
    if "matplotlib.pyplot" in sys.modules:  # a pyplot figure stays in its registry until closed
        import matplotlib.pyplot as plt

        plt.close(fig)


def _render_child(fig: Any, path: Path, fmt: str, dpi: int, svg: bool, caption: str, errors: Any) -> None:
    """A forked worker's part of parallel_saves: this one figure, then the process ends. An error goes back to the
    parent whole (a full disk stays the one line that names the file), not as a traceback on stderr."""
    # no cyclic collection in a process that lives for one figure: it would walk the parent's whole heap and copy
    # each page it touches (10% fewer page faults in perfusion_polar's evaluate, where measured once)
    gc.disable()
    try:
        _write(fig, path, fmt, dpi, svg, caption)
    except BaseException as e:  # every error is the parent's to raise
        try:
            errors.send(e)
        except Exception:  # an exception that does not pickle: its text
            errors.send(OSError(f"{path}: {type(e).__name__}: {e}"))
        sys.exit(1)


class _Saver:
    """The worker processes of a parallel_saves block: one forked per figure, at most `workers` at once.

    Forked, not pooled: each figure renders in a copy of this process as it was when the figure was handed over
    (nothing pickled, nothing re-imported), so which worker took which figure never shows in the files
    (matplotlib's text layout keeps state across the figures one process draws)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self.fork = (multiprocessing.get_context("fork")
                     if "fork" in multiprocessing.get_all_start_methods() else None)
        self.running: list[tuple[Any, Path, Any]] = []
        self.failed: list[str] = []
        self.errors: list[BaseException] = []

    def submit(self, fig: Any, path: Path, dpi: int, svg: bool, caption: str = "") -> bool:
        """Hand the figure to a new worker; False where the OS cannot fork (then the caller saves it here)."""
        if self.fork is None:
            return False
        while len(self.running) >= self.workers:
            self._reap(block=True)
        fmt = path.suffix.lstrip(".").lower() or "png"
        # the worker only renders with matplotlib: no torch, no CUDA, none of the parent's threads are used there
        receive, send = self.fork.Pipe(duplex=False)
        proc = self.fork.Process(target=_render_child, args=(fig, path, fmt, dpi, svg, caption, send), daemon=True)
        proc.start()
        send.close()
        self.running.append((proc, path, receive))
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close(fig)
        return True

    def _reap(self, block: bool) -> None:
        from multiprocessing.connection import wait

        if block and self.running:
            wait([proc.sentinel for proc, _, _ in self.running])
        still = []
        for proc, path, receive in self.running:
            if proc.is_alive():
                still.append((proc, path, receive))
                continue
            proc.join()
            if proc.exitcode != 0:
                if receive.poll():
                    self.errors.append(receive.recv())
                self.failed.append(f"{path} (exit code {proc.exitcode})")
            receive.close()
        self.running = still

    def finish(self, raise_errors: bool = True) -> None:
        """Wait for every file; an error naming each figure not written is raised then (where `raise_errors`)."""
        while self.running:
            self._reap(block=True)
        if self.failed and raise_errors:
            if self.errors:  # the first figure's own error, as a save in this process would have raised it
                raise self.errors[0]
            raise OSError(f"{len(self.failed)} figure(s) could not be written: {'; '.join(self.failed)}")


_saver: _Saver | None = None


@contextmanager
def parallel_saves(workers: int | None = None) -> Iterator[None]:
    """Inside this block save_figure hands each figure to a worker process, at most `workers` at once (the CPUs
    this process may use, by default), and returns at once, so figures render side by side while the caller
    goes on; the block ends when every file is written (an error naming each figure that was not is raised
    then). The pictures are save_figure's: the PNGs byte for byte where measured, an SVG's label may sit a few
    points apart (matplotlib's text layout depends on what the process drew before). With one CPU, nested in
    another block, or where the OS cannot fork, figures save as usual."""
    global _saver

    n = allotted_cpus() if workers is None else int(workers)
    if n < 2 or _saver is not None:
        yield
        return
    saver = _saver = _Saver(n)
    try:
        yield
    except BaseException:
        _saver = None
        saver.finish(raise_errors=False)  # the block's own error is the one to see
        raise
    _saver = None
    saver.finish()
