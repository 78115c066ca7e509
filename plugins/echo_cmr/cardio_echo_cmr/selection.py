"""Per-output model selection: one network per view, and for each of its outputs the weights of the epoch where
that output's own validation metric was best (the paper trained one model per task; this keeps one checkpoint per
task of a shared network, so the tissue outputs are not reported at the epoch that suited wall motion).

`BestPerHead` is the engine's validation metric: each call scores every output on the validation rows that have it
(AUROC for a binary output, ties to the lower BCE; minus the MSE of a standardised regression output), keeps a copy of
the weights for each output that improved, and returns the number of epochs in which any output improved, so the
engine stops after `patience` epochs in which none did.

A killed run keeps its selection (`selector_for`): the engine's checkpoint holds one network, not one per output, so
the selector keeps its own beside it in checkpoints/<tag>.heads/, written when the engine checkpoints (the engine
calls `on_checkpoint` just before its own file; checkpoints come by time, train.checkpoint_every_s): the weights of
each epoch a kept snapshot uses, once (e<epoch>.pt, deleted once no snapshot uses it), and index.pt, the small state
after the epochs of the last two checkpoints. On resume it takes the state of the epoch the engine's checkpoint
resumes from (a kill between the selector's write and the engine's leaves the engine at the earlier of the two), so
a resumed fit selects exactly as an uninterrupted one, and a view whose fit had finished keeps its per-output
weights. Written every epoch instead, the selector's files and the engine's every-epoch checkpoints cost 21% of
echo's default training (111 s of 517 s, 66 GB written). The core deletes a folder with its fit's checkpoints once
the fit's task is done (checkpoints/<tag>.<suffix> beside <tag>.pt; train.keep_checkpoints keeps them).
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cardio.engine import flush_checkpoints, later, load_checkpoint, save_later
from cardio_echo_cmr.targets import DEFAULT, Target


def binary_score(y: np.ndarray, out: np.ndarray) -> float:
    """Validation AUROC of one binary output on its labelled rows (0.5 with one class or none).

    Ties go to the lower BCE: on a few validation patients the AUROC reaches 1 within an epoch or two, and the first
    such epoch is an undertrained network. The BCE term is scaled below half the AUROC's smallest step,
    0.5 / (n_pos * n_neg), so it never outranks a real AUROC difference.
    """
    present = ~np.isnan(y)
    if not present.any():
        return 0.5
    y, out = y[present], out[present]
    pos = int(y.sum())
    auc = float(roc_auc_score(y, out)) if 0 < pos < len(y) else 0.5
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(out).float(),
                                                                     torch.from_numpy(y).float()))
    return auc - 0.25 / max(pos * (len(y) - pos), 1) * bce / (1.0 + bce)


def regression_score(y: np.ndarray, out: np.ndarray) -> float:
    """Minus the validation MSE of a standardised output on its labelled rows (0 when none is labelled)."""
    present = ~np.isnan(y)
    return -float(np.mean((y[present] - out[present]) ** 2)) if present.any() else 0.0


class BestPerHead:
    """The engine metric that keeps the best weights of each output (see the module's text)."""

    def __init__(self, net: torch.nn.Module, targets: tuple[Target, ...] = DEFAULT, store: Path | None = None,
                 write: bool = True, rng: np.random.Generator | None = None) -> None:
        self.net, self.store, self.write = net, store, write
        # the training clips' random starts: the engine restores its own generators on resume, not a dataset's
        self.rng = rng
        self.snapshots: dict[int, dict] = {}  # epoch -> the small state after it, since the last checkpoint
        self.saved: set[int] = set()  # epochs whose weights are in the store, or handed to the engine's writer
        self.written: dict[int, dict] = {}  # the snapshots in index.pt: the epochs of the last two checkpoints
        self.heads = tuple(t.name for t in targets)
        self.binary = tuple(t.binary for t in targets)
        self.best = {h: -math.inf for h in self.heads}
        self.epoch_of: dict[str, int] = {}
        self.states: dict[int, dict] = {}
        self.scores: list[dict[str, float]] = []
        self.improving_epochs = 0

    def __call__(self, y: np.ndarray, out: np.ndarray) -> float:
        epoch = len(self.scores) + 1
        # the engine hands a one-output network's outputs as (N,): one column per head again
        y, out = (np.asarray(a).reshape(len(a), len(self.heads)) for a in (y, out))
        scores = {h: (binary_score if b else regression_score)(y[:, j].astype(float), out[:, j].astype(float))
                  for j, (h, b) in enumerate(zip(self.heads, self.binary))}
        self.scores.append(scores)
        improved = [h for h in self.heads if scores[h] > self.best[h]]
        if improved:
            self.improving_epochs += 1
            self.states[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
            for h in improved:
                self.best[h], self.epoch_of[h] = scores[h], epoch
            kept = set(self.epoch_of.values())
            self.states = {e: s for e, s in self.states.items() if e in kept}
        self.snapshots[epoch] = self._snapshot()
        return float(self.improving_epochs)

    def _snapshot(self) -> dict:
        return {"best": dict(self.best), "epoch_of": dict(self.epoch_of), "scores": [dict(s) for s in self.scores],
                "improving_epochs": self.improving_epochs,
                "rng": json.dumps(self.rng.bit_generator.state) if self.rng is not None else ""}

    def on_checkpoint(self, epoch: int) -> None:
        """Before the engine checkpoints `epoch`: the snapshot of that epoch beside the previous checkpoint's, and
        the weights they use that are not written yet (the engine's `on_checkpoint`). Written by the engine's
        writer thread (save_later), in this order and before the engine's own file; the training goes on."""
        if self.store is None or not self.write or epoch not in self.snapshots:  # the main process writes
            return
        self.store.mkdir(parents=True, exist_ok=True)
        previous = max(self.written, default=None)
        self.written = {**({previous: self.written[previous]} if previous is not None else {}),
                        epoch: self.snapshots[epoch]}
        for e in sorted(set(self.snapshots[epoch]["epoch_of"].values()) - self.saved):
            save_later({"model": self.states[e]}, self.store / f"e{e}.pt")  # a kept state never changes
            self.saved.add(e)
        save_later({"snapshots": dict(self.written)}, self.store / "index.pt")
        self.snapshots = {epoch: self.snapshots[epoch]}
        self._prune()

    def _prune(self) -> None:
        """The weights no written snapshot uses go, after the index that stopped using them."""
        assert self.store is not None
        used = {e for s in self.written.values() for e in s["epoch_of"].values()}
        gone, self.saved = self.saved - used, self.saved & used
        store = self.store

        def delete() -> None:
            for e in gone:
                (store / f"e{e}.pt").unlink(missing_ok=True)
        later(delete, store)

    def restore(self, epoch: int) -> bool:
        """The state after `epoch` (the engine's resumed epoch) and its kept weights; False when none was saved."""
        store = self.store
        if store is None or not (store / "index.pt").exists():
            return False
        index = store / "index.pt"
        snap = load_checkpoint(index)["snapshots"].get(epoch)
        files = {e: store / f"e{e}.pt" for e in set(snap["epoch_of"].values())} if snap else {}
        if snap is None or not all(f.exists() for f in files.values()):
            return False
        self.best, self.epoch_of = dict(snap["best"]), dict(snap["epoch_of"])
        self.scores, self.improving_epochs = list(snap["scores"]), int(snap["improving_epochs"])
        if self.rng is not None and snap.get("rng"):
            self.rng.bit_generator.state = json.loads(snap["rng"])
        self.states = {e: load_checkpoint(f)["model"] for e, f in files.items()}
        self.snapshots, self.written = {epoch: snap}, {epoch: snap}
        self.saved = {int(f.stem[1:]) for f in store.glob("e*.pt")}
        if self.write:  # the engine never goes back before `epoch`: the snapshots after it and their weights go
            save_later({"snapshots": dict(self.written)}, index)
            self._prune()
        return True


def selector_for(net: torch.nn.Module, targets: tuple[Target, ...], ctx, tag: str,
                 rng: np.random.Generator | None = None) -> BestPerHead:
    """The fit's selector, its state kept in checkpoints/<tag>.heads/ and restored when the engine's checkpoint
    checkpoints/<tag>.pt resumes (fit with the same `tag`); `rng`, the training set's generator, resumes with it."""
    ckpt = Path(ctx.checkpoint_dir) / f"{tag}.pt"
    store = Path(ctx.checkpoint_dir) / f"{tag}.heads"
    flush_checkpoints(ckpt)
    flush_checkpoints(store)
    selector = BestPerHead(net, targets, store, write=ctx.is_main, rng=rng)
    if not ckpt.exists():
        for f in store.glob("*.pt") if ctx.is_main else ():  # a start killed before the engine's first checkpoint
            f.unlink()
        return selector
    epoch = int(load_checkpoint(ckpt)["state"]["epoch"])  # the engine resumes after this epoch
    if not selector.restore(epoch):
        logging.getLogger("cardio.run").warning(
            "%s: no per-output selection saved for epoch %d: each output is selected among the epochs after it "
            "only", tag, epoch)
    return selector


def select_nets(net: torch.nn.Module, selector: BestPerHead | None,
                heads: tuple[str, ...] | None = None) -> tuple[dict[int, torch.nn.Module], dict]:
    """({epoch: network}, {output: epoch}) after training: each output's best epoch and its weights; without
    validation rows (no selector scores) every output keeps the engine's weights (lowest training loss), epoch 0."""
    import copy

    if selector is None or not selector.states:
        return {0: net.cpu().eval()}, dict.fromkeys(heads or (selector.heads if selector else
                                                              tuple(t.name for t in DEFAULT)), 0)
    nets = {}
    for epoch, state in selector.states.items():
        clone = copy.deepcopy(net).cpu()
        clone.load_state_dict(state)
        nets[epoch] = clone.eval()
    last = max(selector.states)  # an output whose score was never finite keeps the last kept weights
    return nets, {h: selector.epoch_of.get(h, last) for h in selector.heads}
