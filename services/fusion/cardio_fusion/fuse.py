"""`cardio fuse`: one CRT prediction from the runs of several modalities on the same patients, without leaks.

A core command, not a plugin: a plugin is one modality's stages on its own files, while fusion reads
finished run directories (their tasks, folds and pseudonyms are the core's format) and reports through the
core's statistics. It fits no deep model; it learns how much to trust each modality's score.

**Why nested, and how.** A stacker fitted on the pooled out-of-fold scores leaks: a training patient's
score came from a base model that saw the labels of the fold being scored (benchmarks/fusion_leak.py
measures the optimism). So every base run is made with `cv.inner_folds: k` (and `cv.patients` when a
modality misses patients, so that every run gives a patient the same fold). For outer fold f, the base run's
fit task kept the inner out-of-fold scores of f's training patients, from models that never saw f's test
labels. Fold f's fusion model, a logistic regression on the modalities' logit scores (each z-scored within the
set one model scored, without labels: deep models' scores shift from fold to fold) and the clinical
covariates if asked, is fitted on those inner scores only, then applied to the outer scores of f's test
patients, which the base model fitted on f's training patients produced. No label of fold f reaches its
fused score, and no base model is refitted here: the base runs made every fit, through the core.

**Weights >= 0.** Each modality's weight is constrained to be non-negative (`cardio_stats.fit_stacker`;
covariates are free): a modality's score estimates the same response, and an unconstrained stacker fitted on
inner scores gives a modality that carries nothing a weight of either sign, which the fused score then pays for
(benchmarks/crt_fusion.py shows both, over seeds and simulated data sets).

**Missing modalities.** A test patient is fused from the modalities present: fold f gets one fusion model
per combination its test patients have, fitted on the training patients with that combination. The report
counts each combination. Each single-modality row is that modality's score recalibrated by the same nested
logistic model, so fused and single rows differ only in the modalities used (and NRI/IDI compare risks).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import cardio
from cardio import config as config_mod
from cardio.context import default_cache_dir, new_context
from cardio.data import CardioError, Predictions
from cardio.data.pseudonyms import pseudonyms, run_key
from cardio.study import outputs, tasks
from cardio.study.record import run_logger
from cardio_fusion.modality import Modality
from cardio_fusion.out_folder import new_folder
from cardio_fusion.report import fusion_section
from cardio_fusion.truth import stated_truth as of_folder
from cardio_report.performance import evaluate_sections
from cardio_stats import fit_stacker

FUSED = "fused"
CLINICAL = "clinical"
GUIDELINE = "guideline"
_EPS = 1e-6


def _read_config(run: Path) -> tuple[dict | None, str | None]:
    """The run's config.yaml as a mapping with the keys fusion reads, or why not (one line naming the file)."""
    path = run / "config.yaml"
    if not path.is_file():
        return None, f"{run} is not a cardio run directory (no config.yaml)"
    try:
        cfg = config_mod.load_yaml(path)
    except CardioError as e:
        return None, f"{e}; restore the run's config.yaml, or make the run again"
    cv, stats = cfg.get("cv"), cfg.get("stats")
    if not isinstance(cv, dict) or not isinstance(stats, dict) or "label" not in cfg or "seed" not in cfg:
        return None, (f"{path} lacks the run's cv, stats, label or seed (edited, or not written by cardio); "
                      "restore it, or make the run again")
    return cfg, None


def _read_meta(run: Path) -> tuple[dict, str | None]:
    """run.json (optional to fusion, which names a run by its plugin), or why it cannot be read."""
    path = run / "run.json"
    if not path.exists():
        return {}, None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError: JSONDecodeError and UnicodeDecodeError
        return {}, f"{path} is not valid JSON (damaged, or not written by cardio); restore it, or make the run again"
    if not isinstance(meta, dict):
        return {}, f"{path} holds a {type(meta).__name__}, not a run's description; restore it, or make the run again"
    return meta, None


def _predictions(run: Path, folds: list[str], file: str) -> tuple[pd.DataFrame | None, str | None]:
    """Every fold's kept predictions (pseudonymous ids), or one line naming the file that cannot be read."""
    parts = []
    for f in folds:
        path = tasks.task_dir(run, f"fit-{f}") / file
        try:
            table = tasks.read_predictions(run, f"fit-{f}", b"", None, file).table
            missing = {"patient_id", "model", "task", "kind", "y_true", "y_score"} - set(table.columns)
            if missing:
                raise ValueError(f"no column(s) {sorted(missing)}")
            table = table.assign(y_score=pd.to_numeric(table["y_score"]), y_true=pd.to_numeric(table["y_true"]))
        except CardioError:  # a finished run is not resumed: its fold is not fitted again by deleting it
            return None, (f"{path} cannot be read (missing or damaged); restore the run from a backup, or make it "
                          "again with its config.yaml")
        except (TypeError, ValueError, KeyError, AttributeError) as e:  # dtype or columns edited: numpy/pandas
            why = " ".join(str(e).split())[:80]
            return None, (f"{path} holds predictions cardio did not write ({type(e).__name__}: {why}); restore the "
                          "run from a backup, or make it again with its config.yaml")
        parts.append(table)
    return pd.concat(parts, ignore_index=True), None


def _patient_scores(table: pd.DataFrame, model: str, task: str, by: list[str]) -> pd.DataFrame:
    """One score per patient (and fold): the mean of the patient's records, as the core's at_level does."""
    rows = table[(table["model"].astype(str) == model) & (table["task"].astype(str) == task)]
    return (rows.groupby(["patient_id", *by], sort=True)
            .agg(y=("y_true", "max"), score=("y_score", "mean")).reset_index())


def _scores_digest(table: pd.DataFrame) -> str:
    """The run's scores without their ids: two runs with the same digest are one run copied (ids edited or not)."""
    import hashlib

    scores = np.sort(np.round(table["y_score"].to_numpy(dtype=np.float64), 9))
    return hashlib.sha256(scores.tobytes()).hexdigest()


def read_modality(run: Path, model: str | None, name: str | None) -> tuple[Modality | None, list[str]]:
    """The base run's scores, or the problems that keep it out (every one, not the first)."""
    run = Path(run)
    if not run.is_dir():
        return None, [f"{run} is not a folder (give the run directories that cardio run wrote)"]
    cfg, why = _read_config(run)
    meta, why_meta = _read_meta(run)
    if cfg is None or why_meta:
        return None, [p for p in (why, why_meta) if p]
    plugin = str(meta.get("plugin", run.name))
    try:
        folds = tasks.fold_names(cfg["cv"])
        problems = [f"{run}: task fit-{f} is not done" for f in folds
                    if tasks.state(run, f"fit-{f}", cfg)[0] != "done"]
    except CardioError as e:
        return None, [str(e)]
    except (KeyError, TypeError, ValueError) as e:
        return None, [f"{run / 'config.yaml'}: its cv settings cannot be read ({type(e).__name__}: {e}); restore "
                      "it, or make the run again"]
    if not int(cfg["cv"].get("inner_folds") or 0):
        problems.append(f"{run}: made without cv.inner_folds, so it has no inner-fold scores to fit a fusion "
                        f"model on without leaks (re-run it with --set cv.inner_folds=3)")
    if int(cfg["cv"].get("repeats", 1)) != 1:
        problems.append(f"{run}: cv.repeats={cfg['cv']['repeats']}; fusion needs one prediction per patient")
    if problems:
        return None, problems
    outer, why = _predictions(run, folds, tasks.PREDICTIONS)
    inner, why_inner = _predictions(run, folds, tasks.INNER) if outer is not None else (None, None)
    if outer is None or inner is None:
        return None, [p for p in (why, why_inner) if p]
    label = str(cfg["label"])
    binary = sorted(outer.loc[outer["kind"] == "binary", "task"].astype(str).unique())
    task = label if label in binary else (binary[0] if len(binary) == 1 else None)  # a task named otherwise
    if task is None:
        return None, [f"{run}: no binary task of the label {label!r} among its tasks {binary}"]
    if task != label:  # one outcome under two names (a plugin naming its task otherwise than its label): said, once
        print(f"cardio: {run}: its task {task!r} is its label {label!r}; fused as {label!r}", file=sys.stderr)
    models = sorted(outer.loc[outer["task"].astype(str) == task, "model"].astype(str).unique())
    ref = cfg["stats"].get("reference")
    ref = ref.get(task) if isinstance(ref, dict) else ref
    chosen = model or (ref if ref in models else (models[0] if len(models) == 1 else None))
    if chosen is None or chosen not in models:
        return None, [f"{run}: choose its model with --model {run}=NAME; task {task!r} has {models}"
                      if chosen is None else f"{run}: model {chosen!r} made no {task!r} prediction; it has {models}"]
    rows = outer[(outer["model"].astype(str) == chosen) & (outer["task"].astype(str) == task)]
    return Modality(name or plugin, run, plugin, chosen, cfg, _patient_scores(outer, chosen, task, ["fold"]),
                    _patient_scores(inner, chosen, task, ["fold", "inner_fold"]), _scores_digest(rows),
                    meta.get("pseudonym_key")), []


def check_runs(mods: list[Modality]) -> list[str]:
    """Every reason these runs cannot be fused: label, seed, split settings, pseudonym key, folds, labels. A setting
    that differs is named with the exact `--set` that makes the run agree with the first."""
    problems = []
    first = mods[0]
    for m in mods[1:]:
        for what, a, b in (("label", first.config["label"], m.config["label"]),
                           ("seed", first.config["seed"], m.config["seed"]),
                           ("cache_dir (the pseudonym key)", _cache(first.config), _cache(m.config))):
            if a != b:
                fix = f"; make it again with --set {what.split()[0]}={a}" if what != "seed" else \
                    f"; make it again with --seed {a}"
                problems.append(f"{m.run} has {what} {b!r}, {first.run} has {a!r}{fix}")
        ours, theirs = _split_settings(first.config), _split_settings(m.config)
        if ours != theirs:
            keys = [k for k in ours if ours.get(k) != theirs.get(k)] + [k for k in theirs if k not in ours]
            sets = " ".join(f"--set cv.{k}={_yaml(first.config['cv'].get(k))}" for k in keys)
            problems.append(f"{m.run} was split otherwise than {first.run} (" + ", ".join(
                f"cv.{k} {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in keys) + f"): make {m.run} again "
                f"with {sets} (the profiles' fold counts differ: ecg_transfer's fast has 5 folds, spect_polar's 3)")
    seen = pd.concat([m.outer.assign(_run=str(m.run)) for m in mods], ignore_index=True)
    if not set.intersection(*(set(m.outer["patient_id"]) for m in mods)) and len(mods) > 1:
        problems.append("the runs share no patient (another cohort, or another pseudonym key)")
    folds = seen.groupby("patient_id")["fold"].nunique()
    if (folds > 1).any():
        problems.append(f"{int((folds > 1).sum())} patient(s) sit in different folds in different runs: make "
                        f"every run with the same seed and cv.patients")
    labels = seen.dropna(subset=["y"]).groupby("patient_id")["y"].nunique()
    if (labels > 1).any():
        problems.append(f"{int((labels > 1).sum())} patient(s) have different labels in different runs")
    names = [m.name for m in mods]
    if len(set(names)) < len(names):
        problems.append(f"two runs have one name {names}: name them with --name RUN=NAME")
    return _same_runs(mods) + problems


def _same_runs(mods: list[Modality]) -> list[str]:
    """Runs that are one run twice: the same folder, a copy (the same scores, whatever its ids say), or two runs of
    one plugin on one cohort folder. Fusion adds modalities; one modality counted twice would look like two."""
    problems = []
    for i, a in enumerate(mods):
        for b in mods[i + 1:]:
            if a.run.resolve() == b.run.resolve():
                problems.append(f"{b.run} is given twice (fused with itself)")
            elif a.scores_digest and a.scores_digest == b.scores_digest:
                problems.append(f"{b.run} holds the same predictions as {a.run}: a copy of one run (its patient ids "
                                "edited or not), not another modality")
            elif a.plugin == b.plugin and _cohort_of(a.config) == _cohort_of(b.config):
                problems.append(f"{a.run} and {b.run} are runs of plugin {a.plugin!r} on one cohort "
                                f"({_cohort_of(a.config) or 'its synthetic data'}): fuse runs of different modalities")
    return problems


def _cohort_of(cfg: dict) -> str:
    where = (cfg.get("cohort") or {}).get("dir") if isinstance(cfg.get("cohort"), dict) else None
    return str(Path(str(where)).expanduser().resolve()) if where else ""


def _runs_key(mods: list[Modality]) -> tuple[bytes, list[str]]:
    """The key the runs' pseudonyms were made with (their run.json names it: Modality.key_id), from the cache this
    command uses; or why not: runs made under different keys name no patient alike, and another key in this cache
    would make cv.patients and the clinical table match no patient."""
    if not mods:
        return b"", []
    named = {m.key_id for m in mods if m.key_id}
    if len(named) > 1:
        return b"", ["the runs were pseudonymized with different keys (" + ", ".join(
            f"{m.run}: {m.key_id}" for m in mods) + "): make them with one cache"]
    try:
        return run_key(default_cache_dir(mods[0].config), next(iter(named), None), mods[0].run), []
    except CardioError as e:
        return b"", [str(e)]


def check_patients(mods: list[Modality], key: bytes) -> list[str]:
    """With cv.patients (the cohort's patient list every run was split by), a run's patient outside it was not in
    that cohort: its ids were edited, or it is a run of another cohort."""
    listed = mods[0].config["cv"].get("patients")
    if not listed:
        return []
    path = Path(str(listed)).expanduser()
    try:
        ids = pd.read_csv(path, dtype={"patient_id": str})["patient_id"]
    except (OSError, ValueError, KeyError) as e:
        return [f"cv.patients {path} cannot be read ({type(e).__name__}); the runs were split by it"]
    known = set(pseudonyms(ids, key, "P"))
    out = []
    for m in mods:
        foreign = sorted(set(m.outer["patient_id"].astype(str)) - known)
        if foreign:
            out.append(f"{m.run}: {len(foreign)} of its {m.outer['patient_id'].nunique()} patients are not in "
                       f"cv.patients {path} (patient ids edited, or a run of another cohort)")
    return out


def fused_patients(mods: list[Modality], pred: pd.DataFrame) -> str:
    """What was fused, in patients: how many had a fused score, how many had every modality, and each run's."""
    fused = pred[pred["model"] == FUSED]
    every = int((fused["modalities"] == "+".join(m.name for m in mods)).sum())
    each = ", ".join(f"{m.name} {m.outer['patient_id'].nunique()}" for m in mods)
    return f"{fused['patient_id'].nunique()} patients fused, {every} with every modality (patients per run: {each})"


def _split_settings(cfg: dict) -> dict:
    """The cv keys that decide who is in which fold (ratios matter only to holdout, and so on)."""
    used = {"kfold": ("folds", "repeats", "stratify"), "holdout": ("ratios", "stratify"),
            "external": ("test_sites",), "predefined": ("column",)}
    method = cfg["cv"]["method"]
    cv = {k: cfg["cv"].get(k) for k in ("method", *used.get(method, ()), "patients", "inner_folds")}
    if cv.get("patients"):
        cv["patients"] = str(Path(str(cv["patients"])).expanduser().resolve())
    return cv


def _yaml(value: object) -> str:
    """A config value as `--set` reads it (YAML flow style, one line)."""
    import yaml

    return str(yaml.safe_dump(value, default_flow_style=True, width=10**6)).strip().removesuffix("...").strip()


def _cache(cfg: dict) -> str:
    return str(default_cache_dir(cfg).expanduser().resolve())


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _standardized(t: pd.DataFrame) -> np.ndarray:
    """Logit scores z-scored within each set one model scored (an outer fold's test patients, or one inner fold's):
    a deep model's scores shift and stretch from fold to fold, and the stacker must weigh modalities, not those
    shifts. Uses the scores only, never a label."""
    logit = pd.Series(_logit(t["score"].to_numpy()), index=t.index)
    by = t["inner_fold"] if "inner_fold" in t.columns else pd.Series(0, index=t.index)
    sd = logit.groupby(by).transform("std").replace(0.0, 1.0).fillna(1.0)
    return ((logit - logit.groupby(by).transform("mean")) / sd).to_numpy()


def _wide(mods: list[Modality], part: str, fold: str) -> pd.DataFrame:
    """patient_id -> y and each modality's standardized logit score (NaN where the patient lacks it) in one fold."""
    cols = []
    for m in mods:
        t = getattr(m, part)
        t = t[t["fold"] == fold].set_index("patient_id")
        cols.append(pd.DataFrame({f"y_{m.name}": t["y"], m.name: _standardized(t)}, index=t.index))
    wide = pd.concat(cols, axis=1)
    wide["y"] = wide[[c for c in wide.columns if c.startswith("y_")]].max(axis=1)
    return wide[["y", *(m.name for m in mods)]]


def _fit_lr(x: pd.DataFrame, y: pd.Series, where: str, scores: int, nonnegative: bool = True):
    """The fusion model on the first `scores` columns (modality scores) and the covariates after them: a logistic
    regression on standardized columns, ridge as scikit-learn's C = 1, whose modality weights cannot be negative
    (`cardio_stats.fit_stacker`; `nonnegative=False`: the unconstrained fit, for benchmarks)."""
    keep = y.notna()
    x, y = x[keep], y[keep].astype(int)
    if y.nunique() < 2 or y.value_counts().min() < 2:
        raise CardioError(f"{where}: the fusion model needs at least 2 training patients of each class, has "
                          f"{y.value_counts().to_dict()}")
    flags = [nonnegative] * scores + [False] * (x.shape[1] - scores)
    return fit_stacker(x.to_numpy(), y.to_numpy(), nonnegative=flags)


def fuse_fold(mods: list[Modality], fold: str, clinical: pd.DataFrame | None,
              nonnegative: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """Fold `fold`'s fused and recalibrated single-modality risks of its test patients, fitted on inner scores
    only; and the fusion models' standardized coefficients. `nonnegative=False` fits the fused models' modality
    weights without their sign constraint (benchmarks/crt_fusion.py shows both); the single-modality rows keep it
    either way, so both stackers are compared with one reference (refitted unconstrained, a single row whose inner
    slope came out negative had its ranking reversed: benchmarks/crt_fusion.py)."""
    train, test = _wide(mods, "inner", fold), _wide(mods, "outer", fold)
    covs = [] if clinical is None else list(clinical.columns)
    if covs:
        train, test = train.join(clinical, how="inner"), test.join(clinical, how="inner")
    names = [m.name for m in mods]
    present = test[names].notna()
    rows, coefs = [], []
    for combo, idx in present.groupby(names, sort=False).groups.items():
        used = [n for n, has in zip(names, combo) if has]
        if not used:
            continue
        fit_on = train.dropna(subset=used)
        lr = _fit_lr(fit_on[used + covs], fit_on["y"], f"fold {fold}, modalities {'+'.join(used)}", len(used),
                     nonnegative)
        part = test.loc[idx]
        rows.append(pd.DataFrame({"patient_id": part.index, "model": FUSED, "y_true": part["y"],
                                  "y_score": lr.predict_proba(part[used + covs].to_numpy())[:, 1],
                                  "modalities": "+".join(used)}))
        coefs.append({"fold": fold, "modalities": "+".join(used), "n_train": int(fit_on["y"].notna().sum()),
                      **dict(zip(used + covs, np.round(lr.coef, 3)))})
    singles = [(n, [n]) for n in names] + ([(CLINICAL, [])] if covs else [])
    for model, used in singles:
        fit_on, part = train.dropna(subset=used), test.dropna(subset=used)
        cols = used + covs if model == CLINICAL else used
        lr = _fit_lr(fit_on[cols], fit_on["y"], f"fold {fold}, {model}", len(used))
        rows.append(pd.DataFrame({"patient_id": part.index, "model": model, "y_true": part["y"],
                                  "y_score": lr.predict_proba(part[cols].to_numpy())[:, 1], "modalities": model}))
    return pd.concat(rows, ignore_index=True).assign(fold=fold), coefs


def _clinical(path: Path, covariates: list[str], guideline: str | None, key: bytes) -> pd.DataFrame:
    """The clinical table's covariates (and the guideline rule as 0/1), indexed by the project's pseudonyms."""
    try:
        table = pd.read_csv(path, dtype={"patient_id": str})
    except (OSError, ValueError) as e:
        raise CardioError(f"--clinical {path} cannot be read ({type(e).__name__})") from None
    missing = [c for c in ["patient_id", *covariates] if c not in table.columns]
    if missing:
        raise CardioError(f"--clinical {path} lacks column(s) {missing}")
    table = table.drop_duplicates("patient_id")
    out = pd.DataFrame(index=pd.Index(pseudonyms(table["patient_id"], key, "P"), name="patient_id"))
    for c in covariates:
        values = pd.to_numeric(table[c], errors="coerce")
        if values.isna().any():
            raise CardioError(f"--clinical {path}: column {c!r} has {int(values.isna().sum())} missing or "
                              f"non-numeric value(s); fusion needs every covariate of every patient")
        out[c] = values.to_numpy(dtype=float)
    if guideline:
        try:
            rule = table.eval(guideline)
        except Exception as e:  # pandas raises many kinds for a bad expression: one line names it
            raise CardioError(f"--guideline {guideline!r} cannot be evaluated on {path}: {e}") from None
        out[GUIDELINE] = np.asarray(rule, dtype=float)
    return out


def fuse(runs: list[Path], out: Path, *, models: dict[str, str] | None = None, names: dict[str, str] | None = None,
         clinical: Path | None = None, covariates: tuple[str, ...] = (), guideline: str | None = None,
         n_resamples: int | None = None) -> Path:
    """Fuse finished runs into `out`: predictions.csv, metrics.json and the report. See the module docstring."""
    if len(runs) < 2:
        raise CardioError("cardio fuse needs the runs of at least two modalities")
    started = time.perf_counter()
    read = [read_modality(Path(r), (models or {}).get(str(r)), (names or {}).get(str(r))) for r in runs]
    problems = [p for _, ps in read for p in ps]
    mods = [m for m, _ in read if m is not None]
    problems += check_runs(mods) if len(mods) == len(runs) else []
    key, why = _runs_key(mods)
    problems += why + (check_patients(mods, key) if len(mods) == len(runs) and not why else [])
    if problems:
        raise CardioError("cannot fuse these runs: " + "; ".join(problems))
    with new_folder(out, "fusion folder", "fusion writes a new folder") as path:
        return _fused(mods, path, key, clinical, covariates, guideline, n_resamples, started)


def _every_patient_in(mods: list[Modality], clin: pd.DataFrame, path: Path) -> None:
    """A patient of the runs without a row in the clinical table would leave the fusion with covariates (an inner
    join) and the guideline's row: one line instead, with how many."""
    patients = set().union(*(set(m.outer["patient_id"].astype(str)) for m in mods))
    absent = len(patients - set(clin.index))
    if absent:
        raise CardioError(f"--clinical {path}: {absent} of the runs' {len(patients)} patients have no row (its "
                          "patient_id must be the cohort's, one row each)")


def _fused(mods: list[Modality], out: Path, key: bytes, clinical: Path | None, covariates: tuple[str, ...],
           guideline: str | None, n_resamples: int | None, started: float) -> Path:
    """fuse's work in its claimed folder `out`."""
    cfg = _report_config(mods[0].config, n_resamples)
    clin = _clinical(Path(clinical), list(covariates), guideline, key) if clinical else None
    if clin is not None:
        _every_patient_in(mods, clin, Path(str(clinical)))
    log = run_logger(out / "run.log", True)
    ctx = new_context(cfg, out, log, device="cpu")
    fold_names = sorted(set.union(*(set(m.outer["fold"]) for m in mods)))
    covs = clin[list(covariates)] if clin is not None and covariates else None
    parts, coefs = zip(*(fuse_fold(mods, f, covs) for f in fold_names))
    pred = pd.concat(parts, ignore_index=True)
    if clin is not None and GUIDELINE in clin.columns:
        fused = pred[pred["model"] == FUSED]
        rule = clin[GUIDELINE].reindex(fused["patient_id"]).to_numpy()
        pred = pd.concat([pred, fused.assign(model=GUIDELINE, y_score=rule, modalities=GUIDELINE)
                          .dropna(subset=["y_score"])], ignore_index=True)
    pred = pred.assign(record_id=pred["patient_id"], task=str(cfg["label"]), kind="binary", repeat=0)

    predictions = Predictions(pred.dropna(subset=["y_true"]).reset_index(drop=True))
    truth = stated_truth(mods)
    sections = [*evaluate_sections(predictions, cfg, ctx, truth),
                fusion_section(mods, predictions, list(coefs), cfg, ctx)]
    meta = {"plugin": "fuse", "plugin_version": cardio.__version__, "cardio_version": cardio.__version__,
            "seed": int(cfg["seed"]), "device": "cpu", "world_size": 1, "cv": mods[0].config["cv"],
            "synthetic": truth is not None or not all(_cohort_of(m.config) for m in mods), "truth": truth,
            # one fused row per patient: the table's other rows are the same patients under the single models
            "n_records": int(predictions.table.loc[predictions.table["model"] == FUSED, "patient_id"].nunique()),
            "n_patients": int(predictions.table.loc[predictions.table["model"] == FUSED, "patient_id"].nunique()),
            "fused": fused_patients(mods, predictions.table),
            "folds": [{"name": f} for f in fold_names], "elapsed_s": round(time.perf_counter() - started, 1),
            "runs": [{"run": str(m.run), "plugin": m.plugin, "name": m.name, "model": m.model} for m in mods]}
    outputs.write_run(out, meta, predictions, sections, log, key, pseudonymous=True)
    log.info("fused %d runs in %.1f s: %s; %s", len(mods), meta["elapsed_s"], meta["fused"], out / "report.md")
    print(f"cardio: {meta['fused']}", file=sys.stderr)
    return out


def stated_truth(mods: list[Modality]) -> str | None:
    """What the runs' cohort planted, where `cardio synthetic-crt` wrote it: the truth its truth.json states, as each
    run's own Cohort part states it (one paragraph; each different one, should the runs read different cohorts)."""
    stated = dict.fromkeys(t for m in mods if (t := of_folder(_cohort_of(m.config) or None)) is not None)
    return " ".join(stated) or None


def _report_config(base: dict, n_resamples: int | None) -> dict:
    """The core's defaults with the runs' seed and label, and the fused model as the pre-specified reference."""
    cfg = config_mod.merge(config_mod.core_defaults(), {"seed": base["seed"], "label": base["label"],
                                                        "cache_dir": base.get("cache_dir")}, strict=False)
    cfg["stats"] = {**cfg["stats"], **{k: base["stats"][k] for k in ("level", "n_resamples") if k in base["stats"]},
                    "reference": FUSED}
    if n_resamples is not None:
        cfg["stats"]["n_resamples"] = int(n_resamples)
    return cfg
