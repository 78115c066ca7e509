"""The orchestrator: runs the stages in order, owns the folds and the run directory, resumes."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import cardio
from cardio import config as config_mod
from cardio import engine, plugins, report
from cardio.data import CardioError, Cohort, Features, Predictions, Section, make_folds


@dataclass
class RunContext:
    """What every hook gets as `ctx`: device, seed, directories, log, progress, rank, services."""

    config: dict
    device: torch.device
    seed: int
    out_dir: Path
    cache_dir: Path
    log: logging.Logger
    rank: int = 0
    world_size: int = 1
    fold: str | None = None
    val_index: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    cohort: Cohort | None = None
    features: Features | None = None

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def stats(self):
        from cardio import stats  # imported lazily: it pulls in statsmodels
        return stats

    @property
    def engine(self):
        return engine

    def progress(self, iterable: Iterable, desc: str = "", total: int | None = None, **kw) -> Iterable:
        """A tqdm bar on rank 0 in a terminal; silent elsewhere (logs stay readable)."""
        return tqdm(iterable, desc=desc, total=total, disable=None if self.is_main else True,
                    leave=False, dynamic_ncols=True, **kw)

    def figure_path(self, name: str) -> Path:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / f"{name}.png"


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


def run_study(plugin: str, config_file: str | None = None, sets: tuple[str, ...] = (), device: str | None = None,
              out: str | None = None, resume: str | None = None, seed: int | None = None) -> Path:
    """Run one study end to end and return its run directory."""
    loaded = plugins.get_plugin_manager()
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    hooks = pm.hook

    if resume:
        if config_file or sets or seed is not None:
            raise CardioError("--resume continues a run with its own config; drop --config, --set and --seed")
        run_dir = Path(resume)
        cfg = _resume_config(run_dir, plugin)
    else:
        extra = tuple(sets) + ((f"seed={seed}",) if seed is not None else ()) + ((f"device={device}",) if device else ())
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
    ctx = RunContext(config=cfg, device=dev, seed=int(cfg["seed"]), out_dir=run_dir,
                     cache_dir=default_cache_dir(cfg), log=log, rank=rank, world_size=world)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    engine.seed_everything(ctx.seed)
    log.info("cardio %s, plugin %s, device %s, %d process(es), run %s", cardio.__version__, plugin, dev, world, run_dir)
    t0 = time.perf_counter()

    log.info("stage load")
    cohort = hooks.cardio_load(config=cfg, ctx=ctx)
    log.info("stage preprocess (%d records)", len(cohort))
    cohort = hooks.cardio_preprocess(cohort=cohort, config=cfg, ctx=ctx) or cohort
    ctx.cohort = cohort
    log.info("stage featurize")
    features = hooks.cardio_featurize(cohort=cohort, config=cfg, ctx=ctx)
    ctx.features = features
    label = features.label if features.label in features.table.columns else None
    folds = make_folds(features.table, cfg["cv"], label, ctx.seed)

    parts, model, last = [], None, None
    for fold in folds:
        ctx.fold, ctx.val_index = fold.name, fold.val
        log.info("fold %s: %d train rows, %d test rows", fold.name, len(fold.train), len(fold.test))
        model = hooks.cardio_train(features=features, train_index=fold.train, config=cfg, ctx=ctx)
        pred = hooks.cardio_predict(model=model, features=features, test_index=fold.test, config=cfg, ctx=ctx)
        if not isinstance(pred, Predictions):
            raise CardioError(f"plugin {plugin!r}: cardio_predict must return Predictions, got {type(pred).__name__}")
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
        sections = _explain_and_evaluate(hooks, model, features, last, predictions, cohort, cfg, ctx)
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


def _explain_and_evaluate(hooks, model, features, last, predictions, cohort, cfg, ctx) -> list[Section]:
    sections: list[Section] = []
    log = ctx.log
    if cfg.get("explain", True) and last is not None:
        log.info("stage explain")
        explained = hooks.cardio_explain(model=model, features=features, index=last.test, config=cfg, ctx=ctx)
        sections += _as_sections(explained)
    log.info("stage evaluate")
    core_section = report.evaluate_section(predictions, cfg, ctx)
    # pluggy calls the last registered first; the core's section leads whatever plugins add
    for result in reversed(hooks.cardio_evaluate(predictions=predictions, cohort=cohort, config=cfg, ctx=ctx)):
        sections += _as_sections(result)
    return [core_section] + sections


def _as_sections(result: Any) -> list[Section]:
    if result is None:
        return []
    items = result if isinstance(result, (list, tuple)) else [result]
    bad = [type(r).__name__ for r in items if not isinstance(r, Section)]
    if bad:
        raise CardioError(f"explain/evaluate hooks must return Section objects, got {bad}")
    return list(items)
