"""The fold models a run keeps for the ensemble (`fold_models: true`): each outer fold's model in the model bundle.

nnU-Net predicts a new case with the five models of its cross-validation and averages their softmax outputs;
cardio predicts with the one final model (fitted on every patient after the folds) unless asked. With
`fold_models: true` (opt-in: a run folder stays small without it) the kernel exports each outer fold's model
through the plugin's cardio_export_model in its fit task and hands it here (the hook cardio_keep_fold_model): it is
kept in the task's folder, its network weights in float16 (`fold_models_precision`); the evaluate task, which runs
after every fit and the final model, has them added to `<run>/model/` as `folds/<fold>/` (cardio_add_fold_models: in
the manifest, signed again). Averaging them on a new cohort, and comparing that with the final model, is
`cardio predict --ensemble folds` (ensemble.py). Without this service a run keeps no fold model, and says so.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from cardio.data import ModelState
from cardio.study import bundle, signing, tasks

MODEL = "model"  # a fit task's kept model: tasks/fit-<fold>/model/
HALF = "cardio.float16"  # safetensors metadata: the tensors stored in half precision, read back as float32
HALF_MIN = 1024  # only network weights are halved: small arrays (thresholds, a scaler's means) keep their precision


def write_state(folder: Path, state: ModelState, plugin: str, half: bool) -> None:
    """A fold's ModelState as the kernel's write_state writes a model; with `half`, its float32 tensors of at least
    HALF_MIN elements in float16 (half the bytes), named in the file's metadata (read back as float32: bundle.py)."""
    import torch

    tensors = bundle.as_tensors(state, plugin)
    names = sorted(k for k, t in tensors.items() if half and t.dtype == torch.float32 and t.numel() >= HALF_MIN)
    tensors.update({k: tensors[k].to(torch.float16) for k in names})
    bundle.write_state(folder, ModelState(tensors, state.params), plugin,
                       metadata={HALF: json.dumps(names)} if names else None)


def keep_fold_model(state: ModelState, plugin: str, fold: str, config: dict, run_dir: Path) -> bool:
    """An outer fold's exported model, kept in its fit task's folder for the bundle."""
    dest = tasks.task_dir(run_dir, f"fit-{fold}") / MODEL
    tmp = dest.with_name(f".{MODEL}-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_state(tmp, state, plugin, half=config["fold_models_precision"] == "float16")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return True


def add_fold_models(run_dir: Path, folds: list[str], log: logging.Logger) -> bool:
    """Add every outer fold's kept model to the run's bundle (the evaluate task: after every fit and the final
    model); a run whose folds did not all keep one keeps the final model alone, and says so."""
    if not (run_dir / "model" / "bundle.json").is_file():
        return True
    kept = {f: tasks.task_dir(run_dir, f"fit-{f}") / MODEL for f in folds}
    missing = [f for f, d in kept.items() if not (d / "weights.safetensors").is_file()]
    if missing:
        log.warning("fold models not added to the bundle: fold(s) %s kept none (fitted by an older cardio, or "
                    "without the deploy service); cardio predict --ensemble folds needs every fold's",
                    ", ".join(missing))
        return True
    why = _add(run_dir, kept)
    if why:
        log.warning("fold models not added to the bundle: %s", why)
        return True
    info = bundle.check(run_dir)
    final = (run_dir / "model" / "weights.safetensors").stat().st_size
    log.info("fold models added to the bundle: %d, %.1f MB (the final model %.1f MB); cardio predict --ensemble "
             "folds averages them", len(folds), info["folds_bytes"] / 1e6, final / 1e6)
    return True


def _link(source: str | Path, dest: str | Path) -> None:
    """A hard link where the file system allows one (a fold's weights are not stored twice), else a copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def _add(run_dir: Path, folds: dict[str, Path]) -> str | None:
    """Add the outer folds' models (each a folder of write_state's two files) to <run_dir>/model/ as
    folds/<fold>/, listed in the manifest and signed again; None when added, else why not (the bundle is then left
    as it was: the final model alone)."""
    folder = Path(run_dir) / "model"
    info = bundle.check(run_dir)
    key = signing.signing_key()
    if key is None and (folder / signing.SIGNATURE).exists():
        return "the bundle is signed and no signing key is configured in this process to sign it again"
    tmp = Path(run_dir) / f".model-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # linked, not copied: a bundle's files are never written in place (bundle.json is written anew below)
    shutil.copytree(folder, tmp, ignore=shutil.ignore_patterns(bundle.FOLDS, signing.SIGNATURE, "bundle.json"),
                    copy_function=_link)
    files = {f: info["files"][f] for f in bundle.FILES if f != "bundle.json"}
    for name, source in folds.items():
        dest = tmp / bundle.FOLDS / name
        dest.mkdir(parents=True)
        for f in bundle.FOLD_FILES:
            _link(source / f, dest / f)
            files[f"{bundle.FOLDS}/{name}/{f}"] = bundle.sha256(dest / f)
    size = sum((tmp / f).stat().st_size for f in files if f.startswith(f"{bundle.FOLDS}/"))
    bundle.seal(tmp, {**info, "folds": list(folds), "folds_bytes": size, "files": files}, key)
    bundle.replace(tmp, folder)
    return None
