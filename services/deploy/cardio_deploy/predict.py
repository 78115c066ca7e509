"""`cardio predict`: a run's model bundle applied to a new cohort of the same plugin.

The cohort goes through the run's own stages (load -> preprocess -> featurize, with the bundle's config and the
cohort path set by the core key cohort.dir), then cardio_import_model and cardio_predict on every row: the final
model, or the mean of the bundle's fold models (ensemble.py). A labelled cohort gets the core's performance section
(an external validation, with CIs), each target it cannot evaluate named with why (external.py).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cardio import config as config_mod
from cardio import services
from cardio.context import RunContext, new_context, run_device
from cardio.data import CardioError, Cohort, Features, ModelState, Predictions, Section
from cardio.study import bundle, outputs
from cardio.study.evaluate import cohort_meta
from cardio.study.fits import threads
from cardio.study.levels import at_level, labelled
from cardio.study.record import RunRecord, keep_key, provenance, read_run_json, run_logger
from cardio.study.stages import Study, expect, open_study
from cardio_deploy import bundle as deploy_bundle
from cardio_deploy import ensemble, external, fingerprints
from cardio_stats import StatsError

ENSEMBLES = ensemble.ENSEMBLES
Models = tuple[ModelState, dict[str, ModelState]]  # the final model's state, and the fold models' (by fold)

# What a bundle's config may never decide for the user: where files may be read, where the cache lives, whether a
# key file of identifiers is written. They come from the user's command and environment only.
USER_KEYS = ("cohort.allow_outside_paths", "cache_dir", "report.keep_key")
NO_FINGERPRINTS = ("the model bundle carries no fingerprints of its training records (exported by an older cardio, "
                   "or without the deploy service)")


def predict_cohort(model_dir: str, cohort_path: str, out: str | None = None, device: str | None = None,
                   register: Iterable[object] = (), sets: tuple[str, ...] = (), keep_key: bool = False,
                   trusted_keys: Sequence[tuple[object, str]] = (), ensemble: str = "final") -> Path:
    """Apply a run's model bundle to a new cohort of the same plugin; return the output directory.

    predictions.csv always; when the cohort has labels, the core's performance section on it (external
    validation, with CIs), each target that cannot carry it named with why. `ensemble`: final (the model fitted
    on every patient) or folds (the mean of the bundle's fold models, compared with the final model in the
    report: ensemble.py).
    """
    if ensemble not in ENSEMBLES:
        raise CardioError(f"--ensemble {ensemble!r}: use one of {', '.join(ENSEMBLES)}")
    run_dir = Path(model_dir)
    study = open_study(read_run_json(run_dir)["plugin"], register)
    info, state, cfg = _bundle(study, run_dir, trusted_keys)
    if not Path(cohort_path).exists():
        raise CardioError(f"cohort {cohort_path} does not exist")
    models = (state, _fold_models(run_dir, info, ensemble))
    cfg = _user_only(config_mod.validate(config_mod.merge(study.config(), cfg)), tuple(sets), keep_key,
                     study.info.moved_keys)
    cfg["cohort"]["dir"] = str(Path(cohort_path).expanduser().absolute())
    cfg["cohort"]["permute_labels"] = False
    if device:
        cfg["device"] = device
    dev = run_device(cfg["device"])[0]
    fields = {"kind": "predict", "model": str(run_dir.absolute()), "ensemble": ensemble, "model_bundle": {
        k: info.get(k) for k in ("plugin_version", "cardio_version", "n_patients", "created", "weights_sha256",
                                 "trust", "folds")}}
    made = provenance(study, dev, **fields)
    record = RunRecord.new(f"{study.plugin}-predict", out, cfg)  # the folder, claimed: released when running ends
    with record.running(cfg, **made):
        ctx = new_context(cfg, record.path, run_logger(record.path / "run.log", True), device=dev)
        _predict(study, info, models, cfg, ctx, run_dir)
    return record.path


def _bundle(study: Study, run_dir: Path, trusted_keys: Sequence[tuple[object, str]]) -> tuple[dict, ModelState, dict]:
    """(the bundle's facts, its final model, its config): signed by a trusted key, when any is given."""
    why = bundle.support(study.pm, study.plugin)
    if why:
        raise CardioError(f"plugin {study.plugin!r} cannot apply a trained model to a new cohort: {why}")
    info, state, cfg = deploy_bundle.read(run_dir, trusted_keys)
    if info.get("plugin") != study.plugin:
        raise CardioError(f"{run_dir / 'model' / 'bundle.json'} is a bundle of plugin {info.get('plugin')!r}, "
                          f"but the run is one of {study.plugin!r}")
    return info, state, cfg


def _fold_models(run_dir: Path, info: dict, ensemble: str) -> dict[str, ModelState]:
    """The bundle's fold models for --ensemble folds (by fold), else none."""
    if ensemble != "folds":
        return {}
    folds = deploy_bundle.read_folds(run_dir, info)
    if not folds:
        raise CardioError(f"{run_dir / 'model'} carries no fold models (a run made with fold_models: false, or by an "
                          "older cardio): predict with --ensemble final, or make the run again")
    return folds


def _user_only(cfg: dict, sets: tuple[str, ...], keep_key: bool, moved: dict) -> dict:
    """The bundle's config with USER_KEYS at the core defaults, then the user's --set and --keep-key over it."""
    defaults = config_mod.core_defaults()
    for key in USER_KEYS:
        *parents, last = key.split(".")
        node, default = cfg, defaults
        for part in parents:
            node, default = node[part], default[part]
        node[last] = default[last]
    for item in sets:  # the user's --set over the model's config, checked like a run's
        over = config_mod.parse_set(item)
        config_mod.check_moved(over, moved, "--set")
        cfg = config_mod.merge(cfg, over)
    config_mod.validate(cfg)
    if keep_key:
        cfg["report"]["keep_key"] = True
    return cfg


def _predict(study: Study, info: dict, models: Models, cfg: dict, ctx: RunContext, run_dir: Path) -> None:
    """The cohort through the run's stages, the model(s) on every row, predictions.csv and the report."""
    log, out_dir, t0 = ctx.log, ctx.out_dir, time.perf_counter()
    if info.get("plugin_version") != study.version:
        log.warning("the model was exported by %s %s; %s is now installed", study.plugin, info.get("plugin_version"),
                    study.version)
    log.info("cardio %s, plugin %s, device %s: model of %s applied to the cohort of cohort.dir",
             study.made_by()["cardio_version"], study.plugin, ctx.device, run_dir)
    log.info("%s", info["trust"])  # what was checked of the bundle: its fingerprint, and its signer if trusted
    cohort = study.cohort(cfg, ctx, check=False)
    features = study.featurize(cohort, cfg, ctx)
    with threads(cfg, ctx):  # the fits' torch threads
        predictions, final = _predicted(study, models, features, cohort, cfg, ctx)
    shared = fingerprints.overlap(features, info.get("training_fingerprints") or {}, cohort)
    external_cohort = shared is not None and not (shared["same_id"] or shared["same_content"])
    if shared is None:
        log.warning("%s: whether this cohort shares records with the training one is unknown", NO_FINGERPRINTS)
    elif not external_cohort:
        log.warning("%d of %d record(s) of this cohort are records the model was trained on (%d by id, %d by "
                    "content): this is not an external validation", max(shared["same_id"], shared["same_content"]),
                    shared["records"], shared["same_id"], shared["same_content"])
    outputs.write_predictions(out_dir, predictions, ctx.pseudonym_key)
    labelled_rows = labelled(predictions)
    meta = {**study.made_by(), "seed": ctx.seed, "device": str(ctx.device), "world_size": 1, **cohort_meta(cohort),
            "kind": _kind(shared, external_cohort),
            "overlap_with_training": shared, "ensemble": "folds" if models[1] else "final",
            "fold_models": list(models[1]),
            "folds": [{"name": "external", "n_train": int(info.get("n_rows", 0)), "n_test": int(len(features)),
                       "n_val": 0}], "model_n_patients": info.get("n_patients"),
            "elapsed_s": round(time.perf_counter() - t0, 1)}
    if len(labelled_rows.table):
        about = _about_model(study.plugin, info, run_dir, cfg, meta, len(labelled_rows.table), shared,
                             external_cohort)
        sections, meta["not_evaluated"] = _external_sections(labelled_rows, final, cohort, len(models[1]), cfg, ctx)
        outputs.write_run(out_dir, meta, predictions, [about, *sections], log, ctx.pseudonym_key)
    else:
        log.info("the cohort has no labels: predictions only, no external-validation report")
    keep_key(out_dir, predictions, cfg, ctx.pseudonym_key)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, out_dir / "predictions.csv")


def _predicted(study: Study, models: Models, features: Features, cohort: Cohort, cfg: dict,
               ctx: RunContext) -> tuple[Predictions, Predictions | None]:
    """(the predictions the report is about, at the cohort's level; the final model's beside them when those are
    the fold ensemble's, else None)."""
    state, folds = models
    model = study.hooks.cardio_import_model(state=state, config=cfg, settings=study.settings(cfg), ctx=ctx)
    if model is None:
        raise CardioError(f"plugin {study.plugin!r}: cardio_import_model returned None, expected a model")
    final = expect(study.hooks.cardio_predict(model=model, features=features, test_index=np.arange(len(features)),
                                              config=cfg, settings=study.settings(cfg), ctx=ctx), Predictions,
                   "cardio_predict", study.plugin)
    final = at_level(Predictions(final.table.assign(fold="external", repeat=0)), cohort)
    if not folds:
        return final, None
    ctx.log.info("--ensemble folds: the mean of the bundle's %d fold models (and the final model, to compare)",
                 len(folds))
    mean = ensemble.fold_predictions(study, folds, features, cfg, ctx)
    return at_level(Predictions(mean.table.assign(fold="external", repeat=0)), cohort), final


def _kind(shared: dict | None, external_cohort: bool) -> str:
    """What the prediction's report is: an external validation only when the bundle's fingerprints say so."""
    if shared is None:
        return "validation on a new cohort"
    return "external validation" if external_cohort else "validation on records the model was trained on"


def _about_model(plugin: str, info: dict, run_dir: Path, cfg: dict, meta: dict, n_labelled: int,
                 shared: dict | None, external_cohort: bool) -> Section:
    """The first section of a prediction's report: which model, trained where and when, applied to which cohort."""
    run = (f"{plugin} run `{info.get('run') or run_dir.name}` (plugin {info.get('plugin_version')}, cardio "
           f"{info.get('cardio_version')}, exported {info.get('created')})")
    which = (f"The final model of {run}, fitted on all {info.get('n_patients')} patients of its cohort after "
             "cross-validation," if meta["ensemble"] == "final" else
             f"The mean of the {len(meta['fold_models'])} fold models of {run} (each fitted on its outer fold's "
             "training patients during cross-validation; `--ensemble folds`, compared with the final model below)")
    trained = (f"{which} was applied unchanged to the cohort in `{Path(cfg['cohort']['dir']).name}`: "
               f"{meta['n_patients']} patients, {n_labelled} labelled prediction rows. Every estimate below is on "
               "this cohort alone; nothing was refitted or recalibrated on it, and the thresholds are those chosen "
               "when the model was trained.")
    if shared is None:
        return Section("Validation on a new cohort: its overlap with the training cohort is unknown", trained +
                       f" Whether any of its records is one the model was trained on is unknown: {NO_FINGERPRINTS}, "
                       "so this may not be an external validation.", part="summary")
    if external_cohort:
        return Section("External validation", trained + " None of its records matches a training record, by id or "
                       "by content (its features' bytes, or the bytes of any file it names: salted fingerprints kept "
                       "in the model bundle).", part="summary")
    return Section("Not an external validation: the cohort overlaps the training cohort",
                   f"**{max(shared['same_id'], shared['same_content'])} of {shared['records']} records** of this "
                   f"cohort are records the model was trained on ({shared['same_id']} by id, "
                   f"{shared['same_content']} by content). Estimates on training records are optimistic: they say "
                   "nothing about new patients. " + trained, part="summary")


def performance_sections(predictions: Predictions, cfg: dict, ctx: RunContext, truth: str | None) -> list[Section]:
    """The report service's performance sections of the cohort's predictions (cardio.services.
    cardio_performance_sections); none without the service (write_run's log line names it)."""
    handed: services.SectionContext = ctx  # what the hook's specification asks of it (pluggy's call is untyped)
    return services.installed().pm.hook.cardio_performance_sections(predictions=predictions, config=cfg, ctx=handed,
                                                                    truth=truth) or []


def _external_sections(rows: Predictions, final: Predictions | None, cohort: Cohort, n_folds: int, cfg: dict,
                       ctx: RunContext) -> tuple[list[Section], list[dict]]:
    """The performance section on every target this cohort can evaluate, the targets it cannot with why, and with
    the fold ensemble its comparison with the final model: (sections, the targets not evaluated)."""

    level = cohort.level
    kept, skipped = external.screen(rows, level)
    sections: list[Section] = []
    for attempt in (1, 2):
        if not len(kept.table):
            break
        try:
            sections.extend(performance_sections(kept, cfg, ctx, cohort.truth))
            break
        except StatsError as e:  # a refusal the screen's rules did not foresee: leave out the task(s) refused
            more = external.failed(kept, cfg, ctx, level) if attempt == 1 else []
            if not more:
                raise CardioError(f"evaluation failed: {e} (predictions are saved in "
                                  f"{ctx.out_dir / 'predictions.csv'})") from None
            skipped += more
            kept = Predictions(kept.table[~kept.table["task"].astype(str).isin({m["task"] for m in more})])
    if skipped:
        ctx.log.warning("%d target(s) not evaluated on this cohort: %s", len(skipped),
                        "; ".join(f"{s['task']} ({s['why'].split(':')[0]})" for s in skipped))
        sections.append(external.section(skipped, level, evaluated=bool(sections)))
    if final is not None:
        tasks_kept = set(kept.table["task"].astype(str))
        final = Predictions(final.table[final.table["task"].astype(str).isin(tasks_kept)])
        sections.append(ensemble.comparison_section(labelled(final), kept, n_folds, float(cfg["stats"]["level"]),
                                                    ctx))
    return sections, skipped
