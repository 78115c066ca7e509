"""What the run reports: the paper's Table 2 layout (AUROC per binary target, per view and fused) and the agreement
of the continuous targets (T1/T2/ECV, or EF), both pivoted from the performance section's estimates; the paper's
WMA-minus-LGE comparison; Grad-CAM over space and time, and the real clips before and after sector masking. Every
row follows the configured targets (targets.py)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio import Cohort, CoreSettings, Features, Predictions, Section
from cardio_echo_cmr import displays
from cardio_echo_cmr.cohort import unpaired
from cardio_echo_cmr.model import weights_source
from cardio_echo_cmr.settings import EchoSettings
from cardio_echo_cmr.synthetic import VIEWS, truth_text
from cardio_echo_cmr.targets import DEFAULT, Target, parse
from cardio_echo_cmr.training import EchoModel
from cardio_echo_cmr.video import load_clip, preprocess_frames, sample_clip
from cardio_imaging.cine import read_cine, sector_mask, to_gray
from cardio_report.figures import subplots

if TYPE_CHECKING:
    from torch import nn


def _pooled(estimates: list[dict], metric: str, model: str, task: str, interval: str = "headline") -> dict | None:
    """The performance table's estimate of one model and task, or None. The AUC: its headline (cross-validated,
    with K folds; DeLong's score interval of a holdout), or with `interval` bootstrap the core's patient
    bootstrap of the pooled scores (the paper's 10,000 resamples in profile=paper)."""
    if metric == "auc" and interval == "bootstrap":
        found = [e for e in stats.pick(estimates, metric="auc", fold="pooled", model=model, task=task)
                 if str(e.get("method", "")).startswith("bootstrap")]
        return found[0] if found else None
    if metric == "auc":
        return stats.headline_auc(estimates, model=model, task=task)
    found = stats.pick(estimates, metric=metric, fold="pooled", model=model, task=task)
    return found[0] if found else None


def table2(estimates: list[dict], predictions: Predictions, targets: tuple[Target, ...] = DEFAULT,
           views: tuple[str, ...] = VIEWS, interval: str = "headline") -> pd.DataFrame:
    """AUROC of each binary target on the studies that have it, with the interval the performance table prints
    (its headline; `interval` bootstrap: its patient bootstrap), from the performance section's estimates: one
    column per view and one for the fusion (a view-level target is not fused)."""
    t = predictions.table
    t = t[(t["kind"] == "binary") & t["y_true"].notna()]
    rows = []
    for target in (x for x in targets if x.binary):
        row = {"label": target.title}
        for model in [f"r2plus1d-{v}" for v in views] + ["fused"]:
            col = model.removeprefix("r2plus1d-")
            per_view = target.level == "view"
            if per_view and col == "fused":
                row[col] = "-"
                continue
            task = target.task(col if per_view else None)
            est = _pooled(estimates, "auc", model, task, interval)
            g = t[(t["model"] == model) & (t["task"] == task)]
            if est is not None:
                row[col] = stats.format_ci(est)
            elif g.empty:
                row[col] = "-"
            else:
                row[col] = "skipped: one class" if not 0 < g["y_true"].sum() < len(g) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_table(estimates: list[dict], targets: tuple[Target, ...] = DEFAULT,
                    views: tuple[str, ...] = VIEWS) -> pd.DataFrame:
    """MAE and R² of each continuous target (T1, T2, ECV; EF) per view and fused, from the performance section's
    estimates (the studies that have the value): a K-fold run's fold means, a holdout's one model's."""
    units = {x.task(v): (x.title, x.unit) for x in targets if not x.binary for v in (*views, None)}
    found = sorted({(e["model"], e["task"]) for e in stats.pick(estimates, metric="mae", fold="pooled")
                    if e["task"] in units})
    rows = []
    for model, task in found:
        name, unit = units[task]
        rows.append({"quantity": f"{name} ({unit})" if unit else name, "view": model.removeprefix("r2plus1d-"),
                     "MAE": stats.format_ci(_pooled(estimates, "mae", model, task), digits=2),
                     "R²": stats.format_ci(_pooled(estimates, "r2", model, task), digits=3)})
    return pd.DataFrame(rows)


#: EchoNet-Dynamic's published EF error on its own test split (Ouyang et al., Nature 2020; 580:252-256): MAE 4.1% is
#: the summary paragraph's "mean absolute error of 4.1%" (author manuscript PMC8979576); RMSE 5.3% and R² 0.81 are its
#: results on the test dataset (Papers with Code lists the paper's MAE 4.05, RMSE 5.32, R² 0.81). The full method:
#: the video network's estimates averaged beat to beat over every cycle its segmentation finds.
ECHONET_PUBLISHED = {"MAE": "4.1", "RMSE": "5.3", "R²": "0.81"}


def echonet_table(estimates: list[dict], views: tuple[str, ...]) -> pd.DataFrame:
    """EF on the file list's TEST videos, fused and per view, beside EchoNet-Dynamic's published figures."""
    rows = [{"source": "published: Ouyang et al. 2020 (Nature 580:252), TEST split",
             "model": "EchoNet-Dynamic (video network, beat to beat)", **ECHONET_PUBLISHED}]
    for model in ("fused", *(f"r2plus1d-{v}" for v in views)):
        if _pooled(estimates, "mae", model, "EF") is None:
            continue
        rows.append({"source": "this run: the file list's TEST videos", "model": model.removeprefix("r2plus1d-"),
                     "MAE": stats.format_ci(_pooled(estimates, "mae", model, "EF"), digits=2),
                     "RMSE": stats.format_ci(_pooled(estimates, "rmse", model, "EF"), digits=2),
                     "R²": stats.format_ci(_pooled(estimates, "r2", model, "EF"), digits=3)})
    return pd.DataFrame(rows)


#: The paper's comparison, fixed before any result: wall motion (function) against LGE (tissue), fused.
COMPARISON = ("wma", "lge")


def delta_auc(predictions: Predictions, n_resamples: int, level: float, model: str = "fused",
              tasks: tuple[str, str] = COMPARISON) -> stats.Estimate:
    """AUROC of tasks[0] minus AUROC of tasks[1] for one model, on the studies that have both labels.

    With K folds: the cross-validated difference (mean of the per-fold differences, the fold-DeLong interval, or
    where one head scores every patient of a fold alike the other's AUC interval less 0.5: counts training
    variability, as the performance section's paired rows do), which the control
    pair reads (benchmarks/controls.py echo_cmr_wma_lge); with fewer than 5 folds, or a fold without both classes
    of a label, the difference with no interval (NO_INTERVAL) and why in `warnings`, as the core's rows. With one
    fold (the paper's holdout, an external set) a paired bootstrap over patients (all of a patient's studies
    together, both AUROCs on each resample): one model's interval."""
    import sklearn
    from sklearn.metrics import auc, roc_curve

    t = predictions.table
    if "repeat" in t:  # repeated k-fold: the first repeat, as the tables show
        t = t[t["repeat"] == t["repeat"].min()]
    t = t[(t["model"] == model) & t["task"].isin(tasks)]
    wide = t.pivot_table(index=["record_id", "patient_id", "fold"], columns="task", values=["y_true", "y_score"])
    wide = wide.dropna()
    a, b = tasks
    arrays = [wide[("y_true", a)].to_numpy(), wide[("y_score", a)].to_numpy(), wide[("y_true", b)].to_numpy(),
              wide[("y_score", b)].to_numpy()]
    patients = wide.index.get_level_values("patient_id").to_numpy()
    folds = wide.index.get_level_values("fold").astype(str).to_numpy()
    if np.unique(folds).size > 1:
        try:
            est = stats.cv_auc_difference(arrays[0], arrays[1], arrays[3], folds, groups=patients, level=level,
                                          y_b=arrays[2])
            est.metric = "auc_difference"
            return est
        except stats.StatsError as exc:  # too few folds, a fold without both classes of a label
            return stats.difference_without_interval(arrays[0], arrays[1], arrays[3], folds, str(exc), level,
                                                     y_b=arrays[2])

    def diff(ya, sa, yb, sb):
        if min(len(set(ya)), len(set(yb))) < 2:
            return float("nan")
        # roc_auc_score's own two steps for 0/1 labels (the same numbers) without its checks, twice a resample
        return float(auc(*roc_curve(ya, sa)[:2]) - auc(*roc_curve(yb, sb)[:2]))

    # bootstrap_metric refuses non-finite arrays itself: sklearn need not check every resample again
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        return stats.bootstrap_metric(diff, *arrays, n_resamples=n_resamples, level=level, metric="auc_difference",
                                      groups=patients)


def comparison_row(est: stats.Estimate, model: str = "fused", tasks: tuple[str, str] = COMPARISON) -> dict:
    """The comparison as a metrics.json estimate: model, task "wma - lge" and fold "pooled", as the core's rows."""
    return {**est.to_dict(), "model": model, "task": " - ".join(tasks), "fold": "pooled"}


def _constant_note(est: stats.Estimate, titles: dict[str, str]) -> str:
    """Where one head scored every study of each fold alike (cv_auc_difference's `constant`), what the interval is."""
    if "constant" not in est.extra:
        return ""
    flat, other = (COMPARISON[1], COMPARISON[0]) if est.extra["constant"] == "B" else COMPARISON
    return (f"; the {titles[flat]} head scored every study of each fold alike (AUROC 0.5 in every fold), so the "
            f"interval is {titles[other]}'s own cross-validated AUROC interval less 0.5")


def comparison_text(est: stats.Estimate, titles: dict[str, str], n_resamples: int) -> str:
    """The report's sentence for the paper's comparison: the estimate, the interval it carries and what it counts."""
    a, b = COMPARISON
    if est.method == stats.NO_INTERVAL:
        how = (f"the cross-validated difference without an interval ({est.warnings[-1]}; the core's rows carry none "
               "there either)")
    elif est.method == stats.CV_METHOD:
        how = (f"the cross-validated difference (the mean of the {est.extra['n_folds']} folds' differences; "
               f"interval: {stats.interval_note(est.method)}; computed here because the core compares models, "
               "not targets" + _constant_note(est, titles) + ")")
    else:
        how = (f"paired bootstrap over patients ({n_resamples} resamples; computed here: the core compares models, "
               "not targets), one model's interval")
    return (f" The paper's comparison, fixed in advance: fused AUROC of {titles[a]} minus {titles[b]}, {how}, on the "
            f"{est.n} studies with both labels: {stats.format_ci(est)}.")


def _method_text(targets: tuple[Target, ...], views: tuple[str, ...], s: EchoSettings, core: CoreSettings,
                 intervals: str = "", fold_level: bool = False, without: bool = False) -> str:
    """What the section's tables hold and where their numbers come from, for the configured targets and views
    (`intervals`: the AUC intervals the performance table printed, named, or with `without` why it printed none;
    `fold_level`: its MAE and R² are a K-fold run's fold means)."""
    thr = s.thresholds
    binary = any(t.binary and t.level == "study" for t in targets)
    continuous = "/".join(t.title.removeprefix("native ") for t in targets if not t.binary)
    level = f"{100 * core.stats.level:g}%"
    regression = ("MAE and R², each the mean of its per-fold values (MAE with an interval from its folds' test noise "
                  f"and their spread where there are {stats.MIN_FOLDS} folds or more, R² without one: "
                  "docs/statistics.md)" if fold_level
                  else f"MAE with its {level} interval (t on the log scale, patients the units) and R² without one "
                  "(one model's predictions: docs/statistics.md)")
    auroc = (f"Out-of-fold AUROC without an interval ({intervals})" if without
             else f"Out-of-fold AUROC with {level} intervals ({intervals or 'none estimated'})")
    measure = (auroc if binary else regression) + (" (the performance section's estimates: each number and interval "
                                                    "is the one in its table)")
    fusion = "; ".join(part for part in (
        f"logistic regression on {_their(views)} logits" if binary else "",
        f"for {continuous} a linear regression on {_their(views)} outputs" if continuous else "") if part)
    if len(views) == 1:
        fusion += ": with one view, a recalibration of its output"
    text = (f"{measure}, laid out like Sahashi et al.'s Table 2: one video network per view ({', '.join(views)}), "
            "each output from the weights of the epoch where its own validation metric was best, test-time averaged "
            "over every window of a clip and over the study's clips of the view, and the fused study-level "
            f"prediction ({fusion}; fitted on the training studies that have the label, on their view outputs from "
            f"networks of {s.fusion_folds} inner folds that never saw those patients, a missing view entering "
            "as 0). Each label's estimates are on the studies that have it.")
    flags = [(t, thr[t.source]) for t in targets if t.binary and t.source in thr]
    if flags:
        units = {t.source: t.unit for t in targets if not t.binary}
        shown = {"t1_ms": "T1", "t2_ms": "T2", "ecv_pct": "ECV"}
        text += " Abnormal thresholds: " + ", ".join(
            f"{shown.get(t.source, t.source)} >= {v}{' ' if units.get(t.source) != '%' else ''}"
            f"{units.get(t.source, '')}".rstrip() for t, v in flags) + "."
    if continuous and binary:
        text += (f" {continuous} agreement: the performance section's {regression}; its Bland-Altman plots are "
                 "there too.")
    if binary and len(views) > 1:
        text += (" Paired comparisons of the models (fused against each view where `stats.reference` is fused): the "
                 "performance section's paired tests (ΔAUC, p, Holm's p per task; with K folds the cross-validated "
                 "difference, which counts training variability).")
    return text + f" Backbone: {weights_source(s)}."


def _their(views: tuple[str, ...]) -> str:
    return "the view's" if len(views) == 1 else f"the {({2: 'two', 3: 'three'}).get(len(views), len(views))} views'"


def evaluate_sections(predictions: Predictions, config: dict, estimates: list[dict],
                      cohort: Cohort, save_figure: displays.SaveFigure | None = None) -> list[Section]:
    """The Table 2 layout and the agreement table from the performance section's `estimates`, and the paper's
    comparison of two targets (which the core does not make) computed here; with `save_figure` (ctx.save_figure)
    also the paper's Figure 1 and Supplementary Figure 1 beside them, and its Table 1 in the cohort part."""
    es = EchoSettings.of(config)
    targets, views = parse(es.targets), es.views
    core = CoreSettings.of(config)
    n, level = core.stats.n_resamples, core.stats.level
    aucs: list[dict] = stats.pick(estimates, metric="auc", fold="pooled")
    in_table = [a for a in aucs if _pooled(estimates, "auc", a["model"], a["task"], es.table2_interval) is a]
    shown = sorted({str(a["method"]) for a in in_table})
    notes = [stats.interval_note(m) if not m.startswith("bootstrap") else
             f"{m}, {n} resamples of patients (all of a patient's studies together, stratified by class), as the "
             "paper's 10,000 bootstrap samples: one model's scores, it ignores training variability" for m in shown]
    without = bool(in_table) and all(a.get("ci_low") is None for a in in_table)
    if without:  # the default's 3 folds: why, not "95% intervals (cv: no interval: ...)"
        notes = sorted({(a.get("warnings") or [stats.interval_note(str(a["method"]))])[0].removeprefix("no interval: ")
                        for a in in_table})
    fold_level = any(str(e["method"]).startswith(("fold mean", "pooled")) for e in stats.pick(estimates, metric="mae",
                                                                                               fold="pooled"))
    text = _method_text(targets, views, es, core, "; ".join(notes), fold_level, without)
    far = int(unpaired(cohort.table, float(es.max_days)).sum())
    if far or all(c in cohort.table for c in ("echo_date", "cmr_date")):
        text += (f" Echo-CMR pairs more than {es.max_days} days apart: {far} of {len(cohort.table)} "
                 "studies, their CMR labels not used.")
    planted = cohort.planted_effects(lambda: "Cohort: synthetic; " + truth_text(es.synthetic.truth.as_dict()) + ".")
    if planted:
        text += " " + planted
    titles = {t.name: t.title for t in targets if t.binary and t.level == "study"}
    rows = []
    if all(task in titles for task in COMPARISON):  # the paper's comparison, where both targets are configured
        delta = delta_auc(predictions, n, level)
        text += comparison_text(delta, titles, n)
        rows.append(comparison_row(delta))
    tables = {}
    if any(t.binary for t in targets):
        tables["AUROC per label, view and fusion"] = table2(estimates, predictions, targets, views,
                                                            es.table2_interval)
    if not all(t.binary for t in targets):
        names = "/".join(t.title.removeprefix("native ") for t in targets if not t.binary)
        tables[f"{names} agreement per view and fused"] = agreement_table(estimates, targets, views)
    if es.layout == "echonet" and any(t.name == "EF" for t in targets):
        tables["EF error beside EchoNet-Dynamic's published figure (%)"] = echonet_table(estimates, views)
        text += (" EchoNet-Dynamic's published EF error (Ouyang et al. 2020, Nature 580:252: MAE 4.1%, RMSE 5.3%, "
                 "R² 0.81 on its test split) is its full method, the video network's estimates averaged beat to beat "
                 "over the cycles its segmentation finds; this run is the video network alone, its clips averaged.")
    title = "Echo → CMR findings (Table 2 layout)" if targets == DEFAULT else "Echo targets (Table 2 layout)"
    figures = [] if save_figure is None else [f for f in (
        displays.figure1(predictions.table, views, save_figure),
        displays.scatter_figure(predictions.table, targets, save_figure)) if f is not None]
    baseline = displays.table1(cohort.table, targets, dict(es.thresholds), views)
    return [Section(title=title, text=text, tables=tables, estimates=rows, figures=figures),
            Section(title="Echo → CMR: Table 1, the cohort (paper's layout)", part="cohort",
                    text=table1_text(baseline, cohort), tables={"Table 1": baseline})]


def table1_text(baseline: pd.DataFrame, cohort: Cohort) -> str:
    """What Table 1 shows, how it was computed, and where the synthetic cohort's characteristics come from."""
    given = [c for c in displays.BASELINE_NAMES if c in cohort.table]
    text = ("As the paper's Table 1, one column of unique patients (each patient's first study): the baseline "
            "characteristics the cohort table gives, the CMR values and the abnormal and global findings, each over "
            "the patients that have it (N), then the echo studies and the studies and patients each view's clips "
            "come from. Computed by the statistics service's Table 1 (cardio_stats.table_one, tableone; "
            + "; ".join(baseline.attrs.get("notes", [])[:1]) + "); the paper's table has no groups and no tests.")
    if not given:
        text += (" The cohort table has none of the baseline columns (age, female, bmi, hypertension, hyperlipidemia, "
                 "diabetes, lvef_cmr, lvef_echo): add them to labels.csv to show them.")
    elif cohort.synthetic and cohort.truth is None:  # the plugin's own synthetic cohort (synthetic.py)
        text += (" Synthetic cohort: age, sex, BMI and the risk factors are drawn near the paper's Table 1 (age 56.0 "
                 "(17.9), 41.8% female), independent of every finding and clip: they describe, never predict.")
    return text


#: Fewest positions per spatial axis a Grad-CAM layer needs: at 16 x 16 px, layer4 is 1 x 1 x 1 and its map
#: is one value, constant after scaling (every overlay of the CPU default was blank).
MIN_CAM_SIDE = 4


def cam_layer(net, x) -> tuple[str, nn.Module]:
    """(name, module) of the deepest residual stage whose output keeps MIN_CAM_SIDE positions per spatial axis
    for input x (layer4 at the paper's 112 x 112, an earlier stage for the small CPU clips)."""
    import torch

    shapes: dict[str, tuple] = {}
    hooks: list = []
    stages = [(name, getattr(net.net, name)) for name in ("layer4", "layer3", "layer2", "layer1")]
    for name, module in stages:
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return next(((n, m) for n, m in stages if min(shapes[n][-2:]) >= MIN_CAM_SIDE), stages[-1])


def gradcam_maps(net, clip: np.ndarray, head: int) -> tuple[np.ndarray, str]:
    """((T, H, W) Grad-CAM of one head over space and time for one (T, H, W) uint8 clip, the layer's name)."""
    import torch

    from cardio_report.explain import grad_cam

    device = next(net.parameters()).device  # the input goes where the weights are (a GPU run's explain)
    x = torch.from_numpy(clip.astype(np.float32))[None, None].expand(-1, 3, -1, -1, -1).contiguous().to(device)
    name, layer = cam_layer(net, x)
    return grad_cam(net, layer, x, target=head)[0], name


def gradcam_strip(clip: np.ndarray, cam: np.ndarray, title: str, n: int = 8):
    idx = np.linspace(0, len(clip) - 1, min(n, len(clip))).round().astype(int)
    fig, axes = subplots(2, len(idx), figsize=(1.6 * len(idx), 3.6), layout="constrained")
    for k, i in enumerate(idx):
        axes[0, k].imshow(clip[i], cmap="gray", vmin=0, vmax=255)
        axes[0, k].set_title(f"frame {i}", fontsize=7)
        axes[1, k].imshow(clip[i], cmap="gray", vmin=0, vmax=255)
        im = axes[1, k].imshow(cam[i], cmap="viridis", alpha=0.5, vmin=0, vmax=1)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes[1, -1], shrink=0.8, label="Grad-CAM (scaled 0-1)")
    fig.suptitle(title, fontsize=9)
    return fig


def write_gif(path: Path, clip: np.ndarray, cam: np.ndarray, fps: float = 8.0) -> Path:
    """The clip with its Grad-CAM blended in (viridis), as an animated GIF (Pillow)."""
    from matplotlib import colormaps
    from PIL import Image

    heat = (colormaps["viridis"](cam)[..., :3] * 255).astype(np.float32)
    grey = np.repeat(clip[..., None], 3, -1).astype(np.float32)
    frames = [Image.fromarray(np.clip(0.55 * g + 0.45 * h, 0, 255).astype(np.uint8)).resize((224, 224))
              for g, h in zip(grey, heat)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return path


def masking_figure(paths: list[Path]):
    """Each real clip's first frame before and after sector masking, with the mask's outline."""
    fig, axes = subplots(2, len(paths), figsize=(3.2 * len(paths), 5.4), layout="constrained")
    axes = np.asarray(axes).reshape(2, -1)
    for k, p in enumerate(paths):
        cine = read_cine(p)
        gray = to_gray(cine.frames)[0]
        mask = sector_mask(cine.frames)
        clip, _ = preprocess_frames(cine.frames, 112, cine.pixel_spacing_mm)
        axes[0, k].imshow(gray, cmap="gray")
        axes[0, k].contour(mask, levels=[0.5], colors=["#E69F00"], linewidths=0.8)
        axes[0, k].set_title(f"{p.name}\n{cine.photometric}, {cine.n_frames} frames", fontsize=7)
        axes[1, k].imshow(clip[0], cmap="gray")
        axes[1, k].set_title("masked, cropped, 112x112 cubic (aspect kept)", fontsize=7)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def real_clips_dir(s: EchoSettings) -> Path | None:
    if s.real_clips:
        return Path(s.real_clips).expanduser()
    if os.environ.get("CARDIO_DATA"):
        return Path(os.environ["CARDIO_DATA"]).expanduser() / "echo_dicom"
    return None


def _shown_study(model: EchoModel, table: pd.DataFrame, index: np.ndarray, label: str) -> tuple[int, str]:
    """(row, its label as text): the first test study positive for a binary label, else the first test study."""
    target = next(t for t in model.targets if t.name == label)
    values = table[label].to_numpy()[index]
    pos = index[values == 1] if target.binary else index[:0]
    pick = int(pos[0] if len(pos) else index[0])
    value = table[label].iloc[pick]
    return pick, "missing" if pd.isna(value) else (str(int(value)) if target.binary else f"{value:.4g}")


def explain_section(model: EchoModel, features: Features, index: np.ndarray, s: EchoSettings, ctx) -> Section:
    """Grad-CAM over space and time of the label's head (global WMA in the CMR set) on one test study per view,
    positive where the label is binary (its first clip of the view; strip + GIF), and the real clips before and
    after masking when a folder of them is configured."""
    figs, gifs, layers = [], [], set()
    label = features.label
    title = next(t.title for t in model.targets if t.name == label)
    pick, shown = _shown_study(model, features.table, np.asarray(index), label)
    frames, period = s.clip.frames, s.clip.period
    head = [t.name for t in model.targets].index(label)
    for view in model.view_names:
        clips = features.x[view][pick]
        if not clips:
            continue
        clip, _ = sample_clip(load_clip(clips[0]), 0, frames, period)
        cam, layer_name = gradcam_maps(model.views[view].net_for(label), clip, head)
        layers.add(layer_name)
        name = f"echo_gradcam_{view.lower()}"
        figs.append(ctx.save_figure(gradcam_strip(clip, cam, f"{view}: Grad-CAM of the {title} head "
                                                             f"(study with {label}={shown})"), name, caption=(
            f"Grad-CAM of the {title} output of the {view} network over space and time, on one test study of the "
            f"last fold ({label}={shown}): frames of its first {view} clip (top), with the map over them (bottom).")))
        gifs.append(write_gif(ctx.figure_path(name).with_suffix(".gif"), clip, cam).name)
    real = real_clips_dir(s)
    if real is not None and real.is_dir():
        clips = sorted(real.glob("*.dcm"))
        if clips:
            figs.append(ctx.save_figure(masking_figure(clips), "echo_real_clips_masking", caption=(
                f"The {len(clips)} real echo clips of {real.name}: the first frame with the detected sector outlined "
                "(top), and after masking and cropping to the network's input (bottom).")))
    stage = ", ".join(sorted(layers)) or "none"
    text = ("Grad-CAM (cardio_report.explain.grad_cam on the deepest residual stage that keeps at least "
            f"{MIN_CAM_SIDE} x {MIN_CAM_SIDE} positions: {stage}) of the {title} output over space and time, on "
            "one test study of the last fold; each panel column is one frame of the clip. Animated overlays: "
            f"{', '.join(gifs)} (figures folder). Each output of a view's network is predicted by the weights of "
            "the epoch where its own validation metric was best (AUROC, or minus the MSE of a continuous target): "
            "the table gives that epoch per output and view for this fold (0: no validation rows, the engine's epoch "
            "of lowest training loss; in the engine's history/ files, whose losses cover every epoch, val_metric "
            "counts the epochs in which some output improved: training stops after train.patience epochs without "
            "one).")
    where = "Echo → CMR" if model.targets == DEFAULT else "Echo"
    return Section(title=f"{where}: Grad-CAM and sector masking", text=text, figures=figs,
                   tables={"Best epoch of each output (validation metric)": best_epochs(model)})


def best_epochs(model: EchoModel) -> pd.DataFrame:
    """One row per output: the epoch whose weights predict it, per view, and the epochs each view ran."""
    views = model.view_names
    rows = [{"output": h, **{v: model.views[v].best_epoch[h] for v in views}} for h in model.heads]
    rows.append({"output": "epochs with a validation score", **{v: len(model.history.get(v, [])) for v in views}})
    return pd.DataFrame(rows)
