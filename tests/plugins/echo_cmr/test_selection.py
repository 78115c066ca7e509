"""Per-output selection: each output keeps the weights of its own best validation epoch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cardio import engine
from cardio.engine import checkpoints  # where save_later looks up save_atomic (patched below)
from cardio_testing.harness import train_settings

pytest.importorskip("cardio_echo_cmr")

from cardio_echo_cmr.model import BINARY_HEADS, HEADS
from cardio_echo_cmr.selection import BestPerHead, select_nets


def _epoch(net: torch.nn.Linear, value: float) -> None:
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
        kept = nets[best[head]]
        assert isinstance(kept, torch.nn.Linear) and float(kept.weight.detach()) == best[head]
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


class _Clips(torch.utils.data.Dataset):
    """Three targets (two binary, one continuous), some missing; training inputs jittered by the set's own generator
    (as ClipDataset draws its random clip starts)."""

    def __init__(self, n: int, seed: int, train: bool = False):
        self.rng, self.train = np.random.default_rng(seed), train
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 6)).astype(np.float32)
        y = np.stack([x[:, 0] > 0, x[:, 1] + rng.normal(size=n) > 0, x[:, 2] + rng.normal(size=n)], 1)
        y = y.astype(np.float32)
        y[::5, 1] = np.nan
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        jitter = torch.from_numpy(self.rng.normal(0, 0.3, 6).astype(np.float32)) if self.train else 0
        return self.x[i] + jitter, self.y[i]


class _Killed(Exception):
    pass


def _fit(out, kill_after: int | None = None, between: bool = False):
    """A 3-output fit through the engine with the per-output selector, a checkpoint every epoch; killed after the
    selector has scored epoch `kill_after` and before the engine checkpoints it, or (`between`) after the selector
    wrote that epoch's state and before the engine's file (the narrowest windows a kill can hit)."""
    from cardio_echo_cmr.model import HeadLoss
    from cardio_echo_cmr.selection import selector_for
    from cardio_echo_cmr.targets import Target
    from cardio_testing.harness import cpu_context

    targets = (Target("a", "binary", "study", "a"), Target("b", "binary", "study", "b"),
               Target("c", "continuous", "study", "c"))
    ctx = cpu_context(out)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    train_set = _Clips(48, 1, train=True)
    selector = selector_for(net, targets, ctx, "fold0-echo-A4C", train_set.rng)

    def metric(y, out_):
        score = selector(y, out_)
        if kill_after is not None and not between and len(selector.scores) == kill_after:
            raise _Killed
        return score

    def on_checkpoint(epoch: int) -> None:
        selector.on_checkpoint(epoch)
        if kill_after is not None and between and epoch == kill_after:
            raise _Killed

    result = ctx.engine.fit(net, train_set, _Clips(24, 2), ctx, name="echo-A4C", tag="fold0-echo-A4C",
                            train=train_settings(epochs=8, batch_size=8, lr=0.05, patience=0, checkpoint_every_s=0),
                            loss_fn=HeadLoss(2), metric=metric, on_checkpoint=on_checkpoint)
    return select_nets(result.model, selector, ("a", "b", "c")), selector


@pytest.mark.parametrize("between", [False, True], ids=["before-the-checkpoint", "between-the-two-files"])
def test_a_killed_fit_resumes_its_per_output_selection(tmp_path, between):
    (nets, best), whole = _fit(tmp_path / "whole")
    assert len(set(best.values())) > 1  # the outputs were selected at different epochs: there is something to lose
    with pytest.raises(_Killed):
        _fit(tmp_path / "killed", kill_after=5, between=between)
    store = tmp_path / "killed" / "checkpoints" / "fold0-echo-A4C.heads"
    engine.flush_checkpoints()  # what was handed to the writer's thread before the kill
    assert (store / "index.pt").is_file()
    (nets2, best2), resumed = _fit(tmp_path / "killed")  # the engine resumes after epoch 4, the selector with it
    assert best2 == best and resumed.scores == whole.scores
    for epoch in set(best.values()):
        assert all(torch.equal(a, b) for a, b in zip(nets[epoch].state_dict().values(),
                                                      nets2[epoch].state_dict().values()))
    # a finished fit run again (a kill in the next view's fit) returns at once with the same selection
    (nets3, best3), _ = _fit(tmp_path / "killed")
    assert best3 == best and set(nets3) == set(nets)
    assert {f.name for f in store.glob("e*.pt")} == {f"e{e}.pt" for e in set(best.values())}


def test_a_fit_killed_at_any_write_of_the_writer_thread_resumes_exactly(tmp_path, monkeypatch):
    """The engine's and the selector's files are written by one thread, in the order handed over, while the fit
    goes on. A write that fails (here: the k-th, for every k) stops it: nothing after it is written, as a kill -9
    then would leave, and the fit stops at its next hand-over. From every such prefix the fit resumes to the
    uninterrupted selection, scores and per-output weights."""
    (nets, best), whole = _fit(tmp_path / "whole")
    real_save, count = engine.save_atomic, {"n": 0}

    def counting(obj, path):
        count["n"] += 1
        real_save(obj, path)
    monkeypatch.setattr(checkpoints, "save_atomic", counting)
    _fit(tmp_path / "count")
    engine.flush_checkpoints()
    total = count["n"]
    assert total > 10  # the engine's and the selector's files over 8 epochs
    for k in range(1, total + 1, 3):
        calls = {"n": 0}

        def failing(obj, path, k=k):
            calls["n"] += 1
            if calls["n"] == k:
                raise _Killed
            real_save(obj, path)
        monkeypatch.setattr(checkpoints, "save_atomic", failing)
        out = tmp_path / f"killed{k}"
        try:
            _fit(out)
            engine.flush_checkpoints()
        except _Killed:
            pass
        monkeypatch.setattr(checkpoints, "save_atomic", real_save)
        (nets2, best2), resumed = _fit(out)
        assert best2 == best and resumed.scores == whole.scores, k
        for epoch in set(best.values()):
            assert all(torch.equal(a, b) for a, b in zip(nets[epoch].state_dict().values(),
                                                          nets2[epoch].state_dict().values())), k
