"""The orchestrator: runs the stages in order, owns the folds and the run directory, resumes."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import cardio
from cardio import config as config_mod
from cardio import engine, plugins, report
from cardio.context import RunContext
from cardio.data import CardioError, Cohort, Features, Predictions, Section, make_folds


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
    return log


def _new_run_dir(plugin: str, out: str | None) -> Path:
    if out:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise CardioError(f"output directory {path} already holds files; a previous run is never overwritten")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{plugin}-{stamp}"
        n = 1
        while path.exists():
            path = Path("runs") / f"{plugin}-{stamp}-{n}"
            n += 1
    return path


def _resume_config(run_dir: Path, plugin: str) -> dict:
    meta_path = run_dir / "run.json"
    if not meta_path.exists():
        raise CardioError(f"{run_dir} is not a cardio run directory (no run.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("plugin") != plugin:
        raise CardioError(f"{run_dir} is a run of plugin {meta.get('plugin')!r}, not {plugin!r}")
    return config_mod.load_yaml(run_dir / "config.yaml")


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
    hooks = pm.hook

    if resume:
        if config_file or sets or seed is not None:
            raise CardioError("--resume continues a run with its own config; drop --config, --set and --seed")
        run_dir = Path(resume)
        cfg = _resume_config(run_dir, plugin)
    else:
        extra = (*sets, *((f"seed={seed}",) if seed is not None else ()), *((f"device={device}",) if device else ()))
        cfg = config_mod.resolve(info.default_config, config_file, extra)
        run_dir = None

    dev = engine.resolve_device(cfg["device"])
    rank, world = engine.init_distributed(dev)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    if run_dir is None:
        run_dir = _new_run_dir(plugin, out) if rank == 0 else None
        run_dir = Path(_broadcast(str(run_dir) if run_dir else None, world))
    if rank == 0:
        for sub in ("", "figures", "checkpoints"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        if not resume:
            (run_dir / "config.yaml").write_text(config_mod.dump(cfg))
            (run_dir / "run.json").write_text(json.dumps({
                "plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"),
                "cardio_version": cardio.__version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "world_size": world, "device": str(dev)}, indent=2))
    if world > 1:
        torch.distributed.barrier()

    log = _logger(run_dir, rank == 0)
    ctx = RunContext(device=dev, seed=int(cfg["seed"]), out_dir=run_dir, cache_dir=default_cache_dir(cfg), log=log,
                     train=dict(cfg["train"]), rank=rank, world_size=world)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    engine.seed_everything(ctx.seed)
    log.info("cardio %s, plugin %s, device %s, %d process(es), run %s", cardio.__version__, plugin, dev, world, run_dir)
    t0 = time.perf_counter()

    log.info("stage load")
    cohort = _expect(hooks.cardio_load(config=cfg, ctx=ctx), Cohort, "cardio_load", plugin)
    log.info("stage preprocess (%d records)", len(cohort))
    cohort = _expect(hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort, Cohort,
                     "cardio_preprocess", plugin)
    log.info("stage featurize")
    features = _expect(hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx), Features, "cardio_featurize", plugin)
    prepared = None
    if hooks.cardio_prepare.get_hookimpls():
        log.info("stage prepare")
        prepared = hooks.cardio_prepare(features=features, config=cfg, ctx=ctx)
        if world > 1:  # every rank has the prepared result (and rank 0 its files) before the folds
            torch.distributed.barrier()
    label = features.label if features.label in features.table.columns else None
    folds = make_folds(features.table, cfg["cv"], label, ctx.seed)

    parts, model, last = [], None, None
    for fold in folds:
        ctx.fold, ctx.val_index = fold.name, fold.val
        log.info("fold %s: %d train rows, %d test rows", fold.name, len(fold.train), len(fold.test))
        model = hooks.cardio_train(features=features, train_index=fold.train, prepared=prepared, config=cfg, ctx=ctx)
        if model is None:
            raise CardioError(f"plugin {plugin!r}: cardio_train returned None, expected a model")
        pred = _expect(hooks.cardio_predict(model=model, features=features, test_index=fold.test, config=cfg, ctx=ctx),
                       Predictions, "cardio_predict", plugin)
        parts.append(pred.table.assign(fold=fold.name, repeat=fold.repeat))
        last = fold
    ctx.fold, ctx.val_index = None, np.array([], dtype=int)
    predictions = Predictions(pd.concat(parts, ignore_index=True))

    if world > 1:  # every rank trained; rank 0 alone explains, evaluates and writes
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return run_dir
        ctx.world_size = 1

    report.write_predictions(run_dir, predictions)  # kept even if a later stage fails
    from cardio.stats import StatsError

    try:
        sections = _explain_and_evaluate(pm, plugin, model, features, prepared, last, predictions, cohort, cfg, ctx)
    except StatsError as e:
        raise CardioError(f"evaluation failed: {e} (predictions are saved in {run_dir / 'predictions.csv'})") from None
    meta = {"plugin": plugin, "plugin_version": loaded.versions.get(plugin, "?"), "cardio_version": cardio.__version__,
            "seed": ctx.seed, "device": str(dev), "world_size": world,
            "n_records": int(len(cohort)), "n_patients": int(cohort.table["patient_id"].nunique()),
            "cv": cfg["cv"], "folds": [{"name": f.name, "n_train": int(len(f.train)), "n_test": int(len(f.test)),
                                        "n_val": int(len(f.val))} for f in folds],
            "elapsed_s": round(time.perf_counter() - t0, 1)}
    report.write_run(run_dir, meta, predictions, sections)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, run_dir / "report.md")
    return run_dir


def _explain_and_evaluate(pm, plugin, model, features, prepared, last, predictions, cohort, cfg, ctx) -> list[Section]:
    sections: list[Section] = []
    log = ctx.log
    if cfg.get("explain", True) and last is not None:
        log.info("stage explain")
        explained = pm.hook.cardio_explain(model=model, features=features, index=last.test, config=cfg, ctx=ctx)
        sections += _as_sections(explained, "cardio_explain", plugin)
    log.info("stage evaluate")
    # Each plugin's evaluate is called on its own (in pluggy's order: the built-in performance
    # section first, subgroups last) so that a wrong result names the plugin that gave it.
    everyone = {p for _, p in pm.list_name_plugin()}
    for impl in reversed(pm.hook.cardio_evaluate.get_hookimpls()):
        only = pm.subset_hook_caller("cardio_evaluate", remove_plugins=everyone - {impl.plugin})
        for result in only(predictions=predictions, cohort=cohort, features=features, prepared=prepared,
                           config=cfg, ctx=ctx):
            sections += _as_sections(result, "cardio_evaluate", impl.plugin_name)
    return sections


def _as_sections(result: Any, hook: str, plugin: str) -> list[Section]:
    if result is None:
        return []
    items = result if isinstance(result, (list, tuple)) else [result]
    for item in items:
        _expect(item, Section, hook, plugin)
    return list(items)
