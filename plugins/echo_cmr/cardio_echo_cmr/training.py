"""Per-view r2plus1d_18 training through cardio.engine, test-time clip averaging, and the view fusion.

One network per view learns every configured target at once (targets.py; BCE for the binary ones, MSE for the
standardised continuous ones) on every clip of that view in the training studies. Each output keeps the weights of
the epoch where its own validation metric was best (selection.py), so one view's network is up to one checkpoint
per output. The
validation rows are the core's (`val_index`: the protocol's under cv.method holdout/predefined, else
`train.val_fraction` of the training patients). A missing label (NaN) is left out of its output's
loss, of its selection metric and of its fusion. The fold's pixel mean and SD (training clips only) normalise the
clips. At test time a view's score of a study is the mean over its clips (each averaged over its non-overlapping
windows). The fused study-level prediction of each binary study-level target is a logistic regression on the
views' logits of that target, and of each continuous one (T1/T2/ECV, EF) a linear regression on the views'
standardised outputs, each view's weight >= 0; both are fitted on the training studies that have the label, on the
out-of-fold outputs of view networks of inner folds that never saw those patients (view_fusion.py; a view a study
lacks enters as 0: logit 0, or the training mean). View-level targets are reported per view, not fused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from torch.utils.data import Dataset

from cardio import CardioError, CoreSettings, Features, Predictions
from cardio_echo_cmr import view_fusion
from cardio_echo_cmr.model import EchoVideoNet, HeadLoss, weights_source
from cardio_echo_cmr.selection import select_nets, selector_for
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.targets import DEFAULT, Target, n_binary, names, parse
from cardio_echo_cmr.video import clip_shape, clip_starts, load_clip, sample_clip

if TYPE_CHECKING:
    from cardio_stats import Stacker


class ClipDataset(Dataset):
    """One clip per video; a random start each time in training, the first clip otherwise. The videos stay in the
    cache: each batch reads its own (on a GPU the set is copied there once, where it fits), so a fit's memory does not
    grow with the cohort."""

    def __init__(self, paths: list[str], y: np.ndarray | None, frames: int, period: int, train: bool, seed: int = 0):
        self.paths, self.y, self.frames, self.period, self.train = paths, y, frames, period, train
        self.rng = np.random.default_rng(seed)
        shapes = [clip_shape(p) for p in paths]  # headers only: (T, size, size) uint8 each
        self.lengths = np.asarray([s[0] for s in shapes], dtype=np.int64)
        self.frame_shape = tuple(shapes[0][1:]) if shapes else ()
        self.on: tuple[torch.Tensor, torch.Tensor] | None = None  # on a GPU: (padded videos, lengths) there
        self.device: torch.device | None = None
        self.y_on: torch.Tensor | None = None  # the labels on the device, wherever the videos are

    def __len__(self) -> int:
        return len(self.paths)

    def _start(self, i: int) -> int:
        span = self.frames * self.period
        return int(self.rng.integers(0, max(1, int(self.lengths[i]) - span + 1))) if self.train else 0

    def __getitem__(self, i: int):
        clip, _ = sample_clip(load_clip(self.paths[i]), self._start(i), self.frames, self.period)
        x = torch.from_numpy(clip.astype(np.float32))
        y = torch.zeros(()) if self.y is None else torch.as_tensor(self.y[i], dtype=torch.float32)
        return x, y

    def nbytes(self) -> int:
        return int(self.lengths.max(initial=0)) * len(self.paths) * int(np.prod(self.frame_shape))

    def on_device(self, device: torch.device) -> None:
        """On a GPU, every video once, padded with its last frame to the longest (the engine serves batches from
        there: cardio.engine.ArrayDataset's protocol); on the CPU nothing is held: take reads each batch."""
        self.device = device
        self.y_on = None if self.y is None else torch.as_tensor(self.y, dtype=torch.float32).to(device)
        self.on = None
        if device.type == "cpu":
            return
        longest = int(self.lengths.max())
        videos = torch.empty((len(self.paths), longest, *self.frame_shape), dtype=torch.uint8,
                             device=device)
        for i, path in enumerate(self.paths):  # one video at a time through the host
            v = load_clip(path)
            videos[i] = torch.as_tensor(np.concatenate([v, np.repeat(v[-1:], longest - len(v), 0)]))
        self.on = (videos, torch.as_tensor(self.lengths).to(device))

    def take(self, index: torch.Tensor):
        """The clips of rows `index` (a CPU tensor) cropped as __getitem__ crops them one by one: the same random
        starts, drawn in the same order from the same generator; frames past a video's end repeat its last."""
        assert self.device is not None, "ClipDataset.take before on_device"
        rows = index.tolist()
        starts = [self._start(i) for i in rows] if self.train else [0] * len(rows)
        offsets = self.period * np.arange(self.frames)
        index = index.to(self.device, non_blocking=True)
        if self.on is None:  # the CPU: this batch's videos read from the cache
            x = torch.as_tensor(np.stack([load_clip(self.paths[i])[np.minimum(s + offsets, self.lengths[i] - 1)]
                                          for i, s in zip(rows, starts)])).float()
        else:
            videos, lengths = self.on
            start = torch.as_tensor(starts, dtype=torch.long).to(index.device)
            frame = start[:, None] + torch.as_tensor(offsets, device=index.device)
            frame = torch.minimum(frame, lengths.index_select(0, index)[:, None] - 1)
            x = videos[index[:, None], frame].float()
        return x, (torch.zeros(len(index), device=self.device) if self.y_on is None
                   else self.y_on.index_select(0, index))


class AllClips(Dataset):
    """Every non-overlapping window of every video (test-time averaging); `owner` maps windows to videos. Each
    window is cut when it is read (the windows come in order, so a video is read once)."""

    def __init__(self, paths: list[str], frames: int, period: int):
        self.paths, self.frames, self.period = paths, frames, period
        windows = [(j, s) for j, p in enumerate(paths) for s in clip_starts(clip_shape(p)[0], frames, period)]
        self.windows = windows
        self.owner = np.asarray([j for j, _ in windows])
        self._read: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self) -> dict:  # a DataLoader worker's copy starts without the video last read
        return {**self.__dict__, "_read": None}

    def __getitem__(self, i: int):
        j, start = self.windows[i]
        if self._read is None or self._read[0] != j:
            self._read = (j, load_clip(self.paths[j]))
        return torch.from_numpy(sample_clip(self._read[1], start, self.frames, self.period)[0].astype(np.float32)), \
            torch.zeros(())


@dataclass
class ViewModel:
    """One view's network: {epoch: weights} and, per output, the epoch whose weights predict it."""
    nets: dict[int, torch.nn.Module]  # EchoVideoNet weights per selected epoch
    best_epoch: dict[str, int]

    def net_for(self, head: str) -> torch.nn.Module:
        return self.nets[self.best_epoch[head]]


@dataclass
class EchoModel:
    views: dict[str, ViewModel]
    reg_stats: dict[str, tuple[float, float]]          # each continuous target's mean and SD of the training fold
    # the core's Stacker per binary label, a linear regression per continuous one (a LogisticRegression: the form
    # of bundles written before the stacker's own arrays were kept, bundle.py)
    fusion: dict[str, Stacker | LinearRegression | LogisticRegression]
    heads: tuple[str, ...] = names(DEFAULT)            # outputs with a label in training (others not reported)
    history: dict = field(default_factory=dict)        # view -> per-epoch validation score of each output
    weights: str = ""
    train_records: list[str] = field(default_factory=list)
    targets: tuple[Target, ...] = DEFAULT              # the network's outputs, in order

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(self.views)

    def fused(self) -> tuple[Target, ...]:
        """The study-level targets: fused across the views."""
        return tuple(t for t in self.targets if t.level == "study")


def view_targets(table, view: str, targets: tuple[Target, ...], reg_stats: dict) -> np.ndarray:
    """(n_studies, n_heads) targets of one view's network (continuous ones standardised), NaN where missing."""
    y = [table[t.task(view)].to_numpy(float) if t.binary else
         (table[t.task(view)].to_numpy(float) - reg_stats[t.name][0]) / reg_stats[t.name][1] for t in targets]
    return np.stack(y, 1).astype(np.float32)


def pixel_stats(paths: list[str]) -> tuple[float, float]:
    """Mean and SD of every 7th pixel of the training clips, from a count of each uint8 value (clip by clip, so
    the clips are never held together): the sum is exact, and so the mean is the concatenation's."""
    counts = np.zeros(256, np.int64)
    for p in paths:
        counts += np.bincount(load_clip(p).reshape(-1)[::7], minlength=256)
    values = np.arange(256, dtype=np.float64)
    n = int(counts.sum())
    mean = float(counts @ np.arange(256, dtype=np.int64)) / n
    sd = float(np.sqrt(counts @ (values - mean) ** 2 / n))
    return mean, sd or 1.0


def _window_logits(net: torch.nn.Module, paths: list[str], s: EchoSettings, ctx) -> list[np.ndarray]:
    """Each clip's outputs averaged over its non-overlapping windows."""
    ds = AllClips(paths, s.clip.frames, s.clip.period)
    out = ctx.engine.predict(net, ds, ctx)
    return [out[ds.owner == j].mean(0) for j in range(len(paths))]


def view_logits(view: ViewModel, studies: list[tuple[str, ...]], s: EchoSettings, ctx,
                heads: tuple[str, ...] = names(DEFAULT)) -> np.ndarray:
    """(n_studies, n_heads): each output from the weights selected for it, averaged over each clip's windows and
    then over the study's clips of the view (every study given has at least one clip)."""
    paths = [p for clips in studies for p in clips]
    result = np.zeros((len(studies), len(heads)), np.float32)
    if not paths:
        return result
    ends = np.cumsum([len(clips) for clips in studies])
    for epoch, net in view.nets.items():
        cols = [j for j, h in enumerate(heads) if view.best_epoch[h] == epoch]
        if not cols:
            continue
        per_clip = _window_logits(net, paths, s, ctx)
        per_study = np.stack([np.mean(per_clip[end - len(clips):end], 0) for clips, end in zip(studies, ends)])
        result[:, cols] = per_study[:, cols]
    return result


def fit_fusion(view_scores: np.ndarray, y: np.ndarray, train_rows: np.ndarray, c: float = 1.0,
               task: str = "wma", binary: bool = True) -> Stacker | LinearRegression:
    """The fusion of one label on the per-view outputs (n, n_views), fitted on the `train_rows` that have the label
    (NaN: missing): the core's stacker (a logistic regression) for a binary label, a linear regression for a
    continuous one, each view's weight >= 0 (every view's output estimates the same label: a view whose outputs carry
    nothing gets weight 0, never a sign flip fitted to noise; cardio_stats.fit_stacker). `c`: the logistic fit's
    inverse ridge strength. A binary label's rows hold both classes: `train` checks that first
    (Features.check_classes)."""
    from cardio_stats import fit_stacker

    rows = np.asarray(train_rows)
    rows = rows[~np.isnan(np.asarray(y, dtype=float)[rows])]
    yt = np.asarray(y, dtype=float)[rows]
    if not binary:
        if len(yt) < view_scores.shape[1] + 1:
            raise CardioError(f"echo_cmr fusion of {task}: {len(yt)} training studies have a value; use fewer "
                              "cv.folds")
        return LinearRegression(positive=True).fit(view_scores[rows], yt)
    return fit_stacker(view_scores[rows], yt, penalty=1.0 / c)


def _reg_stats(values, rows: np.ndarray) -> tuple[float, float]:
    """Mean and SD of a regression target over the training rows that have it (0 and 1 when too few do)."""
    mean, sd = float(values.iloc[rows].mean()), float(values.iloc[rows].std() or 1.0)
    return (mean if np.isfinite(mean) else 0.0), (sd if np.isfinite(sd) else 1.0)


def _clips(studies: list[tuple[str, ...]], y: np.ndarray, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Every clip of the studies `rows`, each with its study's targets."""
    paths = [p for i in rows for p in studies[i]]
    owner = [i for i in rows for _ in studies[i]]
    return paths, y[np.asarray(owner, dtype=int)]


def _fit_view(view: str, features: Features, rows: tuple[np.ndarray, np.ndarray], y: np.ndarray, s: EchoSettings,
              core_train: dict, ctx, targets: tuple[Target, ...] = DEFAULT) -> tuple[ViewModel, list]:
    """One view's network, trained on the fit rows' clips and selected per output on the validation rows'
    (none: the engine keeps the epoch of lowest training loss)."""
    studies = features.x[view]
    has = np.array([len(clips) > 0 for clips in studies])
    (fit_paths, fit_y), (val_paths, val_y) = (_clips(studies, y, r[has[r]]) for r in rows)
    if not fit_paths:
        raise CardioError(f"echo_cmr: no training study has a {view} clip (echo_cmr.views lists the views to fit)")
    frames, period = s.clip.frames, s.clip.period
    settings = s.train.as_dict()
    mean, sd = pixel_stats(fit_paths)
    # each view's network (and each inner fit's) starts alike, whichever were fitted before it
    net = ctx.engine.build(lambda: EchoVideoNet(mean, sd, s.weights, s.arch, n_outputs=len(targets)), ctx)
    bs = s.train.batch_size
    while len(fit_paths) % bs == 1 and bs < len(fit_paths):  # a last batch of one clip breaks BatchNorm
        bs += 1
    tag = f"{ctx.fold}-echo-{view}" if ctx.fold else f"echo-{view}"  # the engine's default, named for the selector
    train_set = ClipDataset(fit_paths, fit_y, frames, period, train=True, seed=ctx.seed)
    selector = selector_for(net, targets, ctx, tag, train_set.rng) if val_paths else None
    result = ctx.engine.fit(
        net, train_set, ClipDataset(val_paths, val_y, frames, period, train=False) if val_paths else None,
        ctx, name=f"echo-{view}", train=core_train, settings={**settings, "batch_size": bs},
        loss_fn=HeadLoss(n_binary(targets)), metric=selector, tag=tag,
        on_checkpoint=selector.on_checkpoint if selector else None)  # its per-output selection, with the checkpoint
    nets, best = select_nets(result.model, selector, names(targets))
    return ViewModel(nets, best), (selector.scores if selector else [])


def _inner_fit(view: str, features: Features, y: np.ndarray, s: EchoSettings, core_train: dict,
               targets: tuple[Target, ...], fit_rows: np.ndarray, val_rows: np.ndarray, ctx) -> ViewModel:
    """One view's network of an inner fold of the fusion (view_fusion.view_outputs)."""
    return _fit_view(view, features, (fit_rows, val_rows), y, s, core_train, ctx, targets)[0]


def train(features: Features, fit_index: np.ndarray, val_index: np.ndarray, config: dict, ctx) -> EchoModel:
    """Each view's network on the fit rows, selected on the core's validation rows; the standardisation of continuous
    targets and the fusion of the views on the whole training fold."""
    s, core_train, rows = EchoSettings.of(config), CoreSettings.of(config).train.as_dict(), (fit_index, val_index)
    table, targets, views = features.table, parse(s.targets), s.views
    heads = names(targets)
    train_index = np.union1d(fit_index, val_index)
    for t in targets:  # each study-level one has a fusion of its own (the core checked the label's classes)
        if t.level == "study" and t.binary:
            features.check_classes(train_index, ctx.fold or "", t.name)
    reg_stats = {t.name: _reg_stats(table[t.name], train_index) for t in targets if not t.binary}
    models, history, outputs = {}, {}, {}
    folds = view_fusion.inner_folds(table["patient_id"], train_index, s.fusion_folds, int(ctx.seed))
    for view in views:
        y = view_targets(table, view, targets, reg_stats)
        models[view], history[view] = _fit_view(view, features, rows, y, s, core_train, ctx, targets)
        # the fusion's inputs: out-of-fold outputs of networks that never saw those patients (view_fusion.py)
        outputs[view] = view_fusion.view_outputs(
            view, features, rows, folds, heads, ctx,
            partial(_inner_fit, view, features, y, s, core_train, targets),
            partial(view_logits, s=s, ctx=ctx, heads=heads)).outputs
    fusion = {t.name: fit_fusion(np.stack([outputs[v][:, heads.index(t.name)] for v in views], 1),
                                 table[t.name].to_numpy(float), train_index, s.fusion_c, t.name, t.binary)
              for t in targets if t.level == "study"}
    labelled = {t.name for v in views for t in targets if table[t.task(v)].iloc[train_index].notna().any()}
    return EchoModel(models, reg_stats, fusion, heads=tuple(h for h in heads if h in labelled), history=history,
                     weights=weights_source(s), targets=targets,
                     train_records=table["record_id"].iloc[train_index].astype(str).tolist())


def _column(table, col: str) -> np.ndarray:
    """A label column of the studies predicted (NaN when a new cohort lacks it)."""
    return table[col].to_numpy(float) if col in table else np.full(len(table), np.nan)


def _view_predictions(model: EchoModel, view: str, out: np.ndarray, has: np.ndarray, table) -> list[Predictions]:
    rid, pid = table["record_id"][has], table["patient_id"][has]
    parts, name = [], f"r2plus1d-{view}"
    for j, t in enumerate(model.targets):
        if t.name not in model.heads:
            continue
        if t.binary:
            score, kind = 1.0 / (1.0 + np.exp(-out[has, j])), "binary"
        else:
            mu, sd = model.reg_stats[t.name]
            score, kind = out[has, j] * sd + mu, "regression"
        parts.append(Predictions.from_arrays(rid, pid, _column(table, t.task(view))[has], score, model=name,
                                             task=t.task(view), kind=kind))
    return parts


def predict(model: EchoModel, features: Features, test_index: np.ndarray, s: EchoSettings, ctx) -> Predictions:
    """Per-view predictions of every output (model r2plus1d-<VIEW>) and the fused study-level ones (model fused),
    one row per study; y_true is NaN where the study's label is missing."""
    table = features.table.iloc[test_index]
    test_index = np.asarray(test_index)
    heads = names(model.targets)
    parts, view_scores, fused_parts = [], {}, []
    for view in model.view_names:
        has = np.array([len(features.x[view][i]) > 0 for i in test_index], dtype=bool)
        out = np.zeros((len(test_index), len(heads)), np.float32)
        out[has] = view_logits(model.views[view], [features.x[view][i] for i in test_index[has]], s, ctx, heads)
        view_scores[view] = out
        parts += _view_predictions(model, view, out, has, table)
    for t in model.fused():
        scores = np.stack([view_scores[v][:, heads.index(t.name)] for v in model.view_names], 1)
        fused: Any = model.fusion[t.name]  # the core's Stacker (binary) or scikit-learn's LinearRegression
        score = fused.predict_proba(scores)[:, 1] if t.binary else fused.predict(scores)
        fused_parts.append(Predictions.from_arrays(table["record_id"], table["patient_id"], _column(table, t.name),
                                                   score, model="fused", task=t.name,
                                                   kind="binary" if t.binary else "regression"))
    return Predictions.concat(fused_parts + parts)  # fused first: the core draws its figures in this order, up to a cap
