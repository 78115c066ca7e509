"""What the run reports: the M-mode line and Grad-CAM++ overlays (explain), the paper's Table 1 (evaluate)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

import cardio_stats as stats
from cardio import Cohort, CoreSettings, Features, Predictions, Section, write_csv
from cardio_mmode_septal_flash import attention
from cardio_mmode_septal_flash.cohort import read_sequence
from cardio_mmode_septal_flash.geometry import TANGENT_POINTS
from cardio_mmode_septal_flash.settings import MMode, SeptalFlashSettings
from cardio_mmode_septal_flash.training import THRESHOLD, SeptalFlashModel, model_name, probabilities
from cardio_report.figures import subplots


def synthetic_truth(config: dict) -> str:
    """The planted effects of the plugin's own synthetic cohort, as config values."""
    s = SeptalFlashSettings.of(config).synthetic
    return (f"Synthetic truth: {s.n_patients} A4C-like sequences, {s.n_sf} with septal flash "
            f"(seed {s.seed}, {s.size} x {s.size} px, frame time {s.frame_time_ms} ms). The flash is a "
            f"sin^2 septal excursion toward the LV of flash_amplitude={s.flash_amplitude} x image width "
            f"(x U[{1 - s.flash_spread:.2f}, {1 + s.flash_spread:.2f}] per patient) lasting 70-85% of the "
            f"MVC-AVO interval; every patient's septum moves septal_excursion={s.septal_excursion} x width in "
            f"systole and the lateral wall lateral_excursion={s.lateral_excursion}, with beat jitter "
            f"motion_noise={s.motion_noise} and speckle={s.speckle}. Nothing else differs between classes.")


def line_figure(row: pd.Series, s: SeptalFlashSettings):
    """Fig. 1 of the paper for one record: end-diastolic frame, septum points, the normal line; its M-mode, the
    depth in mm where the clip is calibrated (else in samples)."""
    from cardio_mmode_septal_flash.preprocess import patient_mmodes, septal_lines

    seq = read_sequence(row)
    m = replace(s.mmode, offsets=0)
    [line] = septal_lines(seq, m, s.lv_side)
    mm = patient_mmodes(seq, m, s.lv_side)[0]
    fig, (a, b) = subplots(1, 2, figsize=(9, 4), layout="constrained")
    a.imshow(seq.frames[seq.cycle[0]], cmap="gray")
    a.plot(seq.points[:, 0], seq.points[:, 1], ".", color="lime", ms=2, label="septum (62 points)")
    a.plot(*seq.points[list(TANGENT_POINTS)].T, "o", color="red", ms=4, label="10th and 20th points")
    a.plot([line.start[0], line.end[0]], [line.start[1], line.end[1]], "-", color="yellow", lw=1, label="M-mode line")
    a.arrow(*line.centre, *(line.normal * 0.15 * line.length), color="red", width=0.6, head_width=3)
    a.legend(fontsize=7, loc="lower right")
    a.set_title(f"{row['patient_id']}: end-diastolic frame {seq.cycle[0]}", fontsize=9)
    cycle_ms = (seq.cycle[1] - seq.cycle[0]) * seq.frame_time_ms
    depth = line.length_mm if line.length_mm is not None else mm.shape[0]
    b.imshow(mm, cmap="gray", extent=(0, cycle_ms, depth, 0), aspect="auto")
    # the labels on two rows: MVC and AVO are often less than a label's width apart
    for t, name, at in ((row.get("mvc_ms"), "MVC", 0.985), (row.get("avo_ms"), "AVO", 0.92)):
        if t is not None and pd.notna(t):
            b.axvline(float(t), color="yellow", lw=1)
            b.text(float(t), at, name, color="yellow", fontsize=7, va="top", ha="left", zorder=3,
                   transform=b.get_xaxis_transform(), bbox={"facecolor": "black", "lw": 0, "pad": 1.0})
    b.set_xlabel("ms after R")
    unit = "mm" if line.length_mm is not None else "samples (clip not calibrated)"
    b.set_ylabel(f"depth, {unit}\nRV (top) -> LV (bottom)")
    b.set_title(f"virtual M-mode, {mm.shape[0]} x {mm.shape[1]}" +
                (f", line {line.length_mm:.0f} mm" if line.length_mm is not None else f", line {line.length:.0f} px"),
                fontsize=9)
    return fig


def line_statement(table: pd.DataFrame, m: MMode) -> str:
    """Which records' lines are in millimetres (a calibrated clip) and which in pixels (the fallback)."""
    calibrated = int(table["line_mm"].notna().sum()) if "line_mm" in table else 0
    n = len(table)
    pixels = f"{m.length} x the image width in pixels"
    if m.length_mm is None:
        return f"M-mode line: {pixels} for all {n} records (mmode_septal_flash.mmode.length_mm is null). "
    if calibrated == n:
        return f"M-mode line: {m.length_mm} mm on all {n} records (pixel spacing of each clip). "
    if calibrated == 0:
        return (f"M-mode line: {pixels} for all {n} records: no clip carries a pixel spacing (DICOM ultrasound "
                f"regions or the table's pixel_spacing_mm), so the {m.length_mm} mm line was not used. ")
    return (f"M-mode line: {m.length_mm} mm on {calibrated} of {n} records (their clips' pixel spacing); "
            f"{pixels} on the {n - calibrated} without a calibration. ")


def _pick(y: np.ndarray, n: int) -> np.ndarray:
    """Up to n records of class 1 (SF), then up to n of class 0 (positions in the explained rows)."""
    return np.concatenate([np.flatnonzero(y == 1)[:n], np.flatnonzero(y == 0)[:n]])


def misclassified(y: np.ndarray, probs: np.ndarray, threshold: float) -> np.ndarray:
    """Positions of the labelled records whose call at `threshold` contradicts their label: missed flashes first,
    then false flashes."""
    called = probs >= threshold
    return np.concatenate([np.flatnonzero((y == 1) & ~called), np.flatnonzero((y == 0) & called)])


def explain_section(model: SeptalFlashModel, features: Features, index: np.ndarray, config: dict, ctx) -> Section:
    """Grad-CAM++ of both variants on the last fold's test patients; overlays, raw maps on disk, attention score."""
    index = np.asarray(index)
    table = features.table.iloc[index]
    # the ids predictions.csv shows, in every figure title, attention table and array written here
    table = table.assign(patient_id=ctx.pseudonyms(table["patient_id"], "P"),
                         record_id=ctx.pseudonyms(table["record_id"], "R"))
    s = SeptalFlashSettings.of(config)
    st = CoreSettings.of(config).stats
    level = st.level
    band, label = s.attention.depth_band, features.label
    figs = [ctx.save_figure(line_figure(table.iloc[0], s), "mmode_line_example", caption=(
        "Where the virtual M-mode line crosses the septum, on the first test record of the last fold, and the "
        "M-mode image it gives."))]
    estimates, rows = [], []
    missed: dict[str, int] = {}
    out = Path(ctx.out_dir) / "attention"
    out.mkdir(parents=True, exist_ok=True)
    for variant in model.nets:
        x = features.x[variant]
        images = x[index, x.shape[1] // 2]
        probs = probabilities(model, variant, images, ctx)
        cams, raw = attention.maps(model, variant, images)
        np.savez_compressed(out / f"gradcampp_{variant}.npz", record_id=table["record_id"].to_numpy().astype(str),
                            normalized=cams.astype(np.float16), raw=raw, p_sf=probs)
        scores = attention.score_table(table, cams, variant, band, label)
        write_csv(out / f"attention_scores_{variant}.csv", scores.astype({label: "Int64"}))
        est = attention.summarize(scores, variant, level, label)
        estimates += est
        for e in est:
            rows.append({"model": model_name(variant), "class": e["group"], "n": e["n"],
                         "attention score": f"{e['estimate']:.3f}",
                         f"{int(level * 100)}% CI": stats.format_interval(e["ci_low"], e["ci_high"]),
                         "even spread": f"{e['area_share']:.3f}"})
        pick = _pick(table[label].to_numpy(), s.attention.n_examples)
        fig = attention.overlay_figure(features.x["mmode"][index[pick]], cams[pick], table.iloc[pick], probs[pick],
                                       variant, band, f"Grad-CAM++ ({model_name(variant)}, last dense block, "
                                       f"{raw.shape[1]}x{raw.shape[2]}); green: SF window x septal band", label)
        figs.append(ctx.save_figure(fig, f"mmode_gradcampp_{variant}", caption=(
            f"Grad-CAM++ of {model_name(variant)} on {len(pick)} test M-modes of the last fold, over the image: "
            "bright is attention; green marks the septal flash window within the septal band, solid and dashed "
            "lines mitral valve closure and aortic valve opening.")))
        wrong = misclassified(table[label].to_numpy(), probs, model.thresholds.get(variant, THRESHOLD))
        missed[variant] = len(wrong)
        if len(wrong):
            shown = wrong[:2 * s.attention.n_examples]
            threshold = model.thresholds.get(variant, THRESHOLD)
            fig = attention.overlay_figure(features.x["mmode"][index[shown]], cams[shown], table.iloc[shown],
                                           probs[shown], variant, band, f"Misclassified test M-modes "
                                           f"({model_name(variant)}, Grad-CAM++; the paper's Figure 3)", label,
                                           called=(probs[shown] >= threshold).astype(int))
            figs.append(ctx.save_figure(fig, f"mmode_misclassified_{variant}", caption=(
                f"The paper's Figure 3: the {len(shown)} of {len(wrong)} misclassified test M-modes of the last fold "
                f"({model_name(variant)}, threshold {model.thresholds.get(variant, THRESHOLD):g}) with their "
                "Grad-CAM++ maps: where the network looked when it was wrong; each title gives the call (pred) and the "
                "truth (gt), as the paper's. Missed flashes first, then flashes called where there were none.")))
    text = (f"Grad-CAM++ (cardio_report.explain.grad_cam, plus=True) of the predicted class on the last dense block, "
            f"for the {len(index)} test records of the last fold. Maps are normalized to [0, 1] per record, high = "
            f"attention, and upsampled to the M-mode; MVC (solid) and AVO (dashed) are marked. Raw maps (before "
            f"scaling, block resolution) and normalized maps are kept in attention/gradcampp_<variant>.npz. Attention "
            f"score: share of the map's mass inside the SF window (SF patients: their true window; others: MVC-AVO) "
            f"and the septal depth band {list(band)} (shares of the M-mode depth); 'even spread' is the score of a "
            f"uniform map; a map that is zero everywhere has no score (n counts the others), nor has a record "
            f"without a label (its map is kept). Misclassified at each model's threshold (the paper's Figure 3): "
            + "; ".join(f"{model_name(v)} {k} of {int(table[label].notna().sum())}" for v, k in missed.items())
            + f". Backbone weights: {model.weights_source}.")
    return Section(title="Septal flash: M-mode attention maps (Grad-CAM++)", text=text, figures=figs,
                   tables={"Attention score per class (mean, log-scale t CI)": pd.DataFrame(rows)},
                   estimates=estimates)


def table_one(estimates: list[dict], tests: list[dict], task: str) -> tuple[pd.DataFrame, dict | None]:
    """The paper's Table 1 from the core's estimates: accuracy (Clopper-Pearson CI, at the 0.5 threshold of the
    argmax) and AUC of each variant side by side, with the interval the performance table prints (its headline: DeLong's
    score interval of the holdout's test set; the cross-validated AUC with its interval in a K-fold run), and the
    core's paired test of full against cropped (the cross-validated difference in a K-fold run, paired DeLong with
    its score interval with one fold)."""
    models = sorted({e["model"] for e in stats.pick(estimates, metric="auc", fold="pooled", task=task)},
                    key=lambda m: (not m.endswith("full"), m))
    rows = []
    for model in models:
        auc = stats.headline_auc(estimates, task=task, model=model)
        if auc is None:
            continue
        acc = stats.pick(estimates, metric="accuracy", fold="pooled", task=task, model=model)
        rows.append({"CNN model": f"w. {model.rsplit('-', 1)[-1]} M-mode", "n test": auc["n"],
                     "accuracy": f"{acc[0]['estimate']:.2f}" if acc else "–",
                     "accuracy CI": stats.format_interval(acc[0]["ci_low"], acc[0]["ci_high"], digits=2) if acc else "",
                     "AUC": f"{auc['estimate']:.2f}", "AUC CI": stats.format_interval(auc["ci_low"], auc["ci_high"],
                                                                                    digits=2),
                     "AUC interval": stats.interval_note(auc["method"])})
    pooled = [t for t in tests if t.get("fold") == "pooled" and t.get("repeat", 0) == 0 and t.get("task") == task]
    paired = stats.paired_test(pooled, models[0], models[1], interval="cv") if len(models) == 2 else None
    return pd.DataFrame(rows), (None if paired is None else {**paired, "a": models[0], "b": models[1]})


def evaluate_sections(predictions: Predictions, cohort: Cohort, features: Features, config: dict,
                      estimates: list[dict], tests: list[dict]) -> list[Section]:
    """Table 1 of the paper from the performance section's estimates, how long the M-mode lines were, the
    synthetic truth."""
    table, test = table_one(estimates, tests, features.label)
    text = ("Test accuracy and AUC of the DenseNet-121 trained on full and on cropped virtual M-modes "
            "(out-of-fold; accuracy at the softmax argmax with a Clopper–Pearson CI, AUC with the interval the "
            "performance table prints, named in the `AUC interval` column: the performance section's estimates, "
            "laid out as the paper's Table 1). ")
    if test and test["diff"] is not None:
        text += (f"Paired test, {test['a']} − {test['b']} (the performance section's; "
                 f"{stats.interval_note(test['method'])}): ΔAUC "
                 f"{stats.format_difference(test['diff'], test['low'], test['high'])}, "
                 f"p = {stats.format_p(test['p'])}. ")
    text += line_statement(features.table, SeptalFlashSettings.of(config).mmode)
    text += cohort.planted_effects(lambda: synthetic_truth(config))
    return [Section(title="Septal flash: Table 1 (full vs cropped M-mode)", text=text,
                    tables={"Table 1: accuracy and AUC": table})]
