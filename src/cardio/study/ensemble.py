"""The fold models a run keeps for the ensemble (`fold_models: true`): each outer fold's model in the model bundle.

nnU-Net predicts a new case with the five models of its cross-validation and averages their softmax outputs;
cardio predicts with the one final model (fitted on every patient after the folds) unless asked. With
`fold_models: true` (opt-in: a run folder stays small without it) each fit task exports its outer fold's model
through the plugin's cardio_export_model into its task folder, its network weights in float16
(`fold_models_precision`), and the evaluate task, which runs after every fit and the final model, adds them to
`<run>/model/` as `folds/<fold>/` (in the manifest, signed again: src/cardio/study/bundle.py). Averaging them on a new
cohort, and comparing that with the final model, is `cardio predict --ensemble folds` (the deploy service's
cardio_deploy.ensemble).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio.context import RunContext
from cardio.data import CardioError, ModelState
from cardio.study import bundle, tasks

if TYPE_CHECKING:
    from cardio.study.stages import Study

MODEL = "model"  # a fit task's exported model: tasks/fit-<fold>/model/


def keep_fold_model(study: Study, model: Any, fold: str, cfg: dict, ctx: RunContext, null_control: bool) -> None:
    """An outer fold's model, exported into its fit task's folder for the bundle (fold_models: true)."""
    plugin = study.plugin
    if not (cfg["final_model"] and cfg["fold_models"]) or null_control or bundle.support(study.pm, plugin):
        return
    state = study.hooks.cardio_export_model(model=model, config=cfg, settings=study.settings(cfg),
                                            ctx=ctx.for_fit(fold))
    if not isinstance(state, ModelState):
        raise CardioError(f"plugin {plugin!r}: cardio_export_model returned {type(state).__name__}, expected "
                          "ModelState")
    dest = tasks.task_dir(ctx.out_dir, f"fit-{fold}") / MODEL
    tmp = dest.with_name(f".{MODEL}-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    bundle.write_state(tmp, state, plugin, half=cfg["fold_models_precision"] == "float16")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def attach_fold_models(run_dir: Path, folds: list[str], log) -> None:
    """Add every outer fold's kept model to the run's bundle (the evaluate task: after every fit and the final
    model); a run whose folds did not all keep one keeps the final model alone, and says so."""
    if not (run_dir / "model" / "bundle.json").is_file():
        return
    kept = {f: tasks.task_dir(run_dir, f"fit-{f}") / MODEL for f in folds}
    missing = [f for f, d in kept.items() if not (d / "weights.safetensors").is_file()]
    if missing:
        if len(missing) < len(folds):
            log.warning("fold models not added to the bundle: fold(s) %s kept none (fitted by an older cardio); "
                        "cardio predict --ensemble folds needs every fold's", ", ".join(missing))
        return
    why = bundle.add_folds(run_dir, kept)
    if why:
        log.warning("fold models not added to the bundle: %s", why)
        return
    info = bundle.check(run_dir)
    final = (run_dir / "model" / "weights.safetensors").stat().st_size
    log.info("fold models added to the bundle: %d, %.1f MB (the final model %.1f MB); cardio predict --ensemble "
             "folds averages them", len(folds), info["folds_bytes"] / 1e6, final / 1e6)
