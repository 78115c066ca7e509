"""The orchestrator: runs the stages in order, owns the folds and the run directory, resumes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import cardio
from cardio import bundle, checks, engine, leakage, plugins, report
from cardio import config as config_mod
from cardio.cache import write_text_atomic
from cardio.cohort import CohortProblems
from cardio.context import RunContext
from cardio.data import CardioError, Cohort, Features, ModelState, Predictions, Section, make_folds


def default_cache_dir(config: dict) -> Path:
    if config.get("cache_dir"):
        return Path(config["cache_dir"]).expanduser()
    return Path(os.environ.get("CARDIO_CACHE", Path.home() / ".cache" / "cardio"))


def _logger(out_dir: Path | None, is_main: bool) -> logging.Logger:
    log = logging.getLogger("cardio.run")
    log.handlers.clear()
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    stream.setLevel(logging.INFO if is_main else logging.WARNING)
    log.addHandler(stream)
    if out_dir is not None and is_main:
        fh = logging.FileHandler(out_dir / "run.log")
        fh.setFormatter(fmt)
        log.addHandler(fh)
    # Library warnings become log lines (stderr and run.log) instead of raw text between them.
    logging.captureWarnings(True)
    py_warnings = logging.getLogger("py.warnings")
    py_warnings.handlers[:] = list(log.handlers)
    py_warnings.propagate = False
    py_warnings.filters[:] = [_first_line]
    return log


def _first_line(record: logging.LogRecord) -> bool:
    """A captured warning as one log line (Python appends the offending source line)."""
    record.msg, record.args = " ".join(str(record.getMessage()).splitlines()[:1]).strip(), ()
    return True


def _close_log() -> None:
    """Release run.log (a failed in-process run must not keep it open)."""
    for name in ("cardio.run", "py.warnings"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    logging.captureWarnings(False)


def _new_run_dir(plugin: str, out: str | None) -> Path:
    if out:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            if (path / "run.json").exists() and read_run_json(path).get("status") in ("failed", "interrupted"):
                raise CardioError(f"output directory {path} holds a run that stopped before its end; continue it "
                                  f"with --resume {path}, or choose another --out")
            raise CardioError(f"output directory {path} already holds files; a previous run is never overwritten")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{plugin}-{stamp}"
        n = 1
        while path.exists():
            path = Path("runs") / f"{plugin}-{stamp}-{n}"
            n += 1
    return path


def read_run_json(run_dir: Path) -> dict:
    """A run's run.json; a missing, damaged or foreign one is one line naming it."""
    path = run_dir / "run.json"
    if not path.exists():
        raise CardioError(f"{run_dir} is not a cardio run directory (no run.json)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CardioError(f"{path} is not valid JSON (damaged, or not written by cardio)") from None
    if not isinstance(meta, dict) or "plugin" not in meta:
        raise CardioError(f"{path} does not describe a cardio run (no plugin named)")
    return meta


def _update_run_json(run_dir: Path, **fields: Any) -> None:
    """Merge fields into run.json (rank 0 only; written atomically)."""
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    write_text_atomic(run_dir / "run.json", json.dumps({**meta, **fields}, indent=2, default=str))


def _record_end(run_dir: Path, **fields: Any) -> None:
    """The run's final status, even on a full disk: atomically if possible, else over the old file in place (its
    blocks are free to reuse); never an error that would hide the one that ended the run."""
    try:
        _update_run_json(run_dir, **fields)
    except (CardioError, OSError):
        path = run_dir / "run.json"
        try:
            meta = json.loads(path.read_text())
            with open(path, "r+") as f:
                f.truncate(0)
                f.write(json.dumps({**meta, **fields}, default=str))
        except (OSError, ValueError):
            pass


def _discard_if_empty(run_dir: Path, created: bool) -> bool:
    """Remove a run folder this command made when the run stopped before any fold: nothing to resume there."""
    if not created or any((run_dir / "checkpoints").glob("*")) or (run_dir / "predictions.csv").exists():
        return False
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def _versions(plugin: str, loaded: plugins.Loaded) -> dict:
    out = {"cardio": cardio.__version__, plugin: loaded.versions.get(plugin, "?"), "python": sys.version.split()[0]}
    for dist in ("torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "pluggy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _git_commit() -> str | None:
    """The commit of the project checkout cardio runs from, when it is one."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _broadcast(value: Any, world: int) -> Any:
    if world <= 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _expect(value: Any, kind: type | tuple[type, ...], hook: str, plugin: str) -> Any:
    """A hook's result of the wrong type stops the run here, naming the plugin and the hook."""
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise CardioError(f"plugin {plugin!r}: {hook} returned {type(value).__name__}, expected {names}")
    return value


def validate_cohort(plugin: str, config_file: str | None = None, sets: tuple[str, ...] = (),
                    register: Iterable[object] = ()) -> tuple[str, list[str]]:
    """Load the cohort (nothing else) and check it against the study: (summary, every problem found)."""
    import tempfile

    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    cfg = config_mod.resolve(info.default_config, config_file, tuple(sets), info.moved_keys)
    with tempfile.TemporaryDirectory(prefix="cardio-validate-") as scratch:
        ctx = RunContext(device=torch.device("cpu"), seed=int(cfg["seed"]), out_dir=Path(scratch),
                         cache_dir=default_cache_dir(cfg), log=_logger(None, True), train=dict(cfg["train"]))
        ctx.cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            cohort = _expect(pm.hook.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
        except CohortProblems as e:  # the table's problems, every one of them
            return "the cohort table did not load", [str(p) for p in e.problems]
    problems = checks.cohort_problems(cohort, cfg)
    try:
        leakage.check_config(cfg, cohort)
    except CardioError as e:
        problems.append(str(e))
    return checks.summary(cohort), problems


def run_study(plugin: str, config_file: str | None = None, sets: tuple[str, ...] = (), device: str | None = None,
              out: str | None = None, resume: str | None = None, seed: int | None = None,
              register: Iterable[object] = ()) -> Path:
    """Run one study end to end and return its run directory.

    `register` adds plugin objects (modules, classes with hookimpls) in process, beside the
    installed ones: tests run a plugin without installing it.
    """
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)

    if resume:
        if config_file or sets or seed is not None:
            raise CardioError("--resume continues a run with its own config; drop --config, --set and --seed")
        run_dir = Path(resume)
        previous = read_run_json(run_dir)
        if previous["plugin"] != plugin:
            raise CardioError(f"{run_dir} is a run of plugin {previous['plugin']!r}, not {plugin!r}")
        if previous.get("status") == "finished":
            print(f"cardio: {run_dir} is a finished run; nothing to resume, nothing written", file=sys.stderr)
            return run_dir
        cfg = config_mod.load_yaml(run_dir / "config.yaml")
        # the same checks as a new run: a config.yaml edited since (folds: 1, an unknown key) is one line
        try:
            cfg = config_mod.validate(config_mod.merge(config_mod.resolve(info.default_config), cfg))
        except CardioError as e:
            raise CardioError(f"{run_dir / 'config.yaml'}: {e}") from None
    else:
        extra = (*sets, *((f"seed={seed}",) if seed is not None else ()), *((f"device={device}",) if device else ()))
        cfg = config_mod.resolve(info.default_config, config_file, extra, info.moved_keys)
        run_dir = None

    engine.check_settings(cfg)
    dev = engine.resolve_device(cfg["device"])
    rank, world = engine.init_distributed(dev)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    created = run_dir is None and not (out and Path(out).exists())
    if run_dir is None:
        run_dir = _new_run_dir(plugin, out) if rank == 0 else None
        if rank == 0:
            _check_key_free(run_dir, cfg)
        run_dir = Path(_broadcast(str(run_dir) if run_dir else None, world))
    if rank == 0:
        for sub in ("", "figures", "checkpoints"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        if not resume:
            write_text_atomic(run_dir / "config.yaml", config_mod.dump(cfg))
            _update_run_json(run_dir, plugin=plugin, plugin_version=loaded.versions.get(plugin, "?"),
                             cardio_version=cardio.__version__, world_size=world, device=str(dev),
                             device_name=engine.device_name(dev), versions=_versions(plugin, loaded),
                             git_commit=_git_commit())
        _update_run_json(run_dir, status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"), ended=None,
                         error=None)
    if world > 1:
        torch.distributed.barrier()
    try:
        _run_stages(pm, plugin, loaded, cfg, run_dir, dev, rank, world)
    except BaseException as e:
        _close_log()
        if rank == 0:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, CardioError) and _discard_if_empty(run_dir, created and not resume):
                raise  # stopped on its input or config before any fold: no half-made run is left behind
            _record_end(run_dir, status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        error=f"{type(e).__name__}: {why}")
        raise
    _close_log()
    if rank == 0:
        _update_run_json(run_dir, status="finished", ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return run_dir


def _run_stages(pm, plugin: str, loaded: plugins.Loaded, cfg: dict, run_dir: Path, dev, rank: int,
                world: int) -> None:
    """load -> preprocess -> featurize -> prepare -> folds (train, predict) -> explain -> evaluate -> write."""
    hooks = pm.hook
    log = _logger(run_dir, rank == 0)
    ctx = RunContext(device=dev, seed=int(cfg["seed"]), out_dir=run_dir, cache_dir=default_cache_dir(cfg), log=log,
                     train=dict(cfg["train"]), rank=rank, world_size=world)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    engine.seed_everything(ctx.seed)
    threads = engine.default_threads()
    log.info("cardio %s, plugin %s, device %s, %d process(es), %d CPU thread(s), run %s", cardio.__version__, plugin,
             dev, world, threads, run_dir)
    t0 = time.perf_counter()

    log.info("stage load")
    cohort = _expect(hooks.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
    log.info("stage preprocess (%d records)", len(cohort))
    loaded_outcomes = cohort.outcomes
    cohort = _expect(hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort, Cohort,
                     "cardio_preprocess", plugin)
    cohort.outcomes = tuple(dict.fromkeys([*loaded_outcomes, *cohort.outcomes]))  # a rebuilt Cohort keeps them
    problems = checks.cohort_problems(cohort, cfg)
    if problems:
        raise CardioError(f"the cohort does not fit the study: {'; '.join(problems)} (cardio validate lists them)")
    log.info("cohort: %s", checks.summary(cohort))
    leakage.check_config(cfg, cohort)
    null_control = bool(cfg["cohort"]["permute_labels"])
    if null_control:
        cohort = leakage.permute_outcomes(cohort, ctx.seed)
        log.warning("null control: %s and %d outcome column(s) permuted across patients (cohort.permute_labels)",
                    cohort.label, len(cohort.outcomes))
    log.info("stage featurize")
    features = _expect(hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx), Features, "cardio_featurize", plugin)
    leak_flags = leakage.flag_features(features, cohort, log)
    prepared = None
    if hooks.cardio_prepare.get_hookimpls():
        log.info("stage prepare")
        prepared = hooks.cardio_prepare(features=features, config=cfg, ctx=ctx)
        if world > 1:  # every rank has the prepared result (and rank 0 its files) before the folds
            torch.distributed.barrier()
    label = features.label if features.label in features.table.columns else None
    folds = make_folds(features.table, cfg["cv"], label, ctx.seed)

    predictions, model, last = _cross_validate(hooks, plugin, features, prepared, folds, cfg, ctx)
    predictions = at_level(predictions, cohort)
    if rank == 0:
        report.write_predictions(run_dir, predictions, ctx.pseudonym_key)  # kept even if a later stage fails
    final = _final_model(pm, plugin, loaded, features, prepared, cohort, cfg, ctx, null_control)

    if world > 1:  # every rank trained; rank 0 alone explains, evaluates and writes
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return
        ctx.world_size = 1

    from cardio.stats import StatsError

    try:
        sections = _explain_and_evaluate(pm, plugin, model, features, prepared, last, labelled(predictions), cohort,
                                         cfg, ctx)
    except StatsError as e:
        raise CardioError(f"evaluation failed: {e} (predictions are saved in {run_dir / 'predictions.csv'})") from None
    meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio_version": cardio.__version__,
            "seed": ctx.seed, "device": str(dev), "world_size": world,
            "n_records": int(len(cohort)), "n_patients": int(cohort.table["patient_id"].nunique()),
            "cv": cfg["cv"], "folds": [{"name": f.name, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                                        "n_val": int(len(f.val))} for f in folds],
            "elapsed_s": round(time.perf_counter() - t0, 1), "null_control": null_control,
            "probable_leaks": leak_flags, "final_model": final}
    report.write_run(run_dir, meta, predictions, sections, ctx.pseudonym_key)
    _keep_key(run_dir, predictions, cfg, ctx.pseudonym_key)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, run_dir / "report.md")


def _final_model(pm, plugin: str, loaded: plugins.Loaded, features: Features, prepared: Any, cohort: Cohort,
                 cfg: dict, ctx: RunContext, null_control: bool) -> dict | None:
    """Fit once on every row and export the model bundle (<run>/model/); what was fitted, or None when skipped."""
    if not cfg["final_model"]:
        return None
    why = bundle.support(pm, plugin) or ("the null control's labels are permuted" if null_control else None)
    if why:
        ctx.log.info("final model not fitted: %s", why)
        return None
    every = features.trainable(np.arange(len(features)))  # rows with a target: the folds' rule
    ctx.log.info("final model: fitting on all %d rows (%d patients)", len(every),
                 features.table["patient_id"].nunique())
    ctx.fold, ctx.val_index = "final", np.array([], dtype=int)  # its checkpoints and history are tagged final-<name>
    try:
        model = pm.hook.cardio_train(features=features, train_index=every, prepared=prepared, config=cfg, ctx=ctx)
        if model is None:
            raise CardioError(f"plugin {plugin!r}: cardio_train returned None, expected a model")
        state = _expect(pm.hook.cardio_export_model(model=model, config=cfg, ctx=ctx), ModelState,
                        "cardio_export_model", plugin)
    finally:
        ctx.fold = None
    fitted = {"n_rows": int(len(every)), "n_patients": int(features.table["patient_id"].iloc[every].nunique()),
              "n_records": int(len(cohort)), "label": cohort.label, "bundle": "model"}
    if ctx.is_main:
        import secrets

        salt = secrets.token_hex(16)
        meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"),
                "cardio_version": cardio.__version__, "versions": _versions(plugin, loaded), "seed": ctx.seed,
                "git_commit": _git_commit(), "run": ctx.out_dir.name, **fitted,
                "training_fingerprints": {"salt": salt, **bundle.fingerprints(features, salt)}}
        path = bundle.write(ctx.out_dir, state, cfg, meta)
        ctx.log.info("final model exported: %s (cardio predict --model %s --cohort PATH)", path, ctx.out_dir)
    return fitted


def _about_model(plugin: str, info: dict, run_dir: Path, cfg: dict, meta: dict, n_labelled: int, shared: dict,
                 external: bool) -> Section:
    """The first section of a prediction's report: which model, trained where and when, applied to which cohort."""
    trained = (f"The final model of {plugin} run `{info.get('run') or run_dir.name}` "
               f"(plugin {info.get('plugin_version')}, cardio {info.get('cardio_version')}, exported "
               f"{info.get('created')}), fitted on all {info.get('n_patients')} patients of its cohort after "
               f"cross-validation, was applied unchanged to the cohort in `{Path(cfg['cohort']['dir']).name}`: "
               f"{meta['n_patients']} patients, {n_labelled} labelled prediction rows. Every estimate below is on "
               "this cohort alone; nothing was refitted or recalibrated on it, and the thresholds are those chosen "
               "when the model was trained.")
    if external:
        return Section("External validation", trained + " None of its records matches a training record, by id or "
                       "by content (salted fingerprints kept in the model bundle).")
    return Section("Not an external validation: the cohort overlaps the training cohort",
                   f"**{max(shared['same_id'], shared['same_content'])} of {shared['records']} records** of this "
                   f"cohort are records the model was trained on ({shared['same_id']} by id, "
                   f"{shared['same_content']} by content). Estimates on training records are optimistic: they say "
                   "nothing about new patients. " + trained)


def _check_key_free(out_dir: Path, cfg: dict) -> None:
    """Before anything is written: a key file that report.keep_key would replace stops the command."""
    path = bundle.key_path(out_dir)
    if (cfg.get("report") or {}).get("keep_key") and path.exists():
        raise CardioError(f"{path} already exists; a pseudonym key is never replaced (move it, or choose another "
                          "--out)")


def _keep_key(out_dir: Path, predictions: Predictions, cfg: dict, key: bytes) -> None:
    """report.keep_key: the pseudonym key beside the run, owner-only; named on stderr, never in the run's files."""
    if not (cfg.get("report") or {}).get("keep_key"):
        return
    path = bundle.write_key(out_dir, predictions.table, key=key)
    print(f"cardio: pseudonym key written to {path} (mode 0600; keep it apart from the run)", file=sys.stderr)


def _cross_validate(hooks, plugin: str, features: Features, prepared: Any, folds: list, cfg: dict,
                    ctx: RunContext) -> tuple[Predictions, Any, Any]:
    """One train and one predict per fold; (out-of-fold predictions, last model, last fold)."""
    parts, model, last = [], None, None
    started = time.perf_counter()
    for i, fold in enumerate(folds):
        ctx.fold, ctx.val_index = fold.name, features.trainable(fold.val)
        train = features.trainable(fold.train)  # rows with every target missing are not trained on
        left = "" if i == 0 else f", about {_duration((time.perf_counter() - started) / i * (len(folds) - i))} left"
        ctx.log.info("fold %d of %d (%s): %d train rows, %d test rows%s", i + 1, len(folds), fold.name, len(train),
                     len(fold.test), left)
        if len(train) < len(fold.train):
            ctx.log.info("fold %s: %d training row(s) have no target value and are left out of training",
                         fold.name, len(fold.train) - len(train))
        model = hooks.cardio_train(features=features, train_index=train, prepared=prepared, config=cfg, ctx=ctx)
        if model is None:
            raise CardioError(f"plugin {plugin!r}: cardio_train returned None, expected a model")
        pred = _expect(hooks.cardio_predict(model=model, features=features, test_index=fold.test, config=cfg, ctx=ctx),
                       Predictions, "cardio_predict", plugin)
        parts.append(pred.table.assign(fold=fold.name, repeat=fold.repeat))
        last = fold
    ctx.fold, ctx.val_index = None, np.array([], dtype=int)
    return Predictions(pd.concat(parts, ignore_index=True)), model, last


def labelled(predictions: Predictions) -> Predictions:
    """The rows whose target is known: every metric of a task is computed on its own non-missing rows."""
    table = predictions.table
    return Predictions(table[np.isfinite(table["y_true"].to_numpy(dtype=float))])


def at_level(predictions: Predictions, cohort: Cohort) -> Predictions:
    """Record scores aggregated to the level the plugin predicts at (Cohort.level, by Cohort.aggregate).

    One row per model, task and study (or patient); unchanged when every study has one record.
    """
    if cohort.level == "record" or "study_id" not in cohort.table.columns:
        return predictions
    from cardio.stats import aggregate_scores

    column = "study_id" if cohort.level == "study" else "patient_id"
    ids = dict(zip(cohort.table["record_id"].astype(str), cohort.table[column].astype(str)))
    table = predictions.table
    level_id = table["record_id"].map(ids).fillna(table["record_id"])
    if not level_id.duplicated().any() and level_id.equals(table["record_id"]):
        return predictions
    keys = [c for c in ("model", "task", "kind", "fold", "repeat") if c in table.columns]
    table = table.assign(record_id=level_id)
    group = table[[*keys, "record_id"]].astype(str).agg("|".join, axis=1)
    scores = aggregate_scores(group, table["y_score"], cohort.aggregate)  # in order of first appearance
    first = table.loc[~group.duplicated().to_numpy()].reset_index(drop=True)
    first["y_score"] = scores.to_numpy()
    return Predictions(first)


def _duration(seconds: float) -> str:
    """42 s, 3 min 10 s, 2 h 05 min: how long, as a person says it."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _explain_and_evaluate(pm, plugin, model, features, prepared, last, predictions, cohort, cfg, ctx) -> list[Section]:
    """The report's sections: evaluate's (performance first, subgroups last), then the explanation."""
    sections: list[Section] = []
    explained: list[Section] = []
    log = ctx.log
    if cfg.get("explain", True) and last is not None:
        log.info("stage explain")
        result = pm.hook.cardio_explain(model=model, features=features, index=last.test, config=cfg, ctx=ctx)
        explained = _as_sections(result, "cardio_explain", plugin)
    log.info("stage evaluate")
    # Each plugin's evaluate is called on its own (in pluggy's order: the built-in performance
    # section first, subgroups last) so that a wrong result names the plugin that gave it.
    everyone = {p for _, p in pm.list_name_plugin()}
    for impl in reversed(pm.hook.cardio_evaluate.get_hookimpls()):
        only = pm.subset_hook_caller("cardio_evaluate", remove_plugins=everyone - {impl.plugin})
        for result in only(predictions=predictions, cohort=cohort, features=features, prepared=prepared,
                           config=cfg, ctx=ctx):
            sections += _as_sections(result, "cardio_evaluate", impl.plugin_name)
    return sections + explained


def _as_sections(result: Any, hook: str, plugin: str) -> list[Section]:
    if result is None:
        return []
    items = result if isinstance(result, (list, tuple)) else [result]
    for item in items:
        _expect(item, Section, hook, plugin)
    return list(items)


# What a bundle's config may never decide for the user: where files may be read, where the cache lives, whether a
# key file of identifiers is written. They come from the user's command and environment only.
USER_KEYS = ("cohort.allow_outside_paths", "cache_dir", "report.keep_key")


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


def predict_cohort(model_dir: str, cohort_path: str, out: str | None = None, device: str | None = None,
                   register: Iterable[object] = (), sets: tuple[str, ...] = (), keep_key: bool = False) -> Path:
    """Apply a run's model bundle to a new cohort of the same plugin; return the output directory.

    load -> preprocess -> featurize with the bundle's config (the cohort path set by the plugin's
    cohort.dir) -> cardio_import_model -> cardio_predict on every row. predictions.csv always; when
    the cohort has labels, the core's performance section on it (external validation, with CIs).
    """
    run_dir = Path(model_dir)
    plugin = read_run_json(run_dir)["plugin"]
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    why = bundle.support(pm, plugin)
    if why:
        raise CardioError(f"plugin {plugin!r} cannot apply a trained model to a new cohort: {why}")
    info, state, cfg = bundle.read(run_dir)
    if info.get("plugin") != plugin:
        raise CardioError(f"{run_dir / 'model' / 'bundle.json'} is a bundle of plugin {info.get('plugin')!r}, "
                          f"but the run is one of {plugin!r}")
    if not Path(cohort_path).exists():
        raise CardioError(f"cohort {cohort_path} does not exist")
    plugin_info = plugins.info(pm, plugin)
    cfg = config_mod.validate(config_mod.merge(config_mod.resolve(plugin_info.default_config), cfg))
    cfg = _user_only(cfg, tuple(sets), keep_key, plugin_info.moved_keys)
    key = "cohort.dir"
    cfg["cohort"]["dir"] = str(Path(cohort_path).expanduser().absolute())
    cfg["cohort"]["permute_labels"] = False
    if device:
        cfg["device"] = device
    dev = engine.resolve_device(cfg["device"])
    out_dir = _new_run_dir(f"{plugin}-predict", out)
    _check_key_free(out_dir, cfg)
    for sub in ("", "figures", "checkpoints"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "config.yaml", config_mod.dump(cfg))
    _update_run_json(out_dir, plugin=plugin, kind="predict", model=str(run_dir.absolute()),
                     model_bundle={k: info.get(k) for k in ("plugin_version", "cardio_version", "n_patients",
                                                             "created", "weights_sha256")},
                     plugin_version=loaded.versions.get(plugin, "?"), cardio_version=cardio.__version__,
                     device=str(dev), device_name=engine.device_name(dev), versions=_versions(plugin, loaded),
                     git_commit=_git_commit(), status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        _predict_stages(pm, plugin, loaded, info, state, cfg, out_dir, dev, run_dir, key)
    except BaseException as e:
        _close_log()
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        _update_run_json(out_dir, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                         ended=time.strftime("%Y-%m-%dT%H:%M:%S"), error=f"{type(e).__name__}: {why}")
        raise
    _close_log()
    _update_run_json(out_dir, status="finished", ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out_dir


def _predict_stages(pm, plugin: str, loaded: plugins.Loaded, info: dict, state: ModelState, cfg: dict,
                    out_dir: Path, dev, run_dir: Path, key: str) -> None:
    hooks = pm.hook
    log = _logger(out_dir, True)
    ctx = RunContext(device=dev, seed=int(cfg["seed"]), out_dir=out_dir, cache_dir=default_cache_dir(cfg), log=log,
                     train=dict(cfg["train"]))
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    engine.seed_everything(ctx.seed)
    t0 = time.perf_counter()
    if info.get("plugin_version") != loaded.versions.get(plugin):
        log.warning("the model was exported by %s %s; %s is now installed", plugin, info.get("plugin_version"),
                    loaded.versions.get(plugin, "?"))
    log.info("cardio %s, plugin %s, device %s: model of %s applied to the cohort of %s", cardio.__version__, plugin,
             dev, run_dir, key)
    cohort = _expect(hooks.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
    cohort = _expect(hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort, Cohort,
                     "cardio_preprocess", plugin)
    log.info("cohort: %s", checks.summary(cohort))
    features = _expect(hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx), Features, "cardio_featurize", plugin)
    model = hooks.cardio_import_model(state=state, config=cfg, ctx=ctx)
    if model is None:
        raise CardioError(f"plugin {plugin!r}: cardio_import_model returned None, expected a model")
    predictions = _expect(hooks.cardio_predict(model=model, features=features, test_index=np.arange(len(features)),
                                               config=cfg, ctx=ctx), Predictions, "cardio_predict", plugin)
    shared = bundle.overlap(features, info.get("training_fingerprints") or {})
    external = not (shared.get("same_id") or shared.get("same_content"))
    if not external:
        log.warning("%d of %d record(s) of this cohort are records the model was trained on (%d by id, %d by "
                    "content): this is not an external validation", max(shared["same_id"], shared["same_content"]),
                    shared["records"], shared["same_id"], shared["same_content"])
    predictions = at_level(Predictions(predictions.table.assign(fold="external", repeat=0)), cohort)
    report.write_predictions(out_dir, predictions, ctx.pseudonym_key)
    labelled_rows = labelled(predictions)
    meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio_version": cardio.__version__,
            "seed": ctx.seed, "device": str(dev), "world_size": 1, "n_records": int(len(cohort)),
            "n_patients": int(cohort.table["patient_id"].nunique()),
            "kind": "external validation" if external else "validation on records the model was trained on",
            "overlap_with_training": shared,
            "folds": [{"name": "external", "n_train": int(info.get("n_rows", 0)), "n_test": int(len(features)),
                       "n_val": 0}], "model_n_patients": info.get("n_patients"),
            "elapsed_s": round(time.perf_counter() - t0, 1)}
    if len(labelled_rows.table):
        from cardio.performance import evaluate_section
        from cardio.stats import StatsError

        about = _about_model(plugin, info, run_dir, cfg, meta, len(labelled_rows.table), shared, external)
        try:
            sections = [about, evaluate_section(labelled_rows, cfg, ctx)]
        except StatsError as e:
            raise CardioError(f"evaluation failed: {e} (predictions are saved in {out_dir / 'predictions.csv'})") \
                from None
        report.write_run(out_dir, meta, predictions, sections, ctx.pseudonym_key)
    else:
        log.info("the cohort has no labels: predictions only, no external-validation report")
    _keep_key(out_dir, predictions, cfg, ctx.pseudonym_key)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, out_dir / "predictions.csv")
