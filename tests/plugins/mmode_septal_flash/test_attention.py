"""The attention score on planted maps, and Grad-CAM++ of the DenseNet-121's last dense block (8 x 8 at 256 x 256)."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_mmode_septal_flash")

import numpy as np
import pandas as pd
import torch

from cardio_mmode_septal_flash import attention
from cardio_mmode_septal_flash.model import SeptalFlashNet
from cardio_mmode_septal_flash.training import Inputs, SeptalFlashModel

ROW = pd.Series({"record_id": "A", "patient_id": "A", "septal_flash": 1, "cycle_ms": 800.0,
                 "window_start_ms": 80.0, "window_end_ms": 160.0, "mvc_ms": 50.0, "avo_ms": 170.0})


def test_box_of_each_variant():
    assert attention.box(ROW, "full", (0.2, 0.4)) == pytest.approx((0.2, 0.4, 0.1, 0.2))
    # the cropped image is the upper half in depth and the first half of the cycle: shares double
    assert attention.box(ROW, "cropped", (0.2, 0.4)) == pytest.approx((0.4, 0.8, 0.2, 0.4))
    late = ROW.copy()
    late["window_end_ms"] = 700.0
    assert attention.box(late, "cropped", (0.2, 0.6))[1] == 1.0 and attention.box(late, "cropped", (0.2, 0.6))[3] == 1.0


def test_attention_score_on_planted_maps():
    b = attention.box(ROW, "full", (0.2, 0.4))  # rows 20-40, columns 10-20 of a 100 x 100 map
    cam = np.zeros((100, 100))
    cam[20:40, 10:20] = 1.0
    assert attention.attention_score(cam, b) == pytest.approx(1.0)
    cam[60:80, 50:60] = 1.0  # as much mass elsewhere
    assert attention.attention_score(cam, b) == pytest.approx(0.5)
    uniform = np.ones((100, 100))
    assert attention.attention_score(uniform, b) == pytest.approx(attention.area_share(uniform.shape, b)) \
        == pytest.approx(0.02)
    assert np.isnan(attention.attention_score(np.zeros((10, 10)), b))
    table = pd.DataFrame([ROW, ROW.copy().replace({"A": "B", 1: 0})])
    scores = attention.score_table(table, np.stack([cam, uniform]), "full", (0.2, 0.4))
    assert scores["score"].tolist() == pytest.approx([0.5, 0.02]) and scores["septal_flash"].tolist() == [1, 0]
    est = attention.summarize(pd.concat([scores] * 3), "full", 0.95)
    assert [e["group"] for e in est] == ["SF", "non-SF"] and est[0]["estimate"] == pytest.approx(0.5)
    # one patient's score, three times: no interval (one patient is no sample of patients)
    assert est[0]["ci_low"] is None and est[0]["ci_high"] is None and est[1]["area_share"] == pytest.approx(0.02)
    assert est[0]["warnings"] == ["no interval: fewer than 2 patients"]


def test_attention_score_interval_is_the_log_t_with_patients_the_units():
    """Two records of each of six patients: the interval is the log-scale t of the mean with the per-patient
    variance, 5 df (cardio_stats.log_t_estimate), not a record-level one."""
    from scipy.stats import t as t_dist

    score = np.array([0.30, 0.32, 0.10, 0.12, 0.50, 0.48, 0.20, 0.22, 0.40, 0.38, 0.25, 0.27])
    scores = pd.DataFrame({"record_id": [f"R{i}" for i in range(12)], "patient_id": np.repeat(list("ABCDEF"), 2),
                           "septal_flash": 1.0, "score": score, "area_share": 0.02})
    est = attention.summarize(scores, "full", 0.95)[0]
    m = score.mean()
    sums = np.bincount(np.repeat(np.arange(6), 2), weights=score - m)
    se = np.sqrt(6 / 5 * (sums @ sums)) / 12
    q = t_dist.ppf(0.975, 5)
    assert (est["estimate"], est["ci_low"], est["ci_high"]) == pytest.approx((m, m * np.exp(-q * se / m),
                                                                              m * np.exp(q * se / m)))
    assert est["extra"]["n_groups"] == 6 and est["method"] == "t on the log scale, patient-clustered SE"


def test_gradcampp_maps_of_the_last_dense_block(one_thread):
    torch.manual_seed(0)
    net = SeptalFlashNet().eval()
    assert net.source.startswith("none")
    model = SeptalFlashModel({"full": net}, {"full": Inputs(np.full((256, 256), 0.3, np.float32))}, net.source)
    images = np.random.default_rng(0).integers(0, 256, (2, 256, 256)).astype(np.uint8)
    cams, raw = attention.maps(model, "full", images)
    assert cams.shape == (2, 256, 256) and raw.shape == (2, 8, 8)  # the paper's 8 x 8 for a 256 x 256 input
    assert cams.min() >= 0 and cams.max() == pytest.approx(1.0, abs=1e-4) and (raw >= 0).all()
