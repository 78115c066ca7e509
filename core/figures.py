"""The one figure helper: a headless backend chosen once, and figures saved where the report finds them.

Plugins build figures with `cardio.figures.subplots` (or `Figure`), which never touch a GUI, and
hand them to `ctx.save_figure(fig, name)`.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the one place cardio picks a backend: runs are headless (clusters, CI)
from matplotlib.figure import Figure

DPI = 120

__all__ = ["Figure", "subplots", "save_figure", "DPI"]


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


def save_figure(fig: Any, path: str | Path, dpi: int = DPI) -> Path:
    """Save a Figure as PNG (tight bounding box) and release it, pyplot's or not."""
    from cardio.cache import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    if "matplotlib.pyplot" in sys.modules:  # a pyplot figure stays in its registry until closed
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path
