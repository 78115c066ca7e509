"""Where the plugin's settings live: one config namespace, `ecg_transfer`, and where the keys of earlier versions moved.

The cohort's location and the switch for files outside it are the core's (`cohort.dir`,
`cohort.allow_outside_paths`); everything else of the plugin is under `ecg_transfer:`. A config
that still uses an old key is refused in one line naming the new one (PluginInfo.moved_keys).
"""
from __future__ import annotations

NAMESPACE = "ecg_transfer"
#: Sections of earlier versions that moved whole under the namespace (the plugin's part of `report` moved too).
SECTIONS = ("preprocess", "spectrogram", "pretrain", "finetune", "baselines", "gradcam")
#: The data.* keys of earlier versions and their keys now.
DATA_KEYS = {
    "data.cohort_dir": "cohort.dir",
    "data.allow_outside_paths": "cohort.allow_outside_paths",
    "data.n_patients": f"{NAMESPACE}.synthetic.n_patients",
    "data.synthetic_seed": f"{NAMESPACE}.synthetic.seed",
    "data.seconds": f"{NAMESPACE}.synthetic.seconds",
    "data.synthetic_effects": f"{NAMESPACE}.synthetic.effects",
    **{f"data.{k}": f"{NAMESPACE}.{k}" for k in ("fs", "lead", "leads", "skip_bad", "mitdb_dir", "mitdb_lead")},
}


def _leaves(node: dict, prefix: str) -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}.{key}"
        out += _leaves(value, path) if isinstance(value, dict) and value else [path]
    return out


def moved_keys(defaults: dict) -> dict[str, str]:
    """Every key of earlier versions -> its key now, most specific first (config.check_moved names the first found):
    each data.* key and effect, each key of the sections that moved, the plugin's report keys, then the sections."""
    ns = defaults[NAMESPACE]
    out = {f"data.synthetic_effects.{k}": f"{NAMESPACE}.synthetic.effects.{k}" for k in ns["synthetic"]["effects"]}
    out.update(DATA_KEYS)
    # the validation share of a training fold is the core's now: it chooses every plugin's validation rows
    out.update({f"{NAMESPACE}.finetune.val_fraction": "train.val_fraction",
                "finetune.val_fraction": "train.val_fraction"})
    # the SVM is tuned (C, gamma) in inner folds instead of Platt-calibrated: its inner folds' key was renamed
    out[f"{NAMESPACE}.baselines.svm.calibration_cv"] = f"{NAMESPACE}.baselines.svm.tune_cv"
    for section in SECTIONS:
        out.update({leaf: f"{NAMESPACE}.{leaf}" for leaf in _leaves(ns[section], section)})
    out.update({f"report.{k}": f"{NAMESPACE}.report.{k}" for k in ns["report"]})
    out.update({section: f"{NAMESPACE}.{section}" for section in SECTIONS})
    out["data"] = NAMESPACE
    return out
