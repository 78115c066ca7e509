"""Per-view r2plus1d_18 training through cardio.engine, test-time clip averaging, and the view fusion.

One model per view learns every head at once (BCE for the binary labels, MSE for standardised T1/T2/ECV) on every
clip of that view in the training fold's studies, with an inner validation split (by patient) for early stopping on
the validation AUROC of the view's WMA. A missing label (NaN) is left out of its head's loss, of the early-stopping
AUROC and of its fusion. The fold's pixel mean and SD (training clips only) normalise the clips. At test time a
view's score of a study is the mean over its clips (each averaged over its non-overlapping windows). The fused
study-level prediction of each binary label is a logistic regression on the three views' logits of that label,
fitted on the training studies that have the label.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch.utils.data import Dataset

from cardio import CardioError, Features, Predictions, inner_split
from cardio_echo_cmr.model import BINARY_HEADS, HEADS, REGRESSION_HEADS, EchoVideoNet, HeadLoss, weights_source
from cardio_echo_cmr.synthetic import VIEWS
from cardio_echo_cmr.video import clip_starts, load_clip, sample_clip

FUSED_TASKS = ("wma", "lge", "t1_abnormal", "t2_abnormal", "ecv_abnormal")


class ClipDataset(Dataset):
    """One clip per video; a random start each time in training, the first clip otherwise."""

    def __init__(self, paths: list[str], y: np.ndarray | None, frames: int, period: int, train: bool, seed: int = 0):
        self.paths, self.y, self.frames, self.period, self.train = paths, y, frames, period, train
        self.rng = np.random.default_rng(seed)
        self.videos = [load_clip(p) for p in paths]  # uint8, small: (T, size, size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        v = self.videos[i]
        span = self.frames * self.period
        start = int(self.rng.integers(0, max(1, len(v) - span + 1))) if self.train else 0
        clip, _ = sample_clip(v, start, self.frames, self.period)
        x = torch.from_numpy(clip.astype(np.float32))
        y = torch.zeros(()) if self.y is None else torch.as_tensor(self.y[i], dtype=torch.float32)
        return x, y


class AllClips(Dataset):
    """Every non-overlapping window of every video (test-time averaging); `owner` maps windows to videos."""

    def __init__(self, paths: list[str], frames: int, period: int):
        self.items, owner = [], []
        for j, p in enumerate(paths):
            v = load_clip(p)
            for s in clip_starts(len(v), frames, period):
                self.items.append(sample_clip(v, s, frames, period)[0])
                owner.append(j)
        self.owner = np.asarray(owner)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.items[i].astype(np.float32)), torch.zeros(())


@dataclass
class EchoModel:
    nets: dict[str, EchoVideoNet]
    reg_stats: dict[str, tuple[float, float]]          # T1/T2/ECV mean and SD of the training fold
    fusion: dict[str, LogisticRegression]
    thresholds: dict[str, float] = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    weights: str = ""
    train_records: list[str] = field(default_factory=list)


def targets(table, view: str, reg_stats: dict) -> np.ndarray:
    """(n_studies, n_heads) targets of one view's network, NaN where a label is missing."""
    cols = [f"wma_{view}", "wma", "lge", "t1_abnormal", "t2_abnormal", "ecv_abnormal"]
    y = [table[c].to_numpy(float) for c in cols]
    y += [(table[c].to_numpy(float) - reg_stats[c][0]) / reg_stats[c][1] for c in REGRESSION_HEADS]
    return np.stack(y, 1).astype(np.float32)


def _val_auc(y: np.ndarray, out: np.ndarray) -> float:
    """Early stopping: validation AUROC of the view's WMA head (0.5 when the validation rows hold one class).

    Ties go to the lower BCE of that head: on a few validation patients the AUROC reaches 1 within an epoch or
    two, and the first such epoch is an undertrained network. The BCE term is scaled below half the AUROC's
    smallest step, 0.5 / (n_pos * n_neg), so it never outranks a real AUROC difference. Rows without the view's
    WMA label are left out (none labelled: 0.5).
    """
    present = ~np.isnan(y[:, 0])
    if not present.all():
        if not present.any():
            return 0.5
        y, out = y[present], out[present]
    pos = int(y[:, 0].sum())
    auc = float(roc_auc_score(y[:, 0], out[:, 0])) if 0 < pos < len(y) else 0.5
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(out[:, 0]).float(),
                                                                     torch.from_numpy(y[:, 0]).float()))
    return auc - 0.25 / max(pos * (len(y) - pos), 1) * bce / (1.0 + bce)


def pixel_stats(paths: list[str]) -> tuple[float, float]:
    vals = np.concatenate([load_clip(p).reshape(-1)[::7] for p in paths]).astype(np.float64)
    return float(vals.mean()), float(vals.std() or 1.0)


def view_logits(net: EchoVideoNet, studies: list[tuple[str, ...]], cfg: dict, ctx) -> np.ndarray:
    """(n_studies, n_heads): each clip's outputs averaged over its windows, then over the study's clips of the view
    (every study given has at least one clip)."""
    paths = [p for clips in studies for p in clips]
    if not paths:
        return np.zeros((len(studies), len(HEADS)), np.float32)
    ds = AllClips(paths, int(cfg["clip"]["frames"]), int(cfg["clip"]["period"]))
    with ctx.engine.cpu_threads(cfg["train"].get("cpu_threads"), ctx.device):  # training's count, not torch's
        out = ctx.engine.predict(net, ds, ctx)
    per_clip = [out[ds.owner == j].mean(0) for j in range(len(paths))]
    ends = np.cumsum([len(clips) for clips in studies])
    return np.stack([np.mean(per_clip[end - len(clips):end], 0) for clips, end in zip(studies, ends)])


def fit_fusion(view_scores: np.ndarray, y: np.ndarray, train_rows: np.ndarray, c: float = 1.0,
               task: str = "wma") -> LogisticRegression:
    """Logistic regression of a label on the per-view logits (n, n_views), fitted on the `train_rows` that have
    the label (NaN: missing)."""
    rows = np.asarray(train_rows)
    rows = rows[~np.isnan(np.asarray(y, dtype=float)[rows])]
    yt = np.asarray(y, dtype=float)[rows]
    if not 0 < yt.sum() < len(yt):
        raise CardioError(f"echo_cmr fusion of {task}: the training fold's studies with a {task} label hold one "
                          "class only; use fewer cv.folds")
    return LogisticRegression(C=c, max_iter=1000).fit(view_scores[rows], yt)


def _reg_stats(values, rows: np.ndarray) -> tuple[float, float]:
    """Mean and SD of a regression target over the training rows that have it (0 and 1 when too few do)."""
    mean, sd = float(values.iloc[rows].mean()), float(values.iloc[rows].std() or 1.0)
    return (mean if np.isfinite(mean) else 0.0), (sd if np.isfinite(sd) else 1.0)


def _clips(studies: list[tuple[str, ...]], y: np.ndarray, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Every clip of the studies `rows`, each with its study's targets."""
    paths = [p for i in rows for p in studies[i]]
    owner = [i for i in rows for _ in studies[i]]
    return paths, y[np.asarray(owner, dtype=int)]


def train(features: Features, train_index: np.ndarray, cfg: dict, ctx) -> EchoModel:
    table = features.table
    train_index = np.asarray(train_index)
    fraction = float(cfg["val_fraction"])
    if fraction > 0:
        fit_rows, val_rows = inner_split(table, train_index, fraction=fraction, seed=ctx.seed, label="wma")
    else:  # no inner validation: the engine keeps the epoch of lowest training loss
        fit_rows, val_rows = train_index, train_index[:0]
    reg_stats = {c: _reg_stats(table[c], train_index) for c in REGRESSION_HEADS}
    nets, history, logits = {}, {}, {}
    frames, period = int(cfg["clip"]["frames"]), int(cfg["clip"]["period"])
    settings = dict(cfg["train"])
    for view in VIEWS:
        studies = features.x[view]
        has = np.array([len(clips) > 0 for clips in studies])
        y = targets(table, view, reg_stats)
        fit_paths, fit_y = _clips(studies, y, fit_rows[has[fit_rows]])
        val_paths, val_y = _clips(studies, y, val_rows[has[val_rows]])
        mean, sd = pixel_stats(fit_paths)
        torch.manual_seed(int(ctx.seed))
        net = EchoVideoNet(mean, sd, cfg.get("weights"), cfg.get("arch", "r2plus1d_18"))
        bs = int(settings.get("batch_size") or 10)
        while len(fit_paths) % bs == 1 and bs < len(fit_paths):  # a last batch of one clip breaks BatchNorm
            bs += 1
        result = ctx.engine.fit(
            net, ClipDataset(fit_paths, fit_y, frames, period, train=True, seed=ctx.seed),
            ClipDataset(val_paths, val_y, frames, period, train=False) if val_paths else None,
            ctx, name=f"echo-{view}", settings={**settings, "batch_size": bs}, loss_fn=HeadLoss(), metric=_val_auc)
        nets[view] = result.model.cpu().eval()
        history[view] = result.history
        out = np.zeros((len(table), len(HEADS)), np.float32)  # a study without the view: logit 0
        rows = train_index[has[train_index]]
        out[rows] = view_logits(nets[view], [studies[i] for i in rows], cfg, ctx)
        logits[view] = out
    fusion = {}
    for task in FUSED_TASKS:
        j = BINARY_HEADS.index(task)
        scores = np.stack([logits[v][:, j] for v in VIEWS], 1)
        fusion[task] = fit_fusion(scores, table[task].to_numpy(float), train_index, float(cfg["fusion_c"]), task)
    return EchoModel(nets, reg_stats, fusion, history=history, weights=weights_source(cfg),
                     train_records=table["record_id"].iloc[train_index].astype(str).tolist())


def predict(model: EchoModel, features: Features, test_index: np.ndarray, cfg: dict, ctx) -> Predictions:
    """Per-view predictions of every head (model r2plus1d-<VIEW>) and the fused study-level ones (model fused), one
    row per study; y_true is NaN where the study's label is missing."""
    table = features.table.iloc[test_index]
    test_index = np.asarray(test_index)
    rid, pid = table["record_id"], table["patient_id"]
    parts, view_scores = [], {}
    for view in VIEWS:
        has = np.array([len(features.x[view][i]) > 0 for i in test_index], dtype=bool)
        rows = test_index[has]
        out = np.zeros((len(test_index), len(HEADS)), np.float32)
        out[has] = view_logits(model.nets[view], [features.x[view][i] for i in rows], cfg, ctx)
        view_scores[view] = out
        name = f"r2plus1d-{view}"
        for j, head in enumerate(BINARY_HEADS):
            col = f"wma_{view}" if head == "wma_view" else head
            prob = 1.0 / (1.0 + np.exp(-out[has, j]))
            parts.append(Predictions.from_arrays(rid[has], pid[has], table[col].to_numpy()[has], prob, model=name,
                                                 task=col, kind="binary"))
        for k, head in enumerate(REGRESSION_HEADS):
            mu, sd = model.reg_stats[head]
            pred = out[has, len(BINARY_HEADS) + k] * sd + mu
            parts.append(Predictions.from_arrays(rid[has], pid[has], table[head].to_numpy()[has], pred, model=name,
                                                 task=head, kind="regression"))
    for task in FUSED_TASKS:
        j = BINARY_HEADS.index(task)
        scores = np.stack([view_scores[v][:, j] for v in VIEWS], 1)
        prob = model.fusion[task].predict_proba(scores)[:, 1]
        parts.append(Predictions.from_arrays(rid, pid, table[task].to_numpy(), prob, model="fused", task=task,
                                             kind="binary"))
    return Predictions.concat(parts)
