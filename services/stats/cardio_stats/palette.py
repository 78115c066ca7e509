"""The project's colours, one definition: the statistics figures (cardio_stats.figures) draw with them and the
kernel's figure helper (cardio_report.figures) styles every other figure with them. Plain strings, no matplotlib."""
from __future__ import annotations

# Okabe & Ito (2008), "Color universal design": distinguishable with every common colour-vision deficiency.
# Yellow (#F0E442) is last: it is faint on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
SEQUENTIAL = "viridis"       # perceptually uniform, readable in grey and with colour-vision deficiency
CVD_SEQUENTIAL = "cividis"   # optimized for deuteranopia and protanopia
DIVERGING = "berlin"         # Crameri's perceptually uniform diverging map (zero is dark), colour-blind-safe
CYCLIC = "twilight"          # perceptually uniform and cyclic: phase angles
# Colormaps whose lightness jumps or bands (false edges) and whose hues collide with colour-vision deficiency.
NOT_UNIFORM = frozenset({"jet", "rainbow", "gist_rainbow", "hsv", "nipy_spectral", "gist_ncar", "turbo", "prism",
                         "flag", "brg", "gist_stern", "Spectral", "CMRmap", "gnuplot", "gnuplot2"})
