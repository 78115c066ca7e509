"""The fold set-up the core does once for every plugin (cardio.study.fits.train): a binary label with both classes in
the training rows, validation rows that leave both to fit, and the seed; engine.build for a fit's further networks;
engine.threshold on validation rows with missing targets."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pluggy
import pytest
import torch

import cardio_stats as stats
from cardio import CardioError, Features, PluginInfo, engine, hookimpl, hookspecs
from cardio.context import new_context
from cardio.study import Study
from cardio.study.fits import train


class Recorder:
    """A plugin whose cardio_train keeps the rows it was given and returns a freshly built network (and, built through
    engine.build after the RNG has moved on, a second one)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    @hookimpl
    def cardio_train(self, features, train_index, val_index, config, ctx):
        self.calls.append((np.asarray(train_index), np.asarray(val_index)))
        first = torch.nn.Linear(4, 1)
        torch.rand(7)
        np.random.random(3)  # a fit that draws from the global generators before its next network
        return first, engine.build(lambda: torch.nn.Linear(4, 1), ctx)


def _study(plugin: Recorder) -> Study:
    pm = pluggy.PluginManager("cardio")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, "recorder")
    return Study("recorder", None, pm, PluginInfo(name="recorder", description=""))  # type: ignore[arg-type]


def _features(label: list[float]) -> Features:
    n = len(label)
    table = pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "responder": label})
    return Features(table, x=np.zeros((n, 4), np.float32), label="responder")


@pytest.fixture()
def fit(tmp_path):
    cfg = {"seed": 0, "device": "cpu", "cache_dir": str(tmp_path / "cache"), "train": {"val_fraction": 0.0}}
    ctx = new_context(cfg, tmp_path, logging.getLogger("test.fits"), device="cpu")
    plugin = Recorder()

    def run(features: Features, rows, val=(), fold: str = "fold1"):
        model = train(_study(plugin), features, np.asarray(rows), np.asarray(val, dtype=int), None, cfg,
                      ctx.for_fit(fold))
        return model, plugin.calls

    return run


def test_a_training_fold_with_one_class_of_the_label_is_one_line_before_cardio_train(fit):
    features = _features([1, 1, 1, 1, 1, 1, 0, 0, np.nan])
    with pytest.raises(CardioError, match=r"^fit fold1: the training rows hold one class of 'responder' \(6 with a "
                                          r"value, all 1\); use fewer cv.folds"):
        fit(features, np.r_[0:6, 8])  # the unlabelled row does not count
    with pytest.raises(CardioError, match="^fit final: the training rows hold one class of 'responder'"):
        fit(features, [3, 4], val=[5], fold="final")  # the validation rows are training rows too
    assert fit(features, range(8))[1][-1][0].tolist() == list(range(8))  # both classes: trained
    assert len(fit(_features([0.5, 1.5, 2.5, 3.5]), [0, 1])[1]) == 2  # a continuous label: nothing to check


def test_validation_rows_that_would_leave_one_class_to_fit_are_not_used(fit, caplog):
    features = _features([1, 1, 1, 1, 0, 0])
    with caplog.at_level(logging.WARNING, "test.fits"):
        _, calls = fit(features, [0, 1, 2, 3], val=[4, 5])
    fitted, val = calls[-1]
    assert fitted.tolist() == [0, 1, 2, 3, 4, 5] and val.tolist() == []
    assert "fit fold1: the validation rows would leave one class of 'responder' to fit" in caplog.text
    _, calls = fit(features, [0, 1, 2, 4], val=[3, 5])  # both classes left to fit: the validation rows stay
    assert calls[-1][0].tolist() == [0, 1, 2, 4] and calls[-1][1].tolist() == [3, 5]


def test_the_same_seed_gives_the_same_networks_whatever_ran_before(fit):
    features = _features([1, 0, 1, 0, 1, 0])
    (first, second), _ = fit(features, range(6))
    torch.rand(11)
    np.random.random(5)  # another fit, another plugin, drew from the global generators in this process
    (again, second_again), _ = fit(features, range(6), fold="fold2")
    assert torch.equal(first.weight, again.weight) and torch.equal(second.weight, second_again.weight)
    # a further network of the fit, built by engine.build, starts as the fit's first does; built plainly, it would not
    assert torch.equal(first.weight, second.weight)
    torch.manual_seed(0)
    torch.nn.Linear(4, 1)
    assert not torch.equal(first.weight, torch.nn.Linear(4, 1).weight)


def test_threshold_leaves_missing_targets_out_and_falls_back_on_one_class(cpu_context):
    ctx = cpu_context()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.stack([(x[:, 0] + rng.normal(size=40) > 0), np.zeros(40)], 1).astype(np.float32)
    y[::4, 0] = np.nan  # a quarter of the rows lack the first target
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    data = engine.ArrayDataset(x, y)
    p = engine.predict_proba(model, data, ctx)[:, 0]
    present = ~np.isnan(y[:, 0])
    expected = stats.choose_threshold(y[present, 0], p[present], "youden")
    assert engine.threshold(model, data, ctx, "youden", output=0) == expected
    assert engine.threshold(model, data, ctx, "youden", output=1, fallback=0.5) == 0.5  # one class: the fallback
    with pytest.raises(CardioError, match="validation rows hold 1 class"):
        engine.threshold(model, data, ctx, "youden", output=1)
    empty = engine.ArrayDataset(x[:0], y[:0])
    assert engine.threshold(model, empty, ctx, output=0, fallback=0.25) == 0.25  # no validation rows at all


def test_too_few_patients_to_stratify_the_validation_rows_split_unstratified():
    """Five training patients, val_fraction 0.2: one validation patient cannot hold both classes, which
    scikit-learn's stratified split refuses with a traceback; the core then splits them unstratified."""
    from cardio import inner_split

    table = _features([1, 1, 1, 0, 0]).table
    fit_rows, val_rows = inner_split(table, np.arange(5), fraction=0.2, seed=0, label="responder")
    assert len(val_rows) == 1 and sorted([*fit_rows, *val_rows]) == [0, 1, 2, 3, 4]
    # with enough patients the split stays stratified: each part holds both classes
    table = _features([1, 0] * 10).table
    fit_rows, val_rows = inner_split(table, np.arange(20), fraction=0.2, seed=0, label="responder")
    assert set(table["responder"].iloc[val_rows]) == {0, 1} and set(table["responder"].iloc[fit_rows]) == {0, 1}
