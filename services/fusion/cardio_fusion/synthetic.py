"""`cardio synthetic-crt`, the fusion service's test bed: one set of CRT patients whose ECG, SPECT and echo (or any
modality plugins) are written by the plugins' own generators (their hook cardio_write_synthetic) from one shared latent
response model, with the truth stated (truth.json, which every run's report on it states: cardio_fusion.truth).

The model. Each patient has one standard-normal component per modality, z_m, correlated `overlap` between
modalities. Response is drawn from logistic(intercept + sum_m w_m z_m). Each plugin receives z_m as the
patient's `drive` (hook `cardio_write_synthetic`) and plants its modality's response signal from it alone, so
w_m is how much modality m carries and `overlap` how much the modalities say the same thing.

Settings. `planted`: every modality carries its own component (w = `weight`, 1.2 by default, each; overlap 0),
so fusion has something to add. `neutral`: only the first modality carries response (w = `weight` for it, 0 for
the others): the other modalities add nothing, and fused against the first modality alone should differ by
chance only.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import config as config_mod
from cardio import plugins
from cardio.data import CardioError, folders
from cardio.data.cache import write_text_atomic
from cardio.data.spreadsheet import write_csv
from cardio_fusion.out_folder import new_folder
from cardio_fusion.truth import PATIENTS, TRUTH, truth_text

SETTINGS = ("planted", "neutral")


def weights_of(setting: str, modalities: list[str], weight: float = 1.2) -> dict[str, float]:
    if not (math.isfinite(weight) and weight > 0):
        raise CardioError(f"--weight {weight} must be a finite number > 0")
    if setting == "planted":
        return {m: float(weight) for m in modalities}
    if setting == "neutral":
        return {m: (float(weight) if i == 0 else 0.0) for i, m in enumerate(modalities)}
    raise CardioError(f"--setting {setting!r}: use one of {', '.join(SETTINGS)}")


def latent(n: int, seed: int, modalities: list[str], setting: str = "planted", overlap: float = 0.0,
           intercept: float = 0.0, weight: float = 1.2) -> tuple[pd.DataFrame, dict]:
    """patient_id, responder and one drive per modality (drive_<m>); the truth that made them."""
    if not 0.0 <= overlap < 1.0:
        raise CardioError(f"--overlap {overlap} must lie in [0, 1)")
    if n < 20:
        raise CardioError(f"--patients {n}: a multimodal cohort needs at least 20 patients")
    if not 0 <= seed < 2**32:
        raise CardioError(f"--seed {seed} must be an integer from 0 to 2**32 - 1")
    w = weights_of(setting, modalities, weight)
    k = len(modalities)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 30]))
    cov = np.full((k, k), overlap) + (1 - overlap) * np.eye(k)
    z = rng.multivariate_normal(np.zeros(k), cov, size=n)
    logit = intercept + z @ np.array([w[m] for m in modalities])
    responder = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    table = pd.DataFrame({"patient_id": [f"p{i + 1:04d}" for i in range(n)], "responder": responder,
                          **{f"drive_{m}": z[:, j] for j, m in enumerate(modalities)}})
    truth = {"setting": setting, "weights": w, "overlap": overlap, "intercept": intercept, "n_patients": n,
             "seed": seed, "responders": int(responder.sum()), "auc_of_drive": _aucs(table, modalities, logit)}
    return table, truth


def _aucs(table: pd.DataFrame, modalities: list[str], logit: np.ndarray) -> dict[str, float]:
    """The AUC an ideal reader of each modality (its drive) and of all of them (the true logit) would reach."""
    from sklearn.metrics import roc_auc_score

    y = table["responder"].to_numpy()
    out = {m: round(float(roc_auc_score(y, table[f"drive_{m}"])), 3) for m in modalities}
    out["all modalities"] = round(float(roc_auc_score(y, logit)), 3)
    return out


def write_cohort(out: Path, modalities: list[str], n: int = 300, seed: int = 0, setting: str = "planted",
                 overlap: float = 0.0, missing: float = 0.0, sets: dict[str, tuple[str, ...]] | None = None,
                 register: Iterable[object] = (), weight: float = 1.2) -> dict:
    """Write <out>/patients.csv, <out>/<plugin>/ for each modality plugin, truth.json; return the truth."""
    if len(set(modalities)) != len(modalities) or len(modalities) < 2:
        raise CardioError(f"--plugins {modalities}: name at least two different modality plugins")
    if not 0.0 <= missing < 0.5:
        raise CardioError(f"--missing {missing} must lie in [0, 0.5)")
    folders.output_path(out)  # a dangling link or a file is refused before any plugin loads
    loaded = plugins.get_plugin_manager(register)
    pms = {m: plugins.select(loaded, m) for m in modalities}
    lacking = [m for m, pm in pms.items() if not pm.hook.cardio_write_synthetic.get_hookimpls()]
    if lacking:
        raise CardioError(f"plugin(s) {lacking} cannot write a modality for a multimodal cohort "
                          "(no cardio_write_synthetic hook)")
    table, truth = latent(n, seed, modalities, setting, overlap, weight=weight)
    with new_folder(out, "cohort folder", "synthetic-crt writes a new cohort folder (choose another --out)") \
            as path:
        return _write_modalities(path, table, truth, pms, modalities, n, seed, missing, sets or {})


def _write_modalities(out: Path, table: pd.DataFrame, truth: dict, pms: dict, modalities: list[str], n: int,
                      seed: int, missing: float, sets: dict[str, tuple[str, ...]]) -> dict:
    """write_cohort's files in its claimed folder `out`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 31]))
    truth["missing"] = {}
    for i, m in enumerate(modalities):
        # the first modality is complete; each other one misses a random `missing` share of the patients
        has = np.ones(n, bool) if i == 0 else rng.random(n) >= missing
        truth["missing"][m] = int((~has).sum())
        part = table.loc[has, ["patient_id", "responder", f"drive_{m}"]].rename(columns={f"drive_{m}": "drive"})
        info = plugins.info(pms[m], m)
        cfg = config_mod.resolve(info.default_config, None, sets.get(m, ()))
        pms[m].hook.cardio_write_synthetic(patients=part.reset_index(drop=True), dest=out / m, seed=seed, config=cfg,
                                           settings=config_mod.plugin_settings(info, cfg))
        stated = _stated(out / m)
        if stated:
            truth.setdefault("planted", {})[m] = stated
    write_csv(out / PATIENTS, table[["patient_id", "responder"]])
    write_text_atomic(out / TRUTH, json.dumps(truth, indent=1))
    write_text_atomic(out / "TRUTH.md", truth_text(truth))
    return truth


def _stated(folder: Path) -> str | None:
    """The planted effect a plugin states in its modality's folder (truth.json's `planted`), if it does."""
    try:
        stated = json.loads((folder / TRUTH).read_text()).get("planted")
    except (OSError, ValueError, AttributeError):
        return None
    return stated if isinstance(stated, str) else None


def synthetic_crt(out: str, names: str, n: int, setting: str, overlap: float, weight: float, missing: float,
                  seed: int, sets: tuple[str, ...]) -> str:
    """The command's body: --set PLUGIN:KEY=VALUE by plugin, the cohort written, its truth as text."""
    per: dict[str, tuple[str, ...]] = {}
    for item in sets:
        plugin, sep, kv = item.partition(":")
        if not sep:
            raise CardioError(f"--set expects PLUGIN:KEY=VALUE, got {item!r}")
        per[plugin] = (*per.get(plugin, ()), kv)
    truth = write_cohort(Path(out), [p.strip() for p in names.split(",") if p.strip()], n, seed, setting, overlap,
                         missing, per, weight=weight)
    return truth_text(truth)
