"""The AHA-17 bull's-eye as a report saves it (PNG at 300 dpi, SVG beside it): its map is embedded in the SVG as one
image, not drawn as a path per cell, and the PNG is the same as the all-vector drawing's."""
from __future__ import annotations

import numpy as np

from cardio_imaging import aha17
from cardio_report.figures import save_figure


def test_the_map_is_one_image_in_the_svg_and_the_png_is_unchanged(tmp_path):
    values = np.linspace(0.5, 3.5, 17)  # 17 segment values: painted on a 60 x 120 grid, 7,200 cells
    saved: dict[bool, tuple[bytes, str]] = {}
    for rasterized in (True, False):
        fig = aha17.bullseye(values, title="MFR", label="MFR")
        (mesh,) = [c for ax in fig.axes for c in ax.collections
                   if (cells := c.get_array()) is not None and cells.size == 60 * 120]
        assert mesh.get_rasterized()  # as bullseye draws it
        mesh.set_rasterized(rasterized)
        path = save_figure(fig, tmp_path / f"bullseye_{rasterized}.png")
        saved[rasterized] = (path.read_bytes(), path.with_suffix(".svg").read_text())
    (png, svg), (vector_png, vector_svg) = saved[True], saved[False]
    assert png == vector_png
    assert svg.count("<image") == vector_svg.count("<image") + 1  # the map (the colorbar's strip is one in both)
    assert svg.count("<path") < 200 < 7200 <= vector_svg.count("<path"), (svg.count("<path"),
                                                                          vector_svg.count("<path"))
    assert len(svg) < len(vector_svg) / 3
