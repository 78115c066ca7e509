"""Per-output selection (each output keeps the weights of its own best validation epoch) and the core's split."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr.model import BINARY_HEADS, HEADS
from cardio_echo_cmr.selection import BestPerHead, select_nets
from cardio_echo_cmr.training import split_rows


def _epoch(net: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        net.weight.fill_(value)


def test_each_output_keeps_the_weights_of_its_own_best_epoch():
    rng = np.random.default_rng(0)
    y = np.stack([rng.integers(0, 2, 40).astype(float) if h in BINARY_HEADS else rng.normal(size=40)
                  for h in HEADS], 1)
    y[:10, HEADS.index("lge")] = np.nan                     # a missing label is left out of its output's score
    net = torch.nn.Linear(1, 1)
    sel = BestPerHead(net)
    wma, lge, t1 = HEADS.index("wma"), HEADS.index("lge"), HEADS.index("t1_ms")
    good = {"wma": (1,), "lge": (2,), "t1_ms": (3,)}         # the epoch at which each output predicts its label
    for epoch in (1, 2, 3, 4):
        _epoch(net, float(epoch))
        out = rng.normal(size=y.shape)
        for head, j in (("wma", wma), ("lge", lge), ("t1_ms", t1)):
            if epoch in good[head]:
                out[:, j] = np.nan_to_num(y[:, j])
        sel(y, out)
    nets, best = select_nets(net, sel)
    assert best["wma"] == 1 and best["lge"] == 2 and best["t1_ms"] == 3
    for head in ("wma", "lge", "t1_ms"):   # the weights kept are those of that epoch
        assert float(nets[best[head]].weight.detach()) == best[head]
    assert set(nets) == set(best.values())  # a checkpoint no output uses is dropped


def test_the_engine_stops_when_no_output_improves():
    sel = BestPerHead(torch.nn.Linear(1, 1))
    y = np.tile([[0.0] * len(BINARY_HEADS) + [0.0] * (len(HEADS) - len(BINARY_HEADS))], (4, 1))
    y[:2, : len(BINARY_HEADS)] = 1.0
    scores = [sel(y, np.zeros_like(y)) for _ in range(3)]
    assert scores == [1.0, 1.0, 1.0]       # same outputs every epoch: nothing improves after the first


def test_without_validation_rows_every_output_keeps_the_engines_weights():
    net = torch.nn.Linear(1, 1)
    nets, best = select_nets(net, None)
    assert set(best.values()) == {0} and nets[0] is net


def test_the_cores_validation_rows_are_used_as_given():
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(10)], "wma": [0, 1] * 5})
    train = np.arange(8)
    ctx = SimpleNamespace(val_index=np.array([8, 9]), seed=0)
    fit, val = split_rows(table, train, {"val_fraction": 0.2}, ctx)
    assert fit.tolist() == train.tolist() and val.tolist() == [8, 9]
    ctx.val_index = np.array([], dtype=int)    # cross-validation: an inner split of the training rows
    fit, val = split_rows(table, train, {"val_fraction": 0.25}, ctx)
    assert len(val) and not set(val) & set(fit) and set(fit) | set(val) == set(train)
