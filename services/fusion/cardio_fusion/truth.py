"""What a run's report says of a cohort `cardio synthetic-crt` wrote (the fusion service's test bed,
cardio_fusion.synthetic: one set of CRT patients in several modalities from one latent response model): its
truth.json, read beside the modality folder a run reads, or in it. The kernel asks for it when a study loads its
cohort (the hook cardio_cohort_truth, cli.py), so it knows nothing of the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATIENTS = "patients.csv"
TRUTH = "truth.json"


def stated_truth(cohort_dir: str | Path | None) -> str | None:
    """What a run's report says of a cohort `cardio synthetic-crt` wrote: its truth.json (beside the modality folder
    the run reads, or in it) in one paragraph; None for any other cohort."""
    if not cohort_dir:
        return None
    for folder in (Path(cohort_dir), Path(cohort_dir).parent):
        try:
            truth = json.loads((folder / TRUTH).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(truth, dict) and {"weights", "auc_of_drive", "missing"} <= truth.keys():
            body = " ".join(line.strip() for line in truth_text(truth).splitlines()[1:] if line.strip())
            return f"Synthetic cohort, written by `cardio synthetic-crt` (its {folder.name}/{TRUTH}): {body}"
    return None


def truth_text(truth: dict[str, Any]) -> str:
    w = ", ".join(f"{m} {v:g}" for m, v in truth["weights"].items())
    aucs = ", ".join(f"{m} {v:.3f}" for m, v in truth["auc_of_drive"].items())
    miss = ", ".join(f"{m} {v}" for m, v in truth["missing"].items())
    return (f"# Synthetic multimodal CRT cohort ({truth['setting']})\n\n"
            f"{truth['n_patients']} patients, {truth['responders']} responders, seed {truth['seed']}.\n\n"
            f"Response ~ logistic({truth['intercept']:g} + sum of w_m z_m); each modality's drive is its z_m "
            f"(standard normal, pairwise correlation {truth['overlap']:g}). Weights w: {w}.\n\n"
            f"AUC of an ideal reader of each drive, and of the true logit: {aucs}. A model reads its modality "
            "with error, so these bound what it can reach.\n\n"
            f"Patients missing each modality: {miss}.\n"
            + "".join(f"\nPlanted by {m}: {text}.\n" for m, text in (truth.get("planted") or {}).items()))
