"""The settings of echo_cmr: its config section `echo_cmr:`, each key with its default, what it means and the values it
allows (`cardio config --plugin echo_cmr` prints them; the core checks a config against them before a run starts).
The cohort folder is the core's `cohort.dir` (labels.csv, one row per clip, + the clips it names; null: the synthetic
cohort below) and `cohort.allow_outside_paths` lets its rows name files elsewhere.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cardio import Settings, setting

# The CMR set of Sahashi et al. (targets.py parses and checks each entry: target, kind, level, label, title, unit).
CMR_TARGETS = (
    {"target": "wma_view", "kind": "binary", "level": "view", "label": "wma_view",
     "title": "WMA in the view's segments"},
    {"target": "lge_view", "kind": "binary", "level": "view", "label": "lge_view",
     "title": "LGE in the view's segments"},
    {"target": "wma", "kind": "binary", "level": "study", "label": "wma_global", "title": "WMA (global)"},
    {"target": "lge", "kind": "binary", "level": "study", "label": "lge_global", "title": "LGE (global)"},
    {"target": "t1_abnormal", "kind": "binary", "level": "study", "label": "t1_ms", "title": "native T1 abnormal"},
    {"target": "t2_abnormal", "kind": "binary", "level": "study", "label": "t2_ms", "title": "T2 abnormal"},
    {"target": "ecv_abnormal", "kind": "binary", "level": "study", "label": "ecv_pct", "title": "ECV abnormal"},
    {"target": "t1_ms", "kind": "continuous", "level": "study", "title": "native T1", "unit": "ms"},
    {"target": "t2_ms", "kind": "continuous", "level": "study", "title": "T2", "unit": "ms"},
    {"target": "ecv_pct", "kind": "continuous", "level": "study", "title": "ECV", "unit": "%"},
)


@dataclass(frozen=True)
class Clip(Settings):
    """What the network sees."""

    size: int = setting(16, "frames resized to size x size (cubic); the paper: 112", ge=4)
    frames: int = setting(8, "frames per clip; the paper: 32", ge=1)
    period: int = setting(2, "sampling period (every 2nd frame)", ge=1)
    fps: int | None = setting(30, "every video resampled to this frame rate first (nearest frame; DICOM FrameTime or "
                                  "the container's rate); null: each video's own frames (period then counts frames)",
                              gt=0)
    keep_aspect: bool = setting(True, "resize at the physical aspect ratio (DICOM ultrasound-region spacing, else "
                                      "square pixels), zero-padded to a square; false: stretch the sector's box to "
                                      "the square")


@dataclass(frozen=True)
class Train(Settings):
    """Engine settings of each view's model (over the core's `train`)."""

    epochs: int = setting(10, "at most this many epochs; the paper: 50 (2 learned nothing: fused WMA AUROC 0.433)",
                          ge=0)
    batch_size: int = setting(4, "clips per optimizer step; the paper: 10 (on ~32 training clips per view, 10 gives "
                                 "3 steps an epoch, too few for a network trained from scratch)", ge=1)
    lr: float = setting(0.001, "AdamW learning rate (the paper's)", gt=0)
    optimizer: str = setting("adamw", "the paper's optimizer (any torch.optim class by name)")
    patience: int = setting(10, "epochs in which no output's validation metric improved before stopping (the "
                                "paper's 10)", ge=0)
    scheduler: str = setting("cosine", "learning-rate schedule (the core's; the paper states only the initial rate)")
    weight_decay: float = setting(0.0001, "AdamW weight decay (the core's; the paper does not state it)", ge=0)
    grad_clip: float = setting(1.0, "max gradient norm (the core's; the paper does not state it)", ge=0)


@dataclass(frozen=True)
class Truth(Settings):
    """Planted effects (the report states them as "synthetic truth")."""

    wma_fraction: float = setting(0.5, "share of patients with WMA in one coronary territory", ge=0, le=1)
    wma_motion_reduction: float = setting(1.0, "how much less the affected wall regions move (1: akinetic)", ge=0,
                                          le=1)
    lge_given_wma: float = setting(0.7, "P(LGE) with WMA", ge=0, le=1)
    lge_without_wma: float = setting(0.1, "P(LGE) without WMA", ge=0, le=1)
    lge_brightness: float = setting(0.0, "brightness added to LGE walls (0: LGE invisible, as in echo)")
    t1_ms: float = setting(1020.0, "mean native T1 (ms)")
    t1_sd: float = setting(35.0, "SD of native T1 (ms)", ge=0)
    t1_lge_shift: float = setting(25.0, "T1 increase with LGE (ms)")
    t2_ms: float = setting(53.0, "mean T2 (ms)")
    t2_sd: float = setting(4.0, "SD of T2 (ms)", ge=0)
    ecv_pct: float = setting(28.0, "mean ECV (%)")
    ecv_sd: float = setting(3.5, "SD of ECV (%)", ge=0)
    ecv_lge_shift: float = setting(3.0, "ECV increase with LGE (%)")


@dataclass(frozen=True)
class Synthetic(Settings):
    """The embedded synthetic cohort (used when cohort.dir is null)."""

    n_patients: int = setting(60, "patients (one study each, three views)", ge=1)
    seed: int = setting(7, "cohort seed", ge=0)
    n_frames: int = setting(32, "frames per written video", ge=2)
    height: int = setting(64, "written frame height (pixels)", ge=16)
    width: int = setting(80, "written frame width (pixels)", ge=16)
    truth: Truth = setting(Truth(), "planted effects (the report states them as \"synthetic truth\")")


@dataclass(frozen=True)
class EchoSettings(Settings):
    """Sahashi et al.: echo videos -> CMR findings, one video CNN per view, fused."""

    section: ClassVar[str] = "echo_cmr"
    real_clips: str | None = setting(None, "folder of real echo DICOM clips shown before/after masking (null: "
                                           "$CARDIO_DATA/echo_dicom)")
    arch: str = setting(
        "r2plus1d_10", "r2plus1d_18 (EchoNet-Dynamic's, which the paper cites); r2plus1d_10 (one block per stage, for "
        "a CPU run); r2plus1d_10_narrow (r2plus1d_10 at a quarter of its widths: the controls' tests)",
        choices=("r2plus1d_18", "r2plus1d_10", "r2plus1d_10_narrow"))
    weights: str | None = setting(None, "kinetics400: torchvision's Kinetics-400 r2plus1d_18 (KINETICS400_V1, "
                                        "downloaded once, checked by hash); or a Kinetics-400 r2plus1d_18 state dict "
                                        "(.pth/.safetensors) whose name carries its sha256's first 8 hex digits; "
                                        "null -> train from scratch")
    workers: int = setting(2, "worker processes that decode and preprocess the videos (ctx.map; 0: one per CPU "
                              "the run may use)", ge=0)
    fusion_c: float = setting(1.0, "inverse L2 strength of the view-fusion logistic regression (each view's weight "
                                   ">= 0)", gt=0)
    fusion_folds: int = setting(2, "inner folds (by patient) of each training fold: the fusion is fitted on each "
                                   "study's view outputs from networks of the other inner folds (never on outputs of "
                                   "networks that trained on that patient); costs fusion_folds more view fits a fold",
                                ge=2)
    table2_interval: str = setting("headline", "Table 2's AUROC intervals: headline (the performance table's: the "
                                               "cross-validated fold DeLong x 2 with K folds, DeLong's score interval "
                                               "of a holdout) | bootstrap (the paper's: percentile bootstrap of "
                                               "stats.n_resamples, patients resampled, stratified by class)",
                                   choices=("headline", "bootstrap"))
    max_days: int = setting(30, "with echo_date and cmr_date: a pair further apart loses its CMR labels (the paper's "
                                "30)", ge=0)
    layout: str = setting("labels", "the cohort folder's table: labels (labels.csv, one row per clip); echonet "
                                    "(EchoNet-Dynamic's FileList.csv + Videos/<FileName>.avi; profile echonet, README)",
                          choices=("labels", "echonet"))
    views: tuple[str, ...] = setting(("A4C", "A2C", "PLAX"), "the echo views: one network each, the study-level "
                                                             "targets fused across them")
    targets: tuple[Mapping[str, str], ...] = setting(
        CMR_TARGETS, "what each view's network learns (targets.py). target: the output's name; kind: binary | "
        "continuous; level: study (one value per study) | view (the label of the segments the view shows, output "
        "<target without _view>_<VIEW>, not fused); label: the table's column (default: the target; a binary target "
        "read from a column in `thresholds` is that value at or above its threshold); title, unit: the report's. The "
        "CMR set (the paper's): WMA and LGE per view and global, T1/T2/ECV abnormal at the thresholds, and T1, T2, "
        "ECV fused by linear regression")
    thresholds: Mapping[str, float] = setting({"t1_ms": 1060, "t2_ms": 58, "ecv_pct": 33},
                                              "abnormal CMR values (the paper's; configurable): a value >= its "
                                              "column's threshold is abnormal (T1 and T2 in ms, ECV in %)")
    clip: Clip = setting(Clip(), "what the network sees")
    train: Train = setting(Train(), "engine settings of each view's model (over the core's `train`)")
    synthetic: Synthetic = setting(Synthetic(), "the embedded synthetic cohort (used when cohort.dir is null)")
