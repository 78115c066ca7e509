"""Which time-frequency regions of a beat drive the response prediction (Grad-CAM via cardio_report.explain)."""
from __future__ import annotations

import numpy as np
import torch

from cardio import Section
from cardio_ecg_transfer.cohort_ecg import BeatImages
from cardio_ecg_transfer.settings import EcgSettings
from cardio_report.explain import grad_cam
from cardio_report.figures import DIVERGING, SEQUENTIAL, Figure, subplots


def class_maps(model, layer_name: str, x: np.ndarray, plus: bool) -> np.ndarray:
    """Grad-CAM maps (N, F, T) of the response logit (output 0) for beat spectrograms x (N, F, T)."""
    layer = getattr(model.net, layer_name)
    # Gradients must reach the layer even when fine-tuning froze it: let them flow from the input.
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32)).unsqueeze(1).requires_grad_(True)
    return grad_cam(model.cpu(), layer, inputs, target=0, plus=plus)


def explain_section(fold_models, features, index: np.ndarray, config: dict, ctx) -> Section | None:
    """Average CAM over responder and non-responder test beats, drawn over their mean spectrograms."""
    s = EcgSettings.of(config)
    gc = s.gradcam
    wanted = "transfer" if gc.model == "transfer" else "scratch"
    beat_model = next((m for m in fold_models.beat_models if m.name.endswith(wanted)), None)
    if beat_model is None:
        return None
    index = np.asarray(index)
    index = index[features.table[features.label].notna().to_numpy()[index]]  # beats of patients with a label
    rng = np.random.default_rng(ctx.seed)
    if gc.max_beats and len(index) > gc.max_beats:
        index = np.sort(rng.choice(index, size=gc.max_beats, replace=False))
    x = features.x[index]
    y = features.table[features.label].to_numpy()[index].astype(int)
    if len(np.unique(y)) < 2:
        return Section("ecg_transfer: where the ResNet looks",
                       "The explained fold's test beats hold one class only; no Grad-CAM comparison.")
    maps = class_maps(beat_model.model, gc.layer, x, gc.plus)
    title = f"{beat_model.name}, {'Grad-CAM++' if gc.plus else 'Grad-CAM'} at {gc.layer}"
    path = ctx.save_figure(cam_figure(x, maps, y, features.stage, title, window_scale(features.table.iloc[index])),
                           f"gradcam_{wanted}", caption=(
                               f"Mean Grad-CAM of {beat_model.name}'s response output over {len(index)} test beats "
                               "of responders and of non-responders, with each group's mean log spectrogram as "
                               "contours; bright regions raised the predicted probability of response."))
    peak: dict[str, tuple[int, int]] = {}
    for label, name in ((1, "responders"), (0, "non-responders")):
        m = maps[y == label].mean(axis=0)
        f, t = np.unravel_index(int(np.argmax(m)), m.shape)
        peak[name] = (int(f), int(t))
    scale = window_scale(features.table.iloc[index])
    fr, tr = physical_axes(features.stage, x.shape[1:], scale)
    text = (f"Grad-CAM of the response output of `{beat_model.name}` (layer `{gc.layer}`) on {len(index)} test "
            f"beats of {ctx.fold or 'the last fold'} ({int((y == 1).sum())} from responders, "
            f"{int((y == 0).sum())} from non-responders), averaged per group; the mean log spectrogram of each "
            "group is drawn as contours. "
            "Bright regions raised the predicted probability of response. Each beat window spans "
            f"{s.preprocess.rr_factor} RR and is resampled to a fixed length, so its bins "
            "are in cycles per window; " + _peaks_text(scale, fr, tr, peak))
    return Section("ecg_transfer: where the ResNet looks (Grad-CAM)", text, [path])


def _peaks_text(scale: tuple[float, float] | None, fr: np.ndarray, tr: np.ndarray,
                peak: dict[str, tuple[int, int]]) -> str:
    """Where each group's map peaks: in Hz and ms from the R peak at the median window `scale`, or in the bins'
    own units when the beat table holds no window timing (scale None)."""
    if scale is None:
        return ("the beats carry no window timing, so the axes keep these units. The maps peak at "
                + "; ".join(f"{k}: {fr[f]:.1f} cycles per window, at {tr[t]:.2f} of the window"
                            for k, (f, t) in peak.items()) + ".")
    return ("the axes give them in Hz and in ms from the R peak (dashed line) at the median window of the beats "
            f"shown, {scale[0]:.0f} ms, with the R peak at {scale[1]:.2f} of it. The maps peak at "
            + "; ".join(f"{k}: {fr[f]:.1f} Hz, {tr[t]:+.0f} ms from the R peak" for k, (f, t) in peak.items()) + ".")


def _axes(images: BeatImages | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frequency (cycles per beat window) and time (fraction of the window) of each spectrogram bin."""
    freqs = np.asarray(images.freqs if images is not None else np.arange(shape[0]), dtype=float)
    times = np.asarray(images.times if images is not None else np.arange(shape[1]), dtype=float)
    if len(freqs) != shape[0]:
        freqs = np.arange(shape[0], dtype=float)
    if len(times) != shape[1]:
        times = np.arange(shape[1], dtype=float)
    return freqs, times


def window_scale(rows) -> tuple[float, float] | None:
    """(median window length in ms, median R-peak position as a fraction of the window) of these beat rows, or
    None when the table lacks the timing columns."""
    if "window_ms" not in rows or "r_fraction" not in rows or not len(rows):
        return None
    return float(np.median(rows["window_ms"])), float(np.median(rows["r_fraction"]))


def physical_axes(images: BeatImages | None, shape: tuple[int, int],
                  scale: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres in Hz and ms from the R peak at a window of scale[0] ms (cycles per window and window
    fractions when scale is None)."""
    freqs, times = _axes(images, shape)
    if scale is None:
        return freqs, times
    window_ms, r_fraction = scale
    return freqs / (window_ms / 1000.0), (times - r_fraction) * window_ms


def cam_figure(x: np.ndarray, maps: np.ndarray, y: np.ndarray, images: BeatImages | None, title: str,
               scale: tuple[float, float] | None = None) -> Figure:
    """Mean CAM of responders' and non-responders' beats (their mean spectrogram as contours), and the
    difference; axes in Hz and ms from the R peak at the median window `scale` (see window_scale)."""
    freqs, times = physical_axes(images, x.shape[1:], scale)
    extent = [times[0], times[-1], freqs[0], freqs[-1]]
    xlabel = "time from R peak (ms)" if scale else "time (fraction of beat window)"
    ylabel = "frequency (Hz)" if scale else "frequency (cycles per beat window)"
    fig, axes = subplots(1, 3, figsize=(11, 3.4), layout="constrained", sharey=True)
    for ax, label, name in ((axes[0], 1, "responders"), (axes[1], 0, "non-responders")):
        spec = x[y == label].mean(axis=0)
        cam = maps[y == label].mean(axis=0)
        cs = ax.imshow(cam, origin="lower", aspect="auto", extent=extent, cmap=SEQUENTIAL, vmin=0, vmax=1)
        ax.contour(times, freqs, spec, levels=4, colors="white", linewidths=0.6, alpha=0.8)
        ax.set_title(f"{name} (n={int((y == label).sum())} beats)", fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    fig.colorbar(cs, ax=axes[:2], shrink=0.8, label="mean Grad-CAM (0-1)")
    diff = maps[y == 1].mean(axis=0) - maps[y == 0].mean(axis=0)
    lim = float(np.abs(diff).max()) or 1.0
    im = axes[2].imshow(diff, origin="lower", aspect="auto", extent=extent, cmap=DIVERGING, vmin=-lim, vmax=lim)
    axes[2].set_title("responders - non-responders", fontsize=9)
    axes[2].set_xlabel(xlabel)
    fig.colorbar(im, ax=axes[2], shrink=0.8, label="difference in mean Grad-CAM")
    r_at = 0.0 if scale else 1.0 / 3.0
    for ax in axes:
        ax.axvline(r_at, color="#E69F00", linestyle="--", linewidth=1.0)
    axes[0].annotate("R peak", (r_at, freqs[-1]), xytext=(3, -10), textcoords="offset points", color="#E69F00",
                     fontsize=8)
    fig.suptitle(f"{title} (white contours: mean log spectrogram)", fontsize=10)
    return fig
