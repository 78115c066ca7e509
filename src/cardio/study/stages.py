"""The stages before the folds: load -> preprocess -> checks -> featurize -> prepare -> folds, each hook's result
checked for its type. `cardio run` builds them all (once per run: `shared`), `cardio predict` the cohort and its
features, `cardio validate` the load and the checks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import cardio
from cardio import config as config_mod
from cardio import engine, plugins, services
from cardio.config import PluginInfo
from cardio.context import RunContext
from cardio.data import CardioError, Cohort, Features, Section, checks, leakage, make_folds
from cardio.data.cache import sealed
from cardio.study import tasks


def expect(value: Any, kind: type | tuple[type, ...], hook: str, plugin: str) -> Any:
    """A hook's result of the wrong type stops the run here, naming the plugin and the hook."""
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise CardioError(f"plugin {plugin!r}: {hook} returned {type(value).__name__}, expected {names}")
    return value


def as_sections(result: Any, hook: str, plugin: str) -> list[Section]:
    """A hook's Section, list of Sections or None, as a list (each checked)."""
    if result is None:
        return []
    items = result if isinstance(result, (list, tuple)) else [result]
    for item in items:
        expect(item, Section, hook, plugin)
    return list(items)


@dataclass(frozen=True)
class Study:
    """One plugin's study: the plugin selected among the installed ones (its add-ons with it) and its stages.
    Every command that reads a cohort (run, each task of a run, validate, predict) opens one."""

    plugin: str
    loaded: plugins.Loaded
    pm: Any  # pluggy.PluginManager: the selected plugin, its add-ons and the built-ins
    info: PluginInfo

    @property
    def hooks(self) -> Any:
        return self.pm.hook

    @property
    def version(self) -> str:
        return self.loaded.versions.get(self.plugin, "?")

    def made_by(self) -> dict:
        """The first keys of every file a run writes about itself: the plugin, its version and cardio's."""
        return {"plugin": self.plugin, "plugin_version": self.version, "cardio_version": cardio.__version__}

    def config(self, config_file: str | None = None, sets: tuple[str, ...] = ()) -> dict:
        """The resolved config: core defaults < plugin < profile < file < --set."""
        return config_mod.resolve(self.info.default_config, config_file, tuple(sets), self.info.moved_keys)

    def settings(self, cfg: dict) -> config_mod.Settings | None:
        """The plugin's settings object every stage hook receives beside `config` (None: it declares none)."""
        return config_mod.plugin_settings(self.info, cfg)

    def load(self, cfg: dict, ctx: RunContext) -> Cohort:
        engine.seed_everything(ctx.seed)
        ctx.log.info("stage load")
        cohort = expect(self.hooks.cardio_load(config=cfg, settings=self.settings(cfg), ctx=ctx), Cohort, "cardio_load",
                        self.plugin)
        # What the cohort is, set here once for every report: no cohort.dir means the plugin's own synthetic cohort;
        # a folder `cardio synthetic-crt` wrote states its truth (a plugin's loader may have said so itself).
        folder = cfg["cohort"]["dir"]
        truth = services.installed().pm.hook.cardio_cohort_truth(cohort_dir=Path(folder)) if folder else None
        cohort.synthetic = cohort.synthetic or not cfg["cohort"]["dir"] or truth is not None
        cohort.truth = truth if truth is not None else cohort.truth
        return cohort

    def problems(self, cohort: Cohort, cfg: dict) -> list[str]:
        """Every way the cohort does not fit the study (outcome, split, covariates that are outcomes)."""
        problems = checks.cohort_problems(cohort, cfg)
        try:
            leakage.check_config(cfg, cohort)
        except CardioError as e:
            problems.append(str(e))
        return problems

    def input_problems(self, cfg: dict, ctx: RunContext) -> list[str]:
        """Every plugin's problems with what the run reads besides the cohort (cardio_check_inputs)."""
        found = self.hooks.cardio_check_inputs(config=cfg, settings=self.settings(cfg), ctx=ctx)
        return [str(p) for problems in found for p in (problems or [])]

    def cohort(self, cfg: dict, ctx: RunContext, cohort: Cohort | None = None, *, check: bool = True) -> Cohort:
        """load (unless given) -> preprocess -> checks (`check`: what the run reads besides the cohort, first, and the
        study's checks of the cohort; a cohort to predict has none)."""
        inputs = self.input_problems(cfg, ctx) if check else []
        if inputs:
            raise CardioError(f"{'; '.join(inputs)} (cardio validate lists every problem)")
        cohort = cohort if cohort is not None else self.load(cfg, ctx)
        ctx.log.info("stage preprocess (%d records)", len(cohort))
        loaded = cohort
        cohort = expect(self.hooks.cardio_preprocess(cohort=cohort, config=cfg, settings=self.settings(cfg),
                                                     ctx=ctx) or cohort, Cohort, "cardio_preprocess", self.plugin)
        cohort.outcomes = tuple(dict.fromkeys([*loaded.outcomes, *cohort.outcomes]))  # a rebuilt Cohort keeps them
        cohort.synthetic, cohort.truth = loaded.synthetic, loaded.truth  # and what the cohort is
        if check:
            problems = checks.cohort_problems(cohort, cfg)
            if problems:
                raise CardioError(f"the cohort does not fit the study: {'; '.join(problems)} (cardio validate "
                                  "lists them)")
        ctx.log.info("cohort: %s", checks.summary(cohort))
        if check:
            leakage.check_config(cfg, cohort)
        return cohort

    def featurize(self, cohort: Cohort, cfg: dict, ctx: RunContext) -> Features:
        ctx.log.info("stage featurize")
        return expect(self.hooks.cardio_featurize(cohort=cohort, config=cfg, settings=self.settings(cfg), ctx=ctx),
                      Features, "cardio_featurize", self.plugin)

    def prepare(self, features: Features, cfg: dict, ctx: RunContext) -> Any:
        """cardio_prepare, when a plugin has it: once per run, label-free, on every rank."""
        if not self.hooks.cardio_prepare.get_hookimpls():
            return None
        ctx.log.info("stage prepare")
        prepared = self.hooks.cardio_prepare(features=features, config=cfg, settings=self.settings(cfg), ctx=ctx)
        if ctx.world_size > 1:  # every rank has the prepared result (and rank 0 its files) before the folds
            torch.distributed.barrier()
        return prepared

    def build(self, cfg: dict, ctx: RunContext, cohort: Cohort | None = None) -> tasks.Study:
        """load -> preprocess -> checks -> featurize -> prepare -> folds: what every task of a run starts from."""
        engine.seed_everything(ctx.seed)
        if ctx.device.type == "cuda":  # a plugin's own GPU work (features) as train.deterministic says; CPU kernels
            engine.set_determinism(cfg["train"]["deterministic"], ctx.device)  # agree either way: the fits set it
        cohort = self.cohort(cfg, ctx, cohort)
        null_control = bool(cfg["cohort"]["permute_labels"])
        if null_control:
            cohort = leakage.permute_outcomes(cohort, ctx.seed)
            ctx.log.warning("null control: %s and %d outcome column(s) permuted across patients "
                            "(cohort.permute_labels)", cohort.label, len(cohort.outcomes))
        features = self.featurize(cohort, cfg, ctx)
        leak_flags = leakage.flag_features(features, cohort, ctx.log)
        prepared = self.prepare(features, cfg, ctx)
        label = features.label if features.label in features.table.columns else None
        folds = make_folds(features.table, cfg["cv"], label, ctx.seed)
        if [f.name for f in folds] != tasks.fold_names(cfg["cv"]):
            raise CardioError(f"cv: the split made folds {[f.name for f in folds]}, the run's tasks name "
                              f"{tasks.fold_names(cfg['cv'])}")
        return tasks.Study(cohort, features, prepared, folds, leak_flags, null_control)


def open_study(plugin: str, register: Any = ()) -> Study:
    """The installed plugins (and `register`'s objects, in process), with `plugin` selected."""
    loaded = plugins.get_plugin_manager(register)
    pm = plugins.select(loaded, plugin)
    return Study(plugin, loaded, pm, plugins.info(pm, plugin))


STUDY_VERSION = 3  # bump when tasks.Study changes shape (2: Cohort.synthetic and Cohort.truth; 3: sealed)


def shared(study: Study, cfg: dict, ctx: RunContext, task: str) -> tasks.Study:
    """The stages before the folds, built once per run: the prepare task loads the cohort, builds them and keeps
    them in the cache under the run's config and cohort fingerprint (the key noted in tasks/prepare/), sealed with the
    cache's own key; every later task, in whichever process or job, reads them back without calling a plugin hook,
    once the seal verifies (a missing entry, or one not sealed by the key, is built again, from a cohort that must
    still have the same fingerprint)."""
    key = None if task == "prepare" else tasks.read_json(ctx.out_dir, "prepare", tasks.STUDY_KEY)
    cohort = None
    if not (isinstance(key, dict) and isinstance(key.get("cohort"), str)):
        cohort = study.load(cfg, ctx)
        key = {"plugin": study.plugin, "plugin_version": study.version, "cardio": cardio.__version__,
               "config": tasks.config_hash(cfg), "cohort": tasks.cohort_fingerprint(cohort)}
    built: list[tasks.Study] = []
    secret = ctx.cache.secret()

    def build(tmp: Path) -> None:
        here = cohort if cohort is not None else study.load(cfg, ctx)
        if cohort is None and tasks.cohort_fingerprint(here) != key["cohort"]:
            raise CardioError(f"the cohort changed on disk since this run's prepare task read it ({ctx.out_dir}/tasks/"
                              "prepare): its folds would mix two cohorts; start a new run")
        built.append(study.build(cfg, ctx, here))
        if secret is None:
            raise tasks.NotKept("no cache key to seal them with")
        tasks.write_study(tmp, built[0], secret)

    try:
        path = ctx.cache.get("studies", key, build, suffix=".pkl", version=STUDY_VERSION,
                             check=lambda p: secret is not None and sealed(p, secret))
    except tasks.NotKept as e:  # an object of a plugin's that not even cloudpickle holds: each task builds its own
        ctx.log.warning("the stages before the folds cannot be kept for the other tasks (%s); each builds them", e)
        path = None
    if task == "prepare":
        tasks.write_json(ctx.out_dir, "prepare", tasks.STUDY_KEY, key)
    if built:
        return built[0]
    assert path is not None and secret is not None
    try:
        stages = tasks.read_study(path, secret)
    except Exception as e:  # unsealed, or written by other versions of a plugin's classes: build it here
        ctx.log.warning("cache entry %s cannot be read back (%s); building the stages before the folds here", path,
                        e if isinstance(e, tasks.Unsealed) else type(e).__name__)
        return study.build(cfg, ctx)
    ctx.log.info("stages before the folds read from the cache (%s, built once for the run by prepare): %s",
                 path.name, checks.summary(stages.cohort))
    return stages
