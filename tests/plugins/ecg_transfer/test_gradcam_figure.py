"""The Grad-CAM figure: axes in Hz and ms from the R peak, the R peak marked, perceptually uniform colormaps."""
from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np

from cardio.config import resolve
from cardio_ecg_transfer import attribution, cohort_ecg, plugin, resnet
from cardio_ecg_transfer.finetune import BeatModel
from cardio_ecg_transfer.fold_models import FoldModels
from cardio_report.figures import NOT_UNIFORM, colormaps_used
from cardio_testing.harness import cpu_context


def test_gradcam_figure_has_physical_axes_and_r_peak(tmp_path):
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=["ecg_transfer.synthetic.n_patients=10", "ecg_transfer.preprocess.max_beats_per_record=3"])
    ctx = cpu_context(tmp_path / "run")
    feats = cohort_ecg.featurize(cohort_ecg.preprocess(cohort_ecg.load(config, ctx), config, ctx), config, ctx)
    table = feats.table
    # the window spans rr_factor RR: 1.2 x RR at 50-105 bpm, R at a third of it in a regular rhythm
    assert table["window_ms"].between(1.2 * 60000 / 110, 1.2 * 60000 / 45).all()
    assert table["r_fraction"].between(0.2, 0.5).all()
    scale = attribution.window_scale(table)
    assert scale is not None  # the table has window_ms and r_fraction
    freqs, times = attribution.physical_axes(feats.stage, feats.x.shape[1:], scale)
    # the top bin is the Nyquist of the resampled window: beat_length / 2 samples over the window
    assert freqs[-1] == pytest.approx(config["ecg_transfer"]["preprocess"]["beat_length"] / 2 / (scale[0] / 1000))
    assert times[0] < 0 < times[-1] and times[0] == pytest.approx(-scale[1] * scale[0])
    model = resnet.SpectrogramResNet("resnet18", n_outputs=1).eval()
    y = table["responder"].to_numpy().astype(int)
    maps = attribution.class_maps(model, "layer2", feats.x, False)
    fig = attribution.cam_figure(feats.x, maps, y, feats.stage, "t", scale)
    axes = fig.axes[:3]
    assert axes[0].get_ylabel() == "frequency (Hz)"
    assert all(ax.get_xlabel() == "time from R peak (ms)" for ax in axes)
    assert all(any(np.allclose(line.get_xdata(), 0.0) for line in ax.get_lines()) for ax in axes)  # R peak
    used = colormaps_used(fig)
    assert used and not used & NOT_UNIFORM, used


def test_gradcam_section_without_window_timing(tmp_path):
    # window_scale is None for a beat table without window_ms and r_fraction: the figure keeps the bins' own units,
    # and the section's text did too (it indexed the None scale before)
    config = resolve(plugin.cardio_plugin_info().default_config,
                     sets=["ecg_transfer.synthetic.n_patients=10", "ecg_transfer.preprocess.max_beats_per_record=2"])
    ctx = cpu_context(tmp_path / "run")
    feats = cohort_ecg.featurize(cohort_ecg.preprocess(cohort_ecg.load(config, ctx), config, ctx), config, ctx)
    untimed = dataclasses.replace(feats, table=feats.table.drop(columns=["window_ms", "r_fraction"]))
    net = resnet.SpectrogramResNet("resnet18", n_outputs=1).eval()
    models = FoldModels(beat_models=[BeatModel("resnet18-transfer", net, 0.5, "pretrained")])
    section = attribution.explain_section(models, untimed, np.arange(len(untimed.table)), config, ctx)
    assert section is not None
    assert "cycles per window, at" in section.text and "ms from the R peak" not in section.text
    assert all(p.is_file() for p in section.figures)
