"""Grad-CAM++ maps of the trained networks, their overlays on the M-modes, and an attention score.

Maps come from `cardio_report.explain.grad_cam(plus=True)` on the last dense block (8 x 8 for a 256 x 256
input), each normalized to [0, 1] with high = attention and upsampled to the input; the raw maps
(before scaling, at the block's resolution) are kept beside them. The attention score, beyond the
paper, is the share of a map's mass inside the true SF window (time) and the septal depth band
(depth): for SF patients their planted or annotated window, for the others the MVC-AVO interval
where a flash would be. A map spread evenly scores the box's share of the image area. Classes are
the run's label's (SF / non-SF by default; e.g. responder / non-responder with label=responder).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio_report.figures import SEQUENTIAL, subplots


def class_names(label: str) -> tuple[str, str]:
    """(positive, negative) class names of a label: SF / non-SF for septal_flash, else e.g. responder /
    non-responder."""
    return ("SF", "non-SF") if label == "septal_flash" else (label, f"non-{label}")


def box(row: pd.Series, variant: str, depth_band: tuple[float, float]) -> tuple[float, float, float, float]:
    """(depth0, depth1, time0, time1) of the SF box, shares of the variant's image (cropped: upper-left quarter)."""
    d0, d1 = (float(v) for v in depth_band)
    t0, t1 = row["window_start_ms"] / row["cycle_ms"], row["window_end_ms"] / row["cycle_ms"]
    if variant == "cropped":  # the crop keeps the upper half in depth and the first half of the cycle
        d0, d1, t0, t1 = 2 * d0, 2 * d1, 2 * t0, 2 * t1
    d0, d1, t0, t1 = (float(np.clip(v, 0.0, 1.0)) for v in (d0, d1, t0, t1))
    return d0, d1, t0, t1


def _slices(shape: tuple[int, int], b: tuple[float, float, float, float]) -> tuple[slice, slice]:
    h, w = shape
    return (slice(int(np.floor(b[0] * h)), int(np.ceil(b[1] * h))),
            slice(int(np.floor(b[2] * w)), int(np.ceil(b[3] * w))))


def attention_score(cam: np.ndarray, b: tuple[float, float, float, float]) -> float:
    """Share of a (depth, time) map's mass inside box b (shares of its extent); NaN for an all-zero map."""
    total = float(cam.sum())
    if total <= 0:
        return float("nan")
    rows, cols = _slices(cam.shape, b)
    return float(cam[rows, cols].sum()) / total


def area_share(shape: tuple[int, int], b: tuple[float, float, float, float]) -> float:
    """The box's share of the image: the score of an evenly spread map."""
    rows, cols = _slices(shape, b)
    return len(range(*rows.indices(shape[0]))) * len(range(*cols.indices(shape[1]))) / float(shape[0] * shape[1])


def maps(model, variant: str, images: np.ndarray, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM++ of the predicted class for (n, s, s) uint8 M-modes: (normalized (n, s, s), raw (n, h, w))."""
    import torch

    from cardio_report.explain import grad_cam

    net, inputs = model.nets[variant], model.inputs[variant]
    x = torch.stack([inputs(torch.as_tensor(im, dtype=torch.float32)) for im in images])
    return grad_cam(net.cpu(), net.last_block, x, target=None, plus=True, batch_size=batch_size, raw=True)


def score_table(table: pd.DataFrame, cams: np.ndarray, variant: str, depth_band,
                label: str = "septal_flash") -> pd.DataFrame:
    """One row per explained record: true class (column `label`, NaN when unlabelled), attention score and the
    box's area share."""
    rows = []
    for (_, row), cam in zip(table.iterrows(), cams):
        b = box(row, variant, depth_band)
        rows.append({"record_id": row["record_id"], "patient_id": row.get("patient_id", row["record_id"]),
                     label: float(row[label]),  # NaN: unlabelled
                     "score": attention_score(cam, b), "area_share": area_share(cam.shape, b)})
    return pd.DataFrame(rows)


def summarize(scores: pd.DataFrame, variant: str, level: float, label: str = "septal_flash") -> list[dict]:
    """Mean attention score per class with the log-scale t interval of a mean of positive values, patients the units
    (cardio_stats.log_t_estimate), and the even-spread reference. The percentile bootstrap these rows had missed
    6.5-9.5% of the mean of Beta-distributed scores at 12-40 patients a class (13.7% where most scores lie near
    0), the log-t 3.5-5.6% (8.1%): docs/statistics.md, "mmode_septal_flash's attention score"."""
    out = []
    for cls, name in zip((1, 0), class_names(label)):
        rows = scores.loc[(scores[label] == cls) & scores["score"].notna()]
        if len(rows) < 2:
            continue
        est = stats.log_t_estimate(rows["score"].to_numpy(), "attention_score", level, rows["patient_id"].to_numpy())
        area = float(scores.loc[scores[label] == cls, "area_share"].mean())
        out.append({**est.to_dict(), "model": f"densenet121-{variant}", "task": label, "group": name,
                    "area_share": area})
    return out


def overlay_figure(mmodes: np.ndarray, cams: np.ndarray, table: pd.DataFrame, probs: np.ndarray, variant: str,
                   depth_band, title: str, label: str = "septal_flash", called: np.ndarray | None = None):
    """M-modes with their upsampled Grad-CAM++ maps, MVC and AVO marked, the SF box outlined; the label's positive
    class on top (SF), its negative class below (non-SF). With `called` (each record's predicted class, 1/0: the
    paper's Figure 3 of wrong calls), one row in the given order, each titled with its prediction and its truth."""
    import cv2
    from matplotlib.patches import Rectangle

    y = table[label].to_numpy()
    # SF patients on top, the others below; the wrong calls in one row
    groups = [np.flatnonzero(y == 1), np.flatnonzero(y == 0)] if called is None else [np.arange(len(y))]
    pos, neg = class_names(label)
    n = max(1, *(len(g) for g in groups))
    fig, axes = subplots(len(groups), n, figsize=(3.2 * n, 3.3 * len(groups) + 0.6 * (called is not None)),
                         layout="constrained", squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    cells = [(axes[r, c], i) for r, g in enumerate(groups) for c, i in enumerate(g)]
    for ax, i in cells:
        mm, cam, row, p = mmodes[i], cams[i], table.iloc[i], probs[i]
        ax.set_axis_on()
        img = mm[: mm.shape[0] // 2, : mm.shape[1] // 2] if variant == "cropped" else mm
        h, w = img.shape
        span_ms = row["cycle_ms"] / (2 if variant == "cropped" else 1)
        ax.imshow(img, cmap="gray", extent=(0, span_ms, h, 0), aspect="auto")
        ax.imshow(cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR), cmap=SEQUENTIAL, alpha=0.45, vmin=0, vmax=1,
                  extent=(0, span_ms, h, 0), aspect="auto")
        for t, name, style, at in ((row["mvc_ms"], "MVC", "-", 0.02), (row["avo_ms"], "AVO", "--", 0.1)):
            ax.axvline(t, color="white", ls=style, lw=1)
            ax.text(t, h * at, f" {name}", color="white", fontsize=7, va="top")
        d0, d1, t0, t1 = box(row, variant, depth_band)
        ax.add_patch(Rectangle((t0 * span_ms, d0 * h), (t1 - t0) * span_ms, (d1 - d0) * h, fill=False, ec="lime", lw=1))
        sep = ": " if len(pos) <= 2 else ":\n"  # a long class name (responder) on its own line: titles stay apart
        truth = pos if row[label] else neg
        ax.set_title(f"{row['patient_id']}{sep}{truth}, p({pos})={p:.2f}" if called is None else
                     f"{row['patient_id']}\npred: {pos if called[i] else neg}, gt: {truth}, p({pos})={p:.2f}",
                     fontsize=8)
        ax.set_xlabel("ms after R")
        ax.set_yticks([])
    for r in range(len(groups)):
        axes[r, 0].set_ylabel(("wrong calls" if called is not None else pos if r == 0 else neg)
                              + "\ndepth: RV -> septum -> LV")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig.colorbar(ScalarMappable(Normalize(0, 1), SEQUENTIAL), ax=axes, shrink=0.6,
                 label="Grad-CAM++, normalized (high = attention)")
    fig.suptitle(title, fontsize=9)
    return fig
