"""Task `perfusion_risk`: Yeung et al.'s polar-map model of flow reserve and cardiovascular risk.

Inputs are three-channel bull's-eye polar maps (rest perfusion, stress perfusion, myocardial flow
reserve). A torchvision ResNet is trained in two steps through the core engine: step 1 regresses
the mean MFR of the 17 AHA segments; step 2 starts from step 1's backbone with a new head and
classifies impaired global MFR (< 2.0), sex, smoking, hypertension, dyslipidemia and diabetes.
A logistic regression (ridge for the MFR values) on the 17-segment values of the three maps is
fitted on the same folds for comparison.

The embedded default is a synthetic cohort with known effects, written as .npy maps plus a CSV
and read back through the same loader a user folder goes through.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from cardio.data import CardioError, inner_split
from cardio.engine import cpu_threads

N_SEGMENTS = 17
SEGMENT_TASKS = [f"mfr_seg{i:02d}" for i in range(1, N_SEGMENTS + 1)]
RISK_TASKS = ["impaired_mfr", "sex_male", "smoking", "hypertension", "dyslipidemia", "diabetes"]
CHANNELS = ("rest", "stress", "mfr")
IMPAIRED_MFR = 2.0
GENERATOR_VERSION = 2  # bump when synthesize() changes, so that cached cohorts are rewritten
# AHA 17-segment model: coronary territories used to place synthetic flow defects.
TERRITORIES = {"LAD": [1, 2, 7, 8, 13, 14, 17], "RCA": [3, 4, 9, 10, 15], "LCX": [5, 6, 11, 12, 16]}
# Channel scales that bring the maps to about [0, 1] before the network.
CHANNEL_SCALE = np.array([100.0, 100.0, 4.0], dtype=np.float32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- polar-map geometry

def segment_map(size: int) -> np.ndarray:
    """(size, size) int array: AHA segment 1..17 of each bull's-eye pixel, 0 outside the map.

    Apex (17) in the centre, apical ring 13-16, mid 7-12, basal 1-6; anterior at the top,
    septum on the left, as in the usual bull's-eye display.
    """
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    dx, dy = (xx - c) / (size / 2.0), (c - yy) / (size / 2.0)
    r = np.hypot(dx, dy)
    ang = (np.degrees(np.arctan2(dy, dx)) + 360.0) % 360.0  # 90 = anterior (top), 180 = septal (left)
    seg = np.zeros((size, size), dtype=np.int16)
    # basal/mid: 60-degree sectors centred on anterior (90), anteroseptal (150), inferoseptal (210),
    # inferior (270), inferolateral (330), anterolateral (30); numbered counter-clockwise from anterior.
    six = (((ang - 60.0) % 360.0) // 60.0).astype(int)  # 0 for 60..120 (anterior), 1 for 120..180 ...
    four = (((ang - 45.0) % 360.0) // 90.0).astype(int)  # 0 anterior, 1 septal, 2 inferior, 3 lateral
    seg[(r >= 0.72) & (r <= 1.0)] = (1 + six)[(r >= 0.72) & (r <= 1.0)]
    seg[(r >= 0.45) & (r < 0.72)] = (7 + six)[(r >= 0.45) & (r < 0.72)]
    seg[(r >= 0.2) & (r < 0.45)] = (13 + four)[(r >= 0.2) & (r < 0.45)]
    seg[r < 0.2] = 17
    return seg


def segment_means(maps: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Mean of every channel in each of the 17 segments: (n, C, H, W) -> (n, C, 17)."""
    out = np.empty(maps.shape[:2] + (N_SEGMENTS,), dtype=np.float64)
    for s in range(1, N_SEGMENTS + 1):
        m = seg == s
        out[:, :, s - 1] = maps[:, :, m].mean(axis=-1)
    return out


# --------------------------------------------------------------------------- synthetic cohort

def synthesize(n: int, size: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients with known risk factors and flow reserve, and their (n, 3, size, size) polar maps.

    Effects built in (so a model can be checked against them): MFR falls with diabetes, smoking,
    hypertension, dyslipidemia and age, women have a higher MFR; a third of patients has a
    territorial flow defect; rest perfusion shows sex-specific attenuation (anterior wall in women,
    inferior wall in men); hypertension brings a relatively brighter septum (hypertrophy); smokers
    have a patchier rest perfusion (a texture, not a segment-mean effect). Every effect has
    patient-to-patient variability and look-alikes in other patients (attenuation artefacts,
    some septal brightness, some patchiness), so that no risk factor is trivially readable.
    """
    rng = np.random.default_rng(seed)
    seg = segment_map(size)
    inside = seg > 0
    age = np.clip(rng.normal(63, 10, n), 30, 90)
    male = rng.random(n) < 0.6
    smoking = rng.random(n) < 0.3
    htn = rng.random(n) < 0.5
    dyslip = rng.random(n) < np.where(htn, 0.6, 0.4)
    diabetes = rng.random(n) < np.where(htn, 0.35, 0.15)
    log_mfr = (np.log(2.6) - 0.22 * diabetes - 0.06 * smoking - 0.10 * htn - 0.08 * dyslip
               - 0.008 * (age - 63) + 0.08 * ~male + rng.normal(0, 0.18, n))
    global_mfr = np.exp(log_mfr)
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    r = np.hypot(xx - c, yy - c) / (size / 2.0)
    ang = (np.degrees(np.arctan2(c - yy, xx - c)) + 360.0) % 360.0
    anterior = np.exp(-0.5 * (((ang - 90 + 180) % 360 - 180) / 35.0) ** 2) * (r > 0.3)
    inferior = np.exp(-0.5 * (((ang - 270 + 180) % 360 - 180) / 35.0) ** 2) * (r > 0.3)
    septal = np.exp(-0.5 * (((ang - 180 + 180) % 360 - 180) / 40.0) ** 2) * (r > 0.3)
    maps = np.zeros((n, 3, size, size), dtype=np.float32)
    seg_mfr = np.zeros((n, N_SEGMENTS))
    for i in range(n):
        factor = np.exp(rng.normal(0, 0.06, N_SEGMENTS))
        if rng.random() < 0.33:
            terr = TERRITORIES[rng.choice(list(TERRITORIES))]
            factor[np.asarray(terr) - 1] *= rng.uniform(0.5, 0.8)
        seg_mfr[i] = global_mfr[i] * factor
        mfr_px = np.where(inside, seg_mfr[i][np.clip(seg, 1, None) - 1], 0.0)
        mfr_px = gaussian_filter(mfr_px, 0.8) + rng.normal(0, 0.05, (size, size))
        rest = 80.0 + rng.normal(0, 2.0, (size, size))
        # soft-tissue attenuation of variable depth: breast (anterior) mostly in women, diaphragm
        # (inferior) mostly in men, and an attenuation artefact at a random site in anyone
        rest -= rng.uniform(0, 10 if not male[i] else 4) * anterior + rng.uniform(0, 10 if male[i] else 4) * inferior
        site = rng.uniform(0, 360)
        rest -= rng.uniform(0, 6) * np.exp(-0.5 * (((ang - site + 180) % 360 - 180) / 30.0) ** 2) * (r > 0.3)
        # hypertrophy in hypertension: a relatively brighter septum, of variable degree
        rest += (rng.uniform(0, 2) + rng.uniform(0, 2.5) * htn[i]) * septal
        rest = gaussian_filter(rest, 0.7)
        flow = np.clip(mfr_px / max(mfr_px[inside].max(), 1e-6), 0.1, None) ** 0.7
        # Both maps are scaled to 100% at the maximum of the texture-free map, so that the texture
        # below changes the pattern, not the segment means.
        rest_scale, stress_scale = rest[inside].max(), (rest * flow)[inside].max()
        # patchy uptake, more so in smokers: a zero-mean texture rather than a segment-level change
        patchiness = rng.uniform(0.6, 1.6) + 0.6 * smoking[i]
        rest = rest + gaussian_filter(rng.normal(0, 3.0, (size, size)), 1.0) * patchiness * 2.0
        stress = rest * flow / max(stress_scale, 1e-6) * 100.0 + rng.normal(0, 1.5, (size, size))
        rest = rest / max(rest_scale, 1e-6) * 100.0
        for ch, m in enumerate((rest, stress, mfr_px)):
            maps[i, ch] = np.where(inside, m, 0.0)
    table = pd.DataFrame({
        "patient_id": [f"PF{i + 1:04d}" for i in range(n)], "age": age.round(1), "sex_male": male.astype(int),
        "smoking": smoking.astype(int), "hypertension": htn.astype(int), "dyslipidemia": dyslip.astype(int),
        "diabetes": diabetes.astype(int)})
    for s, name in enumerate(SEGMENT_TASKS):
        table[name] = seg_mfr[:, s].round(4)
    table["global_mfr"] = seg_mfr.mean(axis=1).round(4)
    table["impaired_mfr"] = (table["global_mfr"] < IMPAIRED_MFR).astype(int)
    return table, maps


def write_cohort(table: pd.DataFrame, maps: np.ndarray, root: Path) -> None:
    """Write maps/<patient_id>.npy (3, H, W: rest, stress, MFR) and labels.csv under root."""
    (root / "maps").mkdir(parents=True, exist_ok=True)
    for pid, m in zip(table["patient_id"], maps):
        np.save(root / "maps" / f"{pid}.npy", m.astype(np.float32))
    table.to_csv(root / "labels.csv", index=False)


def synthetic_root(cache_dir: Path, n: int, size: int, seed: int) -> Path:
    """Write the synthetic cohort once per (n, size, seed) under the cache, then reuse it."""
    key = hashlib.sha1(json.dumps([n, size, seed, GENERATOR_VERSION]).encode()).hexdigest()[:10]
    root = Path(cache_dir) / "spect_polar" / f"perfusion-{key}"
    if not (root / "labels.csv").exists():
        table, maps = synthesize(n, size, seed)
        tmp = root.with_name(root.name + ".tmp")
        write_cohort(table, maps, tmp)
        if not root.exists():  # written whole, then renamed: a killed run never leaves half a cohort
            tmp.rename(root)
    return root


def read_cohort(root: Path) -> pd.DataFrame:
    """labels.csv of a perfusion cohort folder, checked; adds record_id and the map path."""
    root = Path(root)
    csv = root / "labels.csv"
    if not csv.exists():
        raise CardioError(f"perfusion cohort {root}: labels.csv not found")
    table = pd.read_csv(csv, dtype={"patient_id": str})
    need = ["patient_id"] + SEGMENT_TASKS + [t for t in RISK_TASKS if t != "impaired_mfr"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise CardioError(f"{csv}: column(s) {missing} missing")
    bad = [c for c in need[1:] if table[c].isna().any()]
    if bad:
        raise CardioError(f"{csv}: column(s) {bad} have missing values")
    for c in RISK_TASKS[1:]:
        if not set(table[c].unique()) <= {0, 1}:
            raise CardioError(f"{csv}: column {c!r} must be 0/1")
    if "impaired_mfr" not in table.columns:
        table["impaired_mfr"] = (table[SEGMENT_TASKS].mean(axis=1) < IMPAIRED_MFR).astype(int)
    table["record_id"] = table["patient_id"].astype(str)
    table["map_path"] = [str(root / "maps" / f"{p}.npy") for p in table["patient_id"]]
    return table


def load_map(path: str | Path, size: int | None = None) -> np.ndarray:
    """One (3, H, W) float32 polar map from .npy, checked; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise CardioError(f"polar map {path} not found")
    try:
        m = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CardioError(f"polar map {path} is not a readable .npy array: {e}") from None
    if m.ndim != 3 or m.shape[0] != 3 or m.shape[1] != m.shape[2]:
        raise CardioError(f"polar map {path} must have shape (3, N, N) (rest, stress, MFR); got {m.shape}")
    if size is not None and m.shape[1] != size:
        raise CardioError(f"polar map {path} is {m.shape[1]}x{m.shape[2]}, the cohort's maps are {size}x{size}")
    if not np.isfinite(m).all():
        raise CardioError(f"polar map {path} holds {int((~np.isfinite(m)).sum())} NaN/inf value(s)")
    return m.astype(np.float32)


def load_maps(table: pd.DataFrame, progress=None) -> np.ndarray:
    paths = table["map_path"].tolist()
    first = load_map(paths[0])
    it = progress(paths, desc="read polar maps", total=len(paths)) if progress else paths
    return np.stack([load_map(p, first.shape[1]) for p in it])


# --------------------------------------------------------------------------- the network

class PolarResNet(nn.Module):
    """A torchvision ResNet on 3-channel polar maps (rest, stress, MFR as the three input planes)."""

    def __init__(self, arch: str, n_outputs: int, imagenet: bool = False) -> None:
        super().__init__()
        import torchvision

        builders = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34,
                    "resnet50": torchvision.models.resnet50}
        if arch not in builders:
            raise CardioError(f"perfusion.arch must be one of {sorted(builders)}, got {arch!r}")
        weights = None
        if imagenet:
            # Real ImageNet weights for users with internet (torchvision downloads and caches them).
            weights = {"resnet18": "IMAGENET1K_V1", "resnet34": "IMAGENET1K_V1", "resnet50": "IMAGENET1K_V2"}[arch]
        try:
            self.net = builders[arch](weights=weights)
        except Exception as e:  # no network, or a corrupt download
            raise CardioError(f"cannot load ImageNet weights {weights} for {arch}: {e}; "
                              "set perfusion.imagenet=false to train from scratch") from None
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else ((0.5,) * 3, (0.25,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def new_head(self, n_outputs: int) -> None:
        self.net.fc = nn.Linear(self.net.fc.in_features, n_outputs)


def _scaled(maps: np.ndarray) -> np.ndarray:
    return (maps / CHANNEL_SCALE[None, :, None, None]).astype(np.float32)


def _neg_mae(y: np.ndarray, out: np.ndarray) -> float:
    return -float(np.mean(np.abs(np.asarray(out) - np.asarray(y))))


def _mean_auc(y: np.ndarray, out: np.ndarray) -> float:
    """Mean AUC over the risk-factor outputs that have both classes in the validation rows."""
    aucs = [roc_auc_score(y[:, j], out[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return float(np.mean(aucs)) if aucs else 0.0


@dataclass
class PerfusionModel:
    step1: PolarResNet
    step2: PolarResNet
    baselines: dict
    thresholds: dict[str, float]
    train_patients: list[str] = field(default_factory=list)
    history: dict = field(default_factory=dict)


def _freeze(model: PolarResNet, prefixes: list[str]) -> None:
    for name, p in model.net.named_parameters():
        p.requires_grad = not any(name.startswith(pref) for pref in prefixes)


def _step_settings(step: dict, n_fit: int) -> dict:
    """Engine settings of one step; a last batch of one row would break BatchNorm, so avoid it."""
    s = dict(step)
    bs = int(s.get("batch_size") or 32)
    while n_fit % bs == 1 and bs < n_fit:
        bs += 1
    s["batch_size"] = bs
    return s


def train_perfusion(features, train_index: np.ndarray, cfg: dict, ctx) -> PerfusionModel:
    """Two-step ResNet training on the training fold, plus the 17-segment regression baselines."""
    with cpu_threads(cfg.get("cpu_threads"), ctx.device):
        return _train_perfusion(features, train_index, cfg, ctx)


def _train_perfusion(features, train_index: np.ndarray, cfg: dict, ctx) -> PerfusionModel:
    table, maps = features.table, features.x["maps"]
    fit_rows, val_rows = inner_split(table, train_index, fraction=float(cfg["val_fraction"]), seed=ctx.seed,
                                     label="impaired_mfr")
    x = _scaled(maps)
    y_seg = table[SEGMENT_TASKS].to_numpy(np.float32)
    y_risk = table[RISK_TASKS].to_numpy(np.float32)
    E = ctx.engine
    torch.manual_seed(int(ctx.seed))
    step1 = PolarResNet(cfg["arch"], N_SEGMENTS, bool(cfg["imagenet"]))
    _freeze(step1, list(cfg["freeze"]))
    r1 = E.fit(step1, E.ArrayDataset(x[fit_rows], y_seg[fit_rows]), E.ArrayDataset(x[val_rows], y_seg[val_rows]),
               ctx, name="perfusion-step1-mfr", settings=_step_settings(cfg["step1"], len(fit_rows)),
               loss_fn=nn.MSELoss(), metric=_neg_mae)
    step1 = r1.model
    # Step 2: the backbone starts from step 1's weights, a new head learns the risk factors.
    step2 = PolarResNet(cfg["arch"], N_SEGMENTS, False)
    step2.load_state_dict({k: v.detach().cpu().clone() for k, v in step1.state_dict().items()})
    step2.new_head(len(RISK_TASKS))
    _freeze(step2, list(cfg["freeze"]))
    r2 = E.fit(step2, E.ArrayDataset(x[fit_rows], y_risk[fit_rows]), E.ArrayDataset(x[val_rows], y_risk[val_rows]),
               ctx, name="perfusion-step2-risk", settings=_step_settings(cfg["step2"], len(fit_rows)), metric=_mean_auc)
    step2 = r2.model
    # Operating points on the inner validation rows (training data, never the test fold).
    val_prob = 1.0 / (1.0 + np.exp(-E.predict(step2, E.ArrayDataset(x[val_rows]), ctx)))
    thresholds = {}
    for j, task in enumerate(RISK_TASKS):
        yv = y_risk[val_rows, j]
        thresholds[f"resnet/{task}"] = (float(ctx.stats.youden_threshold(yv, val_prob[:, j]))
                                        if 0 < yv.sum() < len(yv) else 0.5)
    seg_x = features.x["segments"]
    baselines = {}
    for j, task in enumerate(RISK_TASKS):
        yt = y_risk[train_index, j]
        if not 0 < yt.sum() < len(yt):
            raise CardioError(f"perfusion task {task!r}: the training fold has only one class")
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=float(cfg["baseline_c"]), max_iter=5000))
        lr.fit(seg_x[train_index], yt)
        baselines[task] = lr
        train_prob = lr.predict_proba(seg_x[train_index])[:, 1]
        thresholds[f"logistic/{task}"] = float(ctx.stats.youden_threshold(yt, train_prob))
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(seg_x[train_index], y_seg[train_index])
    baselines["mfr_segments"] = ridge
    return PerfusionModel(step1.cpu().eval(), step2.cpu().eval(), baselines, thresholds,
                          table["patient_id"].iloc[train_index].astype(str).tolist(),
                          {"step1": r1.history, "step2": r2.history})


def predict_perfusion(model: PerfusionModel, features, test_index: np.ndarray, ctx):
    """Predictions: 17 segment MFRs (regression) and six binary tasks, ResNet and 17-segment baselines."""
    from cardio.data import Predictions

    table = features.table.iloc[test_index]
    x = _scaled(features.x["maps"][test_index])
    E = ctx.engine
    ds = E.ArrayDataset(x)
    seg_pred = E.predict(model.step1, ds, ctx)
    risk_prob = 1.0 / (1.0 + np.exp(-E.predict(model.step2, ds, ctx)))
    seg_x = features.x["segments"][test_index]
    ridge_pred = model.baselines["mfr_segments"].predict(seg_x)
    rid, pid = table["record_id"], table["patient_id"]
    parts = []
    for j, task in enumerate(SEGMENT_TASKS):
        y = table[task].to_numpy()
        parts.append(Predictions.from_arrays(rid, pid, y, seg_pred[:, j], model="resnet-polar", task=task,
                                             kind="regression"))
        parts.append(Predictions.from_arrays(rid, pid, y, ridge_pred[:, j], model="ridge-17seg", task=task,
                                             kind="regression"))
    for j, task in enumerate(RISK_TASKS):
        y = table[task].to_numpy()
        parts.append(Predictions.from_arrays(rid, pid, y, risk_prob[:, j], model="resnet-polar", task=task,
                                             kind="binary", threshold=model.thresholds[f"resnet/{task}"]))
        parts.append(Predictions.from_arrays(rid, pid, y, model.baselines[task].predict_proba(seg_x)[:, 1],
                                             model="logistic-17seg", task=task, kind="binary",
                                             threshold=model.thresholds[f"logistic/{task}"]))
    return Predictions.concat(parts)


def segment_features(maps: np.ndarray) -> np.ndarray:
    """The baseline's inputs: the 17-segment means of rest, stress and MFR maps, (n, 51)."""
    seg = segment_map(maps.shape[-1])
    return segment_means(maps, seg).reshape(len(maps), -1)


# --------------------------------------------------------------------------- stages of task perfusion_risk

def load_cohort(cfg: dict, ctx):
    """The user's folder (perfusion.dir) or the synthetic cohort, written once under the cache."""
    from cardio.data import Cohort

    if cfg["dir"]:
        root = Path(cfg["dir"]).expanduser()
    else:
        root = synthetic_root(Path(ctx.cache_dir), int(cfg["n_patients"]), int(cfg["size"]), int(cfg["seed"]))
    table = read_cohort(root)
    paths = dict(zip(table["record_id"], table["map_path"]))
    return Cohort(table, loader=lambda rid: load_map(paths[rid]), label="impaired_mfr", root=root)


def preprocess(cohort, ctx):
    """Read every map back from disk (checked) and add the 17-segment means of each channel."""
    from cardio.data import Cohort

    maps = load_maps(cohort.table, ctx.progress)
    seg = segment_map(maps.shape[-1])
    means = segment_means(maps, seg)
    table = cohort.table.copy()
    for c, ch in enumerate(CHANNELS):
        for s in range(N_SEGMENTS):
            table[f"{ch}_seg{s + 1:02d}"] = means[:, c, s]
    return Cohort(table, cohort.loader, cohort.label, cohort.root, {**cohort.meta, "maps": maps})


def featurize(cohort):
    from cardio.data import Features

    maps = cohort.meta["maps"]
    return Features(cohort.table.copy(), x={"maps": maps, "segments": segment_features(maps)},
                    label="impaired_mfr", meta={"size": maps.shape[-1]})


def _plot_polar_image(ax, img: np.ndarray, seg: np.ndarray, title: str, vmin: float, vmax: float, cmap: str):
    """A bull's-eye polar-map image (outside of the map blank) with the 17-segment borders."""
    shown = np.ma.masked_where(seg == 0, img)
    im = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.contour(seg, levels=np.arange(0.5, 18), colors="k", linewidths=0.4)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return im


def explain_section(model: PerfusionModel, features, index: np.ndarray, ctx):
    """Mean rest/stress/MFR polar maps with and without impaired MFR, and the ResNet's per-segment
    MFR error on the last test fold as a bull's-eye."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cardio.data import Section

    maps = features.x["maps"]
    seg = segment_map(maps.shape[-1])
    y = features.table["impaired_mfr"].to_numpy()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.5), layout="constrained")
    ranges = {"rest": (40, 100, "hot"), "stress": (40, 100, "hot"), "mfr": (1.0, 3.5, "viridis")}
    for r, (grp, name) in enumerate(((0, "MFR >= 2.0"), (1, "impaired MFR < 2.0"))):
        for c, ch in enumerate(CHANNELS):
            lo, hi, cmap = ranges[ch]
            im = _plot_polar_image(axes[r, c], maps[y == grp, c].mean(axis=0), seg,
                                   f"mean {ch}, {name} (n={int((y == grp).sum())})", lo, hi, cmap)
            fig.colorbar(im, ax=axes[r, c], shrink=0.7)
    figs = [ctx.figure_path("perfusion_bullseye_mean_maps")]
    fig.savefig(figs[-1], dpi=110)
    plt.close(fig)

    index = np.asarray(index)
    x = _scaled(maps[index])
    pred = ctx.engine.predict(model.step1, ctx.engine.ArrayDataset(x), ctx)
    mae = np.abs(pred - features.table[SEGMENT_TASKS].to_numpy()[index]).mean(axis=0)
    err = np.where(seg > 0, mae[np.clip(seg, 1, None) - 1], 0.0)
    fig, ax = plt.subplots(figsize=(4.6, 4), layout="constrained")
    im = _plot_polar_image(ax, err, seg, "ResNet step 1: MFR absolute error per segment (last fold)", 0,
                           float(mae.max()) or 1.0, "magma")
    fig.colorbar(im, ax=ax, shrink=0.8)
    figs.append(ctx.figure_path("perfusion_bullseye_mfr_error"))
    fig.savefig(figs[-1], dpi=110)
    plt.close(fig)
    h1, h2 = model.history.get("step1") or [], model.history.get("step2") or []
    text = ("Two-step training (last fold): step 1 regressed the 17 segment MFRs for "
            f"{len(h1)} epoch(s); step 2 started from step 1's backbone and learned the six risk outputs for "
            f"{len(h2)} epoch(s). Mean maps are descriptive over all patients.")
    return Section(title="Perfusion polar maps (task perfusion_risk)", text=text, figures=figs)


def evaluate_section(predictions, ctx):
    """ResNet vs 17-segment logistic regression per risk factor (out-of-fold AUC, paired DeLong)."""
    from cardio.data import Section

    stats = ctx.stats
    t = predictions.table
    rows = []
    for task in RISK_TASKS:
        sub = t[t["task"] == task]
        a = sub[sub["model"] == "resnet-polar"].sort_values("record_id")
        b = sub[sub["model"] == "logistic-17seg"].sort_values("record_id")
        if a.empty or b.empty:
            continue
        ea, eb = stats.delong_ci(a["y_true"], a["y_score"]), stats.delong_ci(b["y_true"], b["y_score"])
        test = stats.delong_test(a["y_true"].to_numpy(), a["y_score"].to_numpy(), b["y_score"].to_numpy())
        rows.append({"task": task, "resnet_auc": ea.estimate, "resnet_ci": f"{ea.ci_low:.3f}-{ea.ci_high:.3f}",
                     "logistic_auc": eb.estimate, "logistic_ci": f"{eb.ci_low:.3f}-{eb.ci_high:.3f}",
                     "delong_p": test.p_value})
    reg = t[t["kind"] == "regression"]
    mae = reg.assign(err=(reg["y_score"] - reg["y_true"]).abs()).groupby("model")["err"].mean()
    text = ("Out-of-fold comparison, as in Yeung et al.: the ResNet on the three polar maps vs a logistic "
            "regression on the 51 segment values (17 segments x rest, stress, MFR). Mean absolute error of the "
            "17 segment MFRs: " + ", ".join(f"{m} {v:.3f}" for m, v in mae.items()) + ".")
    return Section(title="Perfusion risk factors: ResNet vs 17-segment logistic regression", text=text,
                   tables={"AUC per risk factor (out-of-fold, DeLong)": pd.DataFrame(rows)})
