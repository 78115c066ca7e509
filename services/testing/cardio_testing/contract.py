"""cardio's plugin contract suite, one for every plugin, as torchvision tests every registered model with one
parametrized suite: the cohort contract (schema, new-cohort, the one reader, every problem at once, masked targets,
the patient -> study -> record levels, the split), moved keys, the typed settings, PHI, the bundle and the predict
round trip, and the controls when the plugin declares them. A plugin's test module declares what only it knows and
runs the rest unchanged (it stands on cardio_testing.harness's helpers, which never import it back;
`pytest --cardio-contract` runs it over every installed modality plugin, cardio_testing.every_plugin):

    from cardio_testing.contract import Contract, contract_suite
    TestContract = contract_suite(Contract("my_plugin", run=("train.epochs=1", ...)))
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cardio import config as config_mod
from cardio import plugins
from cardio.data import CardioError
from cardio.data.cohort import LEVELS, CohortProblems, read_table
from cardio.data.pseudonyms import pseudonym_key, pseudonyms
from cardio.hookspecs import REQUIRED_HOOKS, hookimpl
from cardio_deploy import bundle as deploy_bundle
from cardio_stats import aggregate_scores
from cardio_testing.harness import (
    PLANTS,
    check_refused,
    context,
    headline,
    invoke,
    plant_dicom,
    planted_in,
    plugin_config,
    pooled,
    read_metrics,
    run_plugin,
    second_intervals,
    split_overlaps,
)


@dataclass(frozen=True)
class Controls:
    """A plugin's positive and null control: two runs at the same settings (`sets`), one with `planted` added (the
    effect is found: every chosen estimate's interval lies above `chance`) and one with `neutral` added (by default
    the labels permuted; the interval covers `chance`). The estimates are the headline pooled `metric` of `model`
    and `task` (every model's or task's where None; cardio_testing.harness.headline: K folds: the cross-validated AUC,
    so a control needs K >= 5 to have power; benchmarks/controls.py measures a pair over seeds)."""
    sets: tuple[str, ...]
    planted: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ("cohort.permute_labels=true",)
    model: str | None = None
    task: str | None = None
    metric: str = "auc"
    chance: float = 0.5


@dataclass(frozen=True)
class Contract:
    """What a plugin declares for the contract suite.

    `run`: --set lines of the smallest run the contract is checked on (the synthetic cohort's size, epochs, threads,
    folds); it starts from the cohort the plugin's cardio_load writes with these settings and cohort.dir null.
    `controls`: the plugin's control pair, at its own settings (None: the plugin runs its controls elsewhere).
    `plant_files(root, table) -> table`: puts PLANTS into the headers of the plugin's own file formats (WFDB header
    comments, DICOM from another format); the suite plants the ids, file names, a free-text column and the headers of
    DICOM files itself."""
    plugin: str
    run: tuple[str, ...] = ()
    controls: Controls | None = None
    plant_files: Callable[[Path, Any], Any] | None = None


class KeepFinalModel:
    """An add-on (registered in process) that keeps the final model the core exports, to compare with its import."""
    __name__ = "keep_final_model"

    def __init__(self) -> None:
        self.models: list = []

    @hookimpl(wrapper=True)
    def cardio_export_model(self, model: Any, ctx: Any) -> Any:
        if ctx.fold == "final":  # not the outer folds' models the bundle also carries
            self.models.append(model)
        return (yield)


@dataclass
class LoadedCohort:
    """A plugin's manager (the modality and the add-ons), a resolved config and the Cohort its cardio_load returned."""
    pm: Any
    config: dict
    cohort: Any
    schema: Any


def _hook_args(pm, plugin: str, cfg: dict, ctx) -> dict:
    """config, the plugin's settings built from it, and ctx: the arguments the core passes every stage hook."""
    return {"config": cfg, "settings": config_mod.plugin_settings(plugins.info(pm, plugin), cfg), "ctx": ctx}


def load_cohort(plugin: str, sets: Sequence[str], where: str | Path | None, work: Path) -> LoadedCohort:
    """The plugin's cardio_load on folder `where` (None: the synthetic cohort it writes), in process, with the
    config `sets` give and a context and cache in `work`; the plugin's Schema beside it."""
    pm = plugins.select(plugins.get_plugin_manager(), plugin)
    cfg = plugin_config(plugin, (*sets, f"cohort.dir={where if where else 'null'}", f"cache_dir={work / 'cache'}"))
    ctx = context(work / "ctx", cache_dir=work / "cache", seed=int(cfg["seed"]))
    kw = _hook_args(pm, plugin, cfg, ctx)
    schema = pm.hook.cardio_cohort_schema(config=cfg, settings=kw["settings"])
    if schema is None:
        raise CardioError(f"plugin {plugin!r} implements no cardio_cohort_schema: the contract suite checks its "
                          "table against the schema it declares")
    return LoadedCohort(pm, cfg, pm.hook.cardio_load(**kw), schema)


def synthetic_folder(contract: Contract, dest: Path) -> Path:
    """A copy, at dest, of the cohort folder the plugin's cardio_load writes with the contract's settings."""
    import shutil

    loaded = load_cohort(contract.plugin, contract.run, None, dest.with_name(dest.name + "-work"))
    if loaded.cohort.root is None:
        raise CardioError(f"plugin {contract.plugin!r}: cardio_load's Cohort names no root folder for its synthetic "
                          "cohort (Cohort.root), so the contract suite cannot copy it")
    shutil.copytree(loaded.cohort.root, dest)
    return dest


def _csv(root: Path, schema: Any) -> Any:
    import pandas as pd

    return pd.read_csv(root / schema.table, dtype=str, keep_default_na=False)


def _second_records(raw: Any, loaded: LoadedCohort) -> Any:
    """A sixth of the patients (at least two) get a second patient's records as their own: patients of two or more
    records, studies or scans. At level patient the targets of a patient's records must agree, so they are copied."""
    pids = list(dict.fromkeys(raw["patient_id"]))
    n = max(2, len(pids) // 6)
    shared = [c for c in dict.fromkeys([*loaded.schema.targets, loaded.cohort.label, *loaded.cohort.outcomes])
              if c in raw.columns]
    # a's outcome beside b's baseline volume: the follow-up volume is left unmeasured there, as a's reduction would
    # contradict b's volumes (a contradiction the reader rightly refuses)
    rule = loaded.schema.response
    unmeasured = [rule.followup] if rule is not None and rule.followup in raw.columns else []
    for a, b in zip(pids[0:4 * n:4], pids[1:4 * n:4]):
        rows = raw["patient_id"] == b
        if loaded.schema.level == "patient" and shared:
            raw.loc[rows, shared] = raw.loc[raw["patient_id"] == a, shared].iloc[0].to_numpy()
            raw.loc[rows, unmeasured] = ""
        raw.loc[rows, "patient_id"] = a
    return raw


def _masked(raw: Any, loaded: LoadedCohort, seed: int = 0) -> Any:
    """The label (with the outcome measurements it derives from) of a third of the patients left empty, and the other
    targets of the table of another draw of a quarter: missing target by target."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pids = np.array(list(dict.fromkeys(raw["patient_id"])))
    targets = [c for c in loaded.schema.targets if c in raw.columns]
    label = loaded.cohort.label if loaded.cohort.label in raw.columns else targets[0]
    # the measurements the label derives from go with it (not assessed); other targets go their own way
    with_label = [c for c in dict.fromkeys([label, *loaded.cohort.outcomes])
                  if c in raw.columns and (c == label or c not in targets)]
    raw.loc[raw["patient_id"].isin(rng.choice(pids, round(len(pids) / 3), replace=False)), with_label] = ""
    others = [t for t in targets if t not in with_label]
    raw.loc[raw["patient_id"].isin(rng.choice(pids, round(len(pids) / 4), replace=False)), others] = ""
    return raw


def _rename(path: Path, stem: str) -> Path:
    """A record's files (every file of its folder named `<its stem>.*`: a WFDB .hea and .dat, a DICOM) renamed to
    `stem`; a small text file among several names the others, so its text follows. Returns path's new name."""
    old = path.name[:len(path.name) - len("".join(path.suffixes))] if path.suffixes else path.name
    files = [p for p in path.parent.iterdir() if p.name == old or p.name.startswith(old + ".")]
    for f in files:
        new = f.with_name(stem + f.name[len(old):])
        data = f.read_bytes()
        if len(files) > 1 and len(data) < 1 << 16 and old.encode() in data:
            try:
                data = data.decode("utf-8").replace(old, stem).encode("utf-8")
            except UnicodeDecodeError:
                pass
        new.write_bytes(data)
        f.unlink()
    return path.with_name(stem + path.name[len(old):])


def _planted(root: Path, raw: Any, typed: Any, loaded: LoadedCohort,
             plant_files: Callable | None) -> tuple[Any, list[str]]:
    """PLANTS and MRN-like ids everywhere a cohort may hold them: patient, study and record ids, the file names
    (every other one a patient's name), a free-text column, DICOM headers and, through `plant_files`, the plugin's
    own formats' headers. Returns the table and the MRNs other than PLANTS' own."""
    import os

    pids = list(dict.fromkeys(raw["patient_id"]))
    mrn = {pid: PLANTS["PatientID"] if i == 0 else f"MRN-5{i:07d}" for i, pid in enumerate(pids)}
    renamed: dict[str, Path] = {}
    for col in (c for c in loaded.schema.columns if c.kind == "path"):
        cells = raw[col.name] if col.name in raw.columns else [""] * len(raw)
        new_cells = []
        for i, (cell, found) in enumerate(zip(cells, typed[col.name])):
            if found is None:
                new_cells.append(cell)
                continue
            stem = f"{mrn[raw['patient_id'].iloc[i]]}_{col.name}{i}" if i % 2 else f"Doe_Jane_{col.name}{i}"
            new = renamed.setdefault(found, _rename(Path(found), stem))
            rel = os.path.relpath(new, root.absolute())
            # a cell that named the file without its suffix (the column's suffixes tried) keeps that form
            new_cells.append(rel[:len(rel) - len(new.suffix)] if cell and not Path(cell).suffix else rel)
        raw[col.name] = new_cells
    accession = PLANTS["AccessionNumber"]
    if "study_id" in raw.columns:
        studies = {s: f"{accession}-{k}" for k, s in enumerate(dict.fromkeys(raw["study_id"]))}
        raw["study_id"] = [f"{studies[s]}-{mrn[p]}" for s, p in zip(raw["study_id"], raw["patient_id"])]
    if "record_id" in raw.columns:
        raw["record_id"] = [f"{mrn[p]}_{accession}_{i}" for i, p in enumerate(raw["patient_id"])]
    raw["patient_id"] = raw["patient_id"].map(mrn)
    raw["referral_note"] = (f"{PLANTS['PatientName']}, born {PLANTS['PatientBirthDate']}, referred by "
                            f"{PLANTS['ReferringPhysicianName']} of {PLANTS['InstitutionName']}")
    if plant_files is not None:
        raw = plant_files(root, raw)
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.stat().st_size > 132 and f.read_bytes()[128:132] == b"DICM":
            plant_dicom(f)
    return raw, [m for m in mrn.values() if m != PLANTS["PatientID"]]


@dataclass
class Planted:
    """The contract's cohort folder and the MRN-like ids planted in it besides PLANTS' own."""
    root: Path
    others: list[str]


def contract_cohort(contract: Contract, synthetic: Path, dest: Path) -> Planted:
    """The plugin's synthetic cohort (a copy at dest) as the contract checks it: patients of several records, targets
    missing patient by patient and target by target, and identifiers planted everywhere a real cohort holds them."""
    import shutil

    loaded = load_cohort(contract.plugin, contract.run, synthetic, dest.with_name(dest.name + "-work"))
    shutil.copytree(synthetic, dest)
    raw = _csv(dest, loaded.schema)
    typed = read_table(dest, loaded.schema)  # the files each row names, found as the reader finds them
    if "record_id" not in raw.columns and "study_id" not in raw.columns:
        raw.insert(1, "record_id", typed["record_id"])  # the patient named the record: it will have two
    raw = _masked(_second_records(raw, loaded), loaded)
    raw, others = _planted(dest, raw, typed, loaded, contract.plant_files)
    raw.to_csv(dest / loaded.schema.table, index=False)
    return Planted(dest, others)


def _copy(folder: Path, dest: Path) -> tuple[Path, Any]:
    """A copy of a cohort folder to damage, and its table as text."""
    import shutil

    import pandas as pd

    shutil.copytree(folder, dest)
    table = next(p for p in dest.iterdir() if p.suffix == ".csv" and not p.name.startswith("."))
    return dest, pd.read_csv(table, dtype=str, keep_default_na=False)


def _outside(root: Path, raw: Any, typed: Any, schema: Any, row: int) -> tuple[str, Any]:
    """Row `row`'s file copied outside the folder (beside it) and named there by its path cell: (column, table)."""
    import os
    import shutil

    col = next(c for c in schema.columns if c.kind == "path" and typed[c.name].iloc[row] is not None)
    found = Path(typed[col.name].iloc[row])
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir()
    stem = found.name[:len(found.name) - len("".join(found.suffixes))] if found.suffixes else found.name
    for f in found.parent.glob(f"{stem}.*"):  # the record's every file (a WFDB .hea and .dat)
        shutil.copy(f, outside / f.name)
    cell = os.path.relpath(outside / found.name, root)
    given = raw[col.name].iloc[row] if col.name in raw.columns else ""
    raw.loc[row, col.name] = cell[:len(cell) - len(found.suffix)] if given and not Path(given).suffix else cell
    return col.name, raw


def check_outside_path(contract: Contract, synthetic: Path, work: Path) -> None:
    """A file named outside the cohort folder is the one problem of the table (its line and column, the switch that
    allows it), through cardio_load and `cardio validate`; with cohort.allow_outside_paths the table loads."""
    good = load_cohort(contract.plugin, contract.run, synthetic, work / "good")
    bad, raw = _copy(synthetic, work / "outside")
    column, raw = _outside(bad, raw, read_table(synthetic, good.schema), good.schema, 1)
    raw.to_csv(bad / good.schema.table, index=False)
    try:
        load_cohort(contract.plugin, contract.run, bad, work / "refused")
        raise AssertionError("a path outside the cohort folder was read without cohort.allow_outside_paths")
    except CohortProblems as e:
        (problem,) = e.problems
    assert (problem.line, problem.column) == (3, column) and Path(problem.file).name == good.schema.table, problem
    assert "outside the cohort folder" in problem.message and "cohort.allow_outside_paths" in problem.message
    listed = invoke("validate", "--plugin", contract.plugin, *_sets(contract.run), "--set", f"cohort.dir={bad}",
                    "--set", f"cache_dir={work / 'cache'}")
    assert listed.exit_code == 2 and [ln for ln in listed.stderr.splitlines() if ln.startswith("problem: ")] == [
        f"problem: {problem}"], listed.stderr[-3000:]
    allowed = load_cohort(contract.plugin, (*contract.run, "cohort.allow_outside_paths=true"), bad, work / "allowed")
    assert len(allowed.cohort.table) == len(good.cohort.table)


def _sets(sets: Iterable[str]) -> list[str]:
    return [f"--set={s}" for s in sets]


def check_every_problem_at_once(contract: Contract, synthetic: Path, work: Path) -> None:
    """Three damages (a path outside the folder, an empty patient_id, a target that is not of its kind) are listed
    by one `cardio validate`, each at its line and column; `cardio run` refuses the table in one line counting the
    rest, before it writes anything."""
    import re

    good = load_cohort(contract.plugin, contract.run, synthetic, work / "good")
    bad, raw = _copy(synthetic, work / "damaged")
    column, raw = _outside(bad, raw, read_table(synthetic, good.schema), good.schema, 1)
    raw.loc[3, "patient_id"] = ""
    expected = {(3, column), (5, "patient_id")}
    target = next((c for c in good.schema.columns if c.target and c.kind in ("number", "integer", "binary")
                   and c.name in raw.columns), None)
    if target is not None:
        raw.loc[5, target.name] = "abc"
        expected.add((7, target.name))
    raw.to_csv(bad / good.schema.table, index=False)
    sets = [*_sets(contract.run), "--set", f"cohort.dir={bad}", "--set", f"cache_dir={work / 'cache'}"]
    listed = invoke("validate", "--plugin", contract.plugin, *sets)
    problems = [ln for ln in listed.stderr.splitlines() if ln.startswith("problem: ")]
    found = {(int(m[1]), m[2]) for p in problems if (m := re.search(r"line (\d+), column '(\w+)'", p))}
    assert listed.exit_code == 2 and expected <= found, "\n".join(problems) or listed.stderr[-3000:]
    refused = invoke("run", "--plugin", contract.plugin, *sets, "--out", str(work / "run"))
    check_refused(refused, "more problem(s); `cardio validate` lists them all")
    assert good.schema.table in refused.stderr and not (work / "run").exists()


def check_listed(plugin: str) -> None:
    """`cardio plugins` lists the plugin as a modality with the required hooks and the schema hook, no error."""
    listed = invoke("plugins", "--json")
    assert listed.exit_code == 0, listed.stderr[-2000:]
    (row,) = [r for r in json.loads(listed.stdout) if r["name"] == plugin]
    assert row["error"] is None and row["modality"], row
    assert {*REQUIRED_HOOKS, "cardio_cohort_schema"} <= set(row["hooks"]), row["hooks"]


def check_schema(plugin: str, loaded: LoadedCohort, synthetic: Path, work: Path) -> None:
    """The schema describes every column; the Cohort declares the schema's level and aggregation; `cardio new-cohort`
    writes the schema's table (header only, which the reader refuses as empty) and a README of every column; and the
    plugin's own cohort reads through the core's one reader, patient for patient."""
    schema, cohort = loaded.schema, loaded.cohort
    described = schema.describe()
    assert described["description"].str.strip().str.len().gt(0).all(), described[["column", "description"]]
    assert schema.level in LEVELS and (cohort.level, cohort.aggregate) == (schema.level, schema.aggregate)
    written = invoke("new-cohort", "--plugin", plugin, str(work / "new"))
    assert written.exit_code == 0, written.stderr[-2000:]
    header = (work / "new" / schema.table).read_text()
    assert header == ",".join(described["column"]) + "\n"
    readme = (work / "new" / "README.md").read_text()
    assert all(f"`{c}`" in readme for c in described["column"])
    try:
        read_table(work / "new", schema)
        raise AssertionError("a header-only table was read")
    except CohortProblems as e:
        assert [p.message for p in e.problems] == ["holds no rows (a header only)"]
    assert set(read_table(synthetic, schema)["patient_id"]) == set(cohort.table["patient_id"])


def _has_key(config: dict, dotted: str) -> bool:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_moved_keys(plugin: str, work: Path) -> None:
    """Every moved key (PluginInfo.moved_keys) names a key the config has and is itself no longer one; each, given
    with --set, is refused naming its new key; on the command line and in a config file, in one line, before any
    run folder exists."""
    import yaml

    pm = plugins.select(plugins.get_plugin_manager(), plugin)
    info = plugins.info(pm, plugin)
    moved = dict(info.moved_keys or {})
    if not moved:
        pytest.skip(f"plugin {plugin!r} declares no moved config keys")
    defaults = config_mod.resolve(info.default_config)
    assert [old for old in moved if _has_key(defaults, old)] == [], "moved keys that are still keys of the config"
    # a section that went several ways names them all: "cohort.dir, cohort.allow_outside_paths or spect_polar.synthetic"
    assert [new for new in moved.values() if not all(_has_key(defaults, k) for k in re.split(r",\s*|\s+or\s+", new))
            ] == [], "moved keys naming no config key"
    for old, new in moved.items():
        try:
            config_mod.resolve(info.default_config, sets=(f"{old}=1",), moved=moved)
            raise AssertionError(f"--set {old}=1 was accepted")
        except CardioError as e:
            named = [o for o in moved if old == o or old.startswith(o + ".")]
            assert str(e) in {f"config key {o} (--set) has moved: use {moved[o]}" for o in named}, str(e)
    old, new = next(iter(moved.items()))
    work.mkdir(parents=True, exist_ok=True)
    result = invoke("run", "--plugin", plugin, "--set", f"{old}=1", "--out", str(work / "run"))
    check_refused(result, f"config key {old} (--set) has moved: use {new}")
    (work / "old.yaml").write_text(yaml.safe_dump(_nested(old, 1)))
    result = invoke("run", "--plugin", plugin, "--config", str(work / "old.yaml"), "--out", str(work / "run"))
    check_refused(result, f"({work / 'old.yaml'}) has moved: use ")
    assert not (work / "run").exists()


def _declared(settings: Any, where: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, field, its type) of every key a Settings class declares, nested sections' keys included."""
    from dataclasses import fields
    from typing import get_type_hints

    out = []
    hints = get_type_hints(settings)
    for f in fields(settings):
        out.append((f"{where}.{f.name}", f, hints[f.name]))
        if isinstance(hints[f.name], type) and issubclass(hints[f.name], config_mod.Settings):
            out += _declared(hints[f.name], f"{where}.{f.name}")
    return out


def _out_of_range(meta: Any, tp: Any) -> Any:
    """A value of the setting's type just outside its allowed values (a list of one such item for a list setting),
    or None."""
    from typing import get_args, get_origin

    bad: Any = None
    choices = meta.get("choices")
    if choices is not None:
        bad = max(choices) + 1 if all(isinstance(c, int) for c in choices) else "not-one-of-them"
    elif meta.get("gt") is not None or meta.get("ge") is not None:
        bad = meta["gt"] if meta.get("gt") is not None else meta["ge"] - 1
    elif meta.get("lt") is not None or meta.get("le") is not None:
        bad = meta["lt"] if meta.get("lt") is not None else meta["le"] + 1
    listed = get_origin(tp) is tuple or any(get_origin(a) is tuple for a in get_args(tp))
    return [bad] if bad is not None and listed else bad


def check_settings(plugin: str, work: Path) -> None:
    """The plugin's section is declared by a cardio.Settings class (PluginInfo.settings) whose every key has a doc;
    the defaults and every profile check against it and round-trip; each key given a value just outside its allowed
    values is refused in one line naming the key and what it allows (on the command line: exit 2, no run folder);
    `cardio config` prints every key with its doc, as YAML that reads back as the defaults."""
    import yaml

    info = plugins.info(plugins.select(plugins.get_plugin_manager(), plugin), plugin)
    settings = info.settings
    if settings is None:
        assert plugin not in info.default_config, f"plugin {plugin!r} has a config section but no settings class " \
                                                  "(PluginInfo.settings) declaring it"
        pytest.skip(f"plugin {plugin!r} has no config section of its own")
    keys = _declared(settings, settings.section)
    assert [k for k, f, _ in keys if not f.metadata.get("doc")] == [], "settings without a doc"
    defaults = config_mod.resolve(info.default_config)
    assert settings.of(defaults).as_dict() == defaults[settings.section]
    for profile in defaults.get("profiles") or {}:
        config_mod.resolve(info.default_config, sets=(f"profile={profile}",))
    ranged = [(k, _out_of_range(f.metadata, tp)) for k, f, tp in keys]
    ranged = [(k, bad) for k, bad in ranged if bad is not None]
    for key, bad in ranged:
        try:
            config_mod.resolve(info.default_config, sets=(f"{key}={json.dumps(bad)}",))
            raise AssertionError(f"--set {key}={json.dumps(bad)} was accepted")
        except CardioError as e:
            assert str(e).startswith(f"config key {key} ") and "allowed: " in str(e) and "\n" not in str(e), str(e)
    if ranged:
        key, bad = ranged[0]
        result = invoke("run", "--plugin", plugin, "--set", f"{key}={json.dumps(bad)}", "--out", str(work / "run"))
        check_refused(result, f"config key {key} ")
        assert not (work / "run").exists()
    shown = invoke("config", "--plugin", plugin)
    assert shown.exit_code == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)[settings.section] == defaults[settings.section]
    lines = shown.stdout.splitlines()

    def documented(i: int, word: str) -> bool:  # on the key's line, or in the comment block right above it
        above = []
        while i > 0 and lines[i - 1].lstrip().startswith("#"):
            i -= 1
            above.append(lines[i])
        return any(word in line for line in [lines[i + len(above)], *above])

    for key, f, _ in keys:
        name, word = key.rsplit(".", 1)[1], f.metadata["doc"].split()[0]
        assert any(line.lstrip().startswith(f"{name}:") and documented(i, word) for i, line in enumerate(lines)), \
            f"cardio config does not show {key} with its doc"


def _nested(dotted: str, value: Any) -> dict:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


@dataclass
class Finished:
    """The contract's run on its cohort: the run folder, its cache, the final model object(s) the core exported,
    what the run and `cardio predict` printed, and `cardio predict`'s output on the same cohort."""
    run: Path
    cache: Path
    final: list
    console: str
    predicted: Path


def contract_run(contract: Contract, planted: Planted, work: Path) -> Finished:
    """The plugin's run at the contract's settings on the contract's cohort (final model kept as exported), then
    `cardio predict` with its bundle on the same cohort; stdout and stderr of both kept for the PHI check."""
    import contextlib
    import io

    keep = KeepFinalModel()
    console = io.StringIO()
    try:
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
            run = run_plugin(contract.plugin, work / "run", cache_dir=work / "cache", register=[keep],
                             sets=[*contract.run, "final_model=true", f"cohort.dir={planted.root}"])
    except Exception as e:
        raise AssertionError(f"the contract run failed: {e}\n{console.getvalue()[-3000:]}") from e
    predicted = invoke("predict", "--model", str(run), "--cohort", str(planted.root), "--out", str(work / "predict"))
    assert predicted.exit_code == 0, predicted.stderr[-3000:]
    return Finished(run, work / "cache", keep.models, console.getvalue() + predicted.stdout + predicted.stderr,
                    work / "predict")


def _units(cohort: Any) -> tuple[str, Any]:
    """(the id column of the plugin's level, the cohort's table one row per unit: its first non-missing values)."""
    column = {"record": "record_id", "study": "study_id", "patient": "patient_id"}[cohort.level]
    if cohort.level != "record" and "study_id" not in cohort.table.columns:
        column = "record_id"  # as the core's at_level: a table without studies is evaluated per record
    return column, cohort.table.groupby(column, sort=False).first()


def check_predictions(loaded: LoadedCohort, finished: Finished) -> None:
    """Every unit of the plugin's level is predicted at most once per model and task (each one under k-fold), with a
    score, and with its own target: missing where the cohort's is (the mask reaches the output), else the cohort's
    value. Each pooled estimate of the performance section counts the labelled units; one interval per number."""
    import numpy as np
    import pandas as pd

    cohort = loaded.cohort
    _, units = _units(cohort)
    ids = dict(zip(pseudonyms(units.index, pseudonym_key(finished.cache), "R"), units.index))
    pred = pd.read_csv(finished.run / "predictions.csv", dtype={"record_id": str, "patient_id": str})
    pred = pred[pred["repeat"] == 0] if "repeat" in pred.columns else pred
    metrics = read_metrics(finished.run)
    assert np.isfinite(pred["y_score"].to_numpy(float)).all()
    for (model, task), rows in pred.groupby(["model", "task"]):
        assert rows["record_id"].is_unique and rows["record_id"].isin(list(ids)).all(), (model, task)
        if loaded.config["cv"]["method"] == "kfold":
            assert set(rows["record_id"]) == set(ids), (model, task, "not every unit predicted once")
        column = task if task in units.columns else cohort.label if len(cohort.targets) == 1 else None
        if column is not None:
            want = units[column].reindex(rows["record_id"].map(ids)).to_numpy(float)
            got = rows["y_true"].to_numpy(float)
            assert np.array_equal(np.isnan(want), np.isnan(got)), (model, task, "the mask did not reach the output")
            assert np.allclose(got[~np.isnan(got)], want[~np.isnan(want)]), (model, task)
        labelled = int(rows["y_true"].notna().sum())
        counted = [e for e in metrics["estimates"] if e.get("section") == "Performance" and e.get("model") == model
                   and e.get("task") == task and e.get("fold") == "pooled" and not e.get("subgroup")
                   and e.get("repeat", 0) == 0 and e.get("n") is not None]
        assert labelled == 0 or counted, (model, task, "no pooled estimate")
        assert {int(e["n"]) for e in counted} <= {labelled}, (model, task, labelled, counted[:2])
    assert second_intervals(metrics) == []


def check_split(loaded: LoadedCohort) -> None:
    """The cohort has patients of several records; the core's split (the run's protocol, 3-fold and a holdout) puts
    no patient on two sides, over 20 seeds."""
    table, label = loaded.cohort.table, loaded.cohort.label
    assert table.groupby("patient_id").size().max() >= 2
    for cv in (loaded.config["cv"], {"method": "kfold", "folds": 3}, {"method": "holdout", "ratios": [6, 2, 2]}):
        assert split_overlaps(table, cv, label, seeds=range(20)) == [], cv


def _arrays_equal(a: Any, b: Any) -> bool:
    """Bit for bit; a scikit-learn object (skops' zip in a uint8 array) by the values of its arrays."""
    import io
    import zipfile

    import numpy as np
    import torch

    a, b = torch.as_tensor(a).numpy(), torch.as_tensor(b).numpy()
    if a.ndim == 0 or b.ndim == 0:  # safetensors stores a scalar as one element
        a, b = a.reshape(-1), b.reshape(-1)
    if a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True):
        return True
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a[:4].tobytes() != b"PK\x03\x04" != b[:4].tobytes():
        return False
    def members(x: Any) -> tuple[list[str], int]:
        """Each array's values (a tree's node records hold padding bytes that differ between dumps) and the schema's
        length: skops names members by object id, which differs too."""
        z = zipfile.ZipFile(io.BytesIO(x.tobytes()))
        arrays = [repr(np.load(io.BytesIO(z.read(i)), allow_pickle=False).tolist()) if i.filename.endswith(".npy")
                  else repr(z.read(i)) for i in z.infolist() if i.filename != "schema.json"]
        return sorted(arrays), len(z.read("schema.json"))

    return members(a) == members(b)


def check_bundle(contract: Contract, finished: Finished, work: Path) -> None:
    """The bundle holds the final model bit for bit: every array and param the final model exports, and its import
    exports every array back unchanged."""
    info, state, cfg = deploy_bundle.read(finished.run)
    assert info["plugin"] == contract.plugin and len(finished.final) == 1
    pm = plugins.select(plugins.get_plugin_manager(), contract.plugin)
    ctx = context(work, cache_dir=finished.cache, seed=int(cfg["seed"]))
    kw = _hook_args(pm, contract.plugin, cfg, ctx)
    exported = pm.hook.cardio_export_model(model=finished.final[0], **kw)
    again = pm.hook.cardio_export_model(model=pm.hook.cardio_import_model(state=state, **kw), **kw)
    for other in (exported, again):
        assert set(other.tensors) == set(state.tensors)
        assert [k for k, v in other.tensors.items() if not _arrays_equal(v, state.tensors[k])] == []
    # params an import need not keep (a count of training patients) may differ on re-export; the scores may not
    assert json.dumps(exported.params, sort_keys=True) == json.dumps(state.params, sort_keys=True)


def _at_level(table: Any, cohort: Any) -> Any:
    """Record scores as the core reports them at the plugin's level (Cohort.level and aggregate)."""
    column, _ = _units(cohort)
    if column == "record_id":
        return table
    level = table["record_id"].map(dict(zip(cohort.table["record_id"], cohort.table[column])))
    group = table["model"].astype(str) + "|" + table["task"].astype(str) + "|" + level.astype(str)
    first = table.loc[~group.duplicated().to_numpy()].reset_index(drop=True)
    return first.assign(y_score=aggregate_scores(group, table["y_score"], cohort.aggregate).to_numpy())


def check_round_trip(contract: Contract, planted: Planted, finished: Finished, work: Path) -> None:
    """The imported bundle scores the cohort as the final model fitted in the run does, row for row, and
    `cardio predict` writes those scores at the plugin's level."""
    import numpy as np
    import pandas as pd

    _, state, cfg = deploy_bundle.read(finished.run)
    cfg = {**cfg, "cohort": {**cfg["cohort"], "dir": str(planted.root)}}
    pm = plugins.select(plugins.get_plugin_manager(), contract.plugin)
    hooks, ctx = pm.hook, context(work, cache_dir=finished.cache, seed=int(cfg["seed"]))
    kw = _hook_args(pm, contract.plugin, cfg, ctx)
    cohort = hooks.cardio_load(**kw)
    cohort = hooks.cardio_preprocess(cohort=cohort, **kw) or cohort
    features = hooks.cardio_featurize(cohort=cohort, **kw)
    every = np.arange(len(features))
    imported = hooks.cardio_import_model(state=state, **kw)
    own, back = (hooks.cardio_predict(model=m, features=features, test_index=every, **kw).table
                 for m in (finished.final[0], imported))
    keys = ["model", "task", "record_id"]
    assert own[keys].astype(str).equals(back[keys].astype(str))
    # float32 arithmetic of the fitted model against the bundle's float64 arrays: a relative 1e-7 of a regression
    assert np.allclose(own["y_score"].to_numpy(float), back["y_score"].to_numpy(float), rtol=1e-6, atol=1e-6)
    if "threshold" in own.columns:
        assert np.array_equal(own["threshold"].to_numpy(float), back["threshold"].to_numpy(float), equal_nan=True)
    cli = pd.read_csv(finished.predicted / "predictions.csv")
    mine = _at_level(back, cohort)
    for (model, task), rows in cli.groupby(["model", "task"]):
        expected = mine.loc[(mine["model"] == model) & (mine["task"] == task), "y_score"].to_numpy(float)
        assert np.allclose(np.sort(rows["y_score"].to_numpy(float)), np.sort(expected), rtol=1e-6, atol=1e-5), (
            model, task)  # predictions.csv holds text: its pseudonymous ids are compared by check_no_identifier
    assert len(cli) == len(mine)


PSEUDONYM = {"patient_id": r"P[0-9A-F]{12}", "record_id": r"R[0-9A-F]{12}"}


def check_no_identifier(planted: Planted, finished: Finished) -> None:
    """No planted identifier (PLANTS in headers, ids, file names and free text; the other patients' MRNs) reaches
    anything the run or `cardio predict` wrote (run folder, cache, their stdout and stderr); the detector finds
    every one where it was planted, and predictions.csv names patients and records by pseudonyms."""
    import pandas as pd

    assert set(planted_in(planted.root, plants=planted.others)) == {*PLANTS.values(), *planted.others}
    found = planted_in(finished.run, finished.cache, finished.predicted, text=finished.console, plants=planted.others)
    assert not found, f"identifiers in the outputs: {found}"
    for folder in (finished.run, finished.predicted):
        pred = pd.read_csv(folder / "predictions.csv", dtype=str)
        assert all(pred[c].str.fullmatch(p).all() for c, p in PSEUDONYM.items()), pred.head()


def check_control(contract: Contract, kind: str, work: Path) -> None:
    """The planted effect is found (every chosen estimate's interval above chance) and the neutral one is not (its
    interval covers chance), at the same settings."""
    controls = contract.controls
    assert controls is not None
    sets = [*controls.sets, *(controls.planted if kind == "planted" else controls.neutral)]
    out = run_plugin(contract.plugin, work / kind, sets=sets, cache_dir=work / "cache")
    metrics = read_metrics(out)
    # each model and task's headline row (with K folds the cross-validated one), not pooled's fixed-model DeLong row
    found = pooled(metrics, controls.metric, model=controls.model, task=controls.task, method=None)
    estimates = [headline(metrics, controls.metric, model=m, task=t)
                 for m, t in dict.fromkeys((e["model"], e["task"]) for e in found)]
    assert estimates, f"no pooled {controls.metric} of model {controls.model} and task {controls.task}"
    for e in estimates:
        print(f"{kind} control of {contract.plugin}: {e['model']} / {e['task']} {controls.metric} "
              f"{e['estimate']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]")
    for e in estimates:
        if kind == "planted":
            assert e["ci_low"] > controls.chance, e
        else:
            assert e["ci_low"] <= controls.chance <= e["ci_high"], e


class ContractSuite:
    """The suite's tests on `contract` (set by contract_suite): one synthetic cohort, one contract cohort and one run
    (with `cardio predict`) serve every test. A subclass may add the plugin's own tests on the same fixtures:
    `synthetic` (the plugin's synthetic cohort folder), `planted` (the contract cohort), `loaded` (it, as cardio_load
    returns it), `finished` (the run, its cache, the final model, `cardio predict`'s folder)."""
    contract: Contract

    @pytest.fixture(scope="class")
    @classmethod
    def work(cls, tmp_path_factory) -> Path:
        return tmp_path_factory.mktemp(f"contract-{cls.contract.plugin}")

    @pytest.fixture(scope="class")
    @classmethod
    def synthetic(cls, work) -> Path:
        return synthetic_folder(cls.contract, work / "synthetic")

    @pytest.fixture(scope="class")
    @classmethod
    def planted(cls, synthetic, work) -> Planted:
        return contract_cohort(cls.contract, synthetic, work / "cohort")

    @pytest.fixture(scope="class")
    @classmethod
    def loaded(cls, planted, work) -> LoadedCohort:
        return load_cohort(cls.contract.plugin, cls.contract.run, planted.root, work / "loaded")

    @pytest.fixture(scope="class")
    @classmethod
    def finished(cls, planted, work) -> Finished:
        return contract_run(cls.contract, planted, work)

    def test_listed_with_the_hooks_it_must_have(self) -> None:
        check_listed(self.contract.plugin)

    def test_schema_new_cohort_and_the_one_reader(self, synthetic, work) -> None:
        loaded = load_cohort(self.contract.plugin, self.contract.run, synthetic, work / "schema")
        check_schema(self.contract.plugin, loaded, synthetic, work / "schema")

    def test_a_path_outside_the_folder_is_the_one_problem(self, synthetic, work) -> None:
        check_outside_path(self.contract, synthetic, work / "outside-path")

    def test_every_problem_of_a_table_is_listed_at_once(self, synthetic, work) -> None:
        check_every_problem_at_once(self.contract, synthetic, work / "problems")

    def test_a_moved_key_is_one_line_naming_the_new_one(self, work) -> None:
        check_moved_keys(self.contract.plugin, work / "moved")

    def test_settings_are_declared_documented_and_checked(self, work) -> None:
        check_settings(self.contract.plugin, work / "settings")

    def test_no_patient_on_two_sides_of_a_split(self, loaded) -> None:
        check_split(loaded)

    def test_each_unit_predicted_once_with_its_own_masked_targets(self, loaded, finished) -> None:
        check_predictions(loaded, finished)

    def test_the_bundle_holds_the_final_model_bit_for_bit(self, finished, work) -> None:
        check_bundle(self.contract, finished, work / "bundle")

    def test_the_imported_model_predicts_as_the_final_model(self, planted, finished, work) -> None:
        check_round_trip(self.contract, planted, finished, work / "round-trip")

    def test_no_identifier_reaches_any_output(self, planted, finished) -> None:
        check_no_identifier(planted, finished)


@pytest.mark.parametrize("kind", ["planted", "neutral"])
def _test_controls(self: ContractSuite, kind: str, work: Path) -> None:
    check_control(self.contract, kind, work / "controls")


def contract_suite(contract: Contract) -> type:
    """The contract suite for one plugin, as a pytest test class: `TestContract = contract_suite(Contract(...))` in
    the plugin's test module (or a subclass of it with the plugin's own tests); the controls run only when the
    plugin declares them."""
    attrs: dict[str, Any] = {"contract": contract, "__module__": __name__,
                             "__doc__": f"cardio's plugin contract suite on {contract.plugin}."}
    if contract.controls is not None:
        attrs["test_controls"] = _test_controls
    return type(f"Contract_{contract.plugin}", (ContractSuite,), attrs)
