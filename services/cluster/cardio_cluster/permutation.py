"""The permutation test of a whole cross-validation against chance (Ojala & Garriga 2010, test 1).

A pooled out-of-fold AUC's DeLong or bootstrap interval counts which patients were scored, not that other training
folds would give other models: with no signal it lay above 0.5 in 5.5% of 400 data sets, not 2.5%
(`benchmarks/cv_auc_null.py`). The test that holds its level reruns the whole study on permuted labels:

    cardio sweep --plugin X [--set ...] --grid cohort.permute_labels=true --seeds 1-99 \\
        --permutation-of RUN --out DIR

Each seed's run moves every patient's labels to another patient (`cardio.data.leakage.permute_outcomes`) and makes its
own folds and models, so the null distribution holds everything that varies between two runs of the pipeline. For
every model and task of RUN, p = (1 + #{permuted runs at least as good as RUN}) / (1 + N), the smallest possible
being 1 / (1 + N); the family of RUN's models and tasks is Holm-adjusted. Written by hand: scikit-learn's
`permutation_test_score` permutes inside one estimator's CV, not a run of five stages.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardio import config as config_mod
from cardio.data import CardioError
from cardio.study import tasks

# Keys that may differ between RUN and the permuted runs: the seed and the permutation are what the test varies;
# the rest decide where and how fast a run goes, or its intervals and figures, never a pooled point estimate.
FREE_KEYS = ("seed", "cohort.permute_labels", "device", "cache_dir", "executor", "report", "explain",
             "final_model", "stats", "train.num_workers", "train.cpu_threads", "train.tensorboard", "profile",
             "profiles")


def _flat(cfg: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _free(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in FREE_KEYS)


def _run_config(run: Path) -> dict:
    try:
        return config_mod.load_yaml(run / "config.yaml")
    except (OSError, ValueError) as e:
        raise CardioError(f"{run / 'config.yaml'}: cannot be read ({e})") from None


def _edited_since(run: Path, config: dict) -> list[str]:
    """config.yaml edited after the run finished: its hash is not the one the evaluate task recorded when done, so
    the run's metrics are not those of the config the sweep would compare its permutations with."""
    done = tasks.task_dir(run, "evaluate") / "done.json"
    try:
        recorded = json.loads(done.read_text()).get("config_hash")
    except (OSError, ValueError, AttributeError):
        return [f"{done} is missing or damaged, so the config the run finished with is unknown"]
    if recorded != tasks.config_hash(config):
        return [f"{run / 'config.yaml'} was edited after the run finished (its hash is not the one recorded in "
                f"{done}): its metrics are of another config; put the config back, or make the run again"]
    return []


def check_observed(run: Path, plugin: str, null_config: dict) -> None:
    """Every reason at once why `run` cannot be tested against permuted runs of `null_config`."""
    problems = []
    try:
        state = json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        raise CardioError(f"--permutation-of {run}: not a run directory (no readable run.json)") from None
    if not isinstance(state, dict):
        raise CardioError(f"--permutation-of {run}: {run / 'run.json'} holds a {type(state).__name__}, not a run's "
                          "description (damaged or edited); restore it, or make the run again")
    if state.get("status") != "finished":
        problems.append(f"the run is {state.get('status', 'unfinished')}, not finished")
    if state.get("plugin") != plugin:
        problems.append(f"the run is of plugin {state.get('plugin')!r}, the sweep of {plugin!r}")
    config = _run_config(run)
    problems += _edited_since(run, config)
    observed = _flat(config)
    if observed.get("cohort.permute_labels"):
        problems.append("the run itself permuted its labels (cohort.permute_labels: true)")
    if not null_config["cohort"]["permute_labels"]:
        problems.append("the sweep's runs keep their labels: give it --grid cohort.permute_labels=true")
    null = _flat(null_config)
    differ = sorted(k for k in set(observed) | set(null) if not _free(k) and observed.get(k) != null.get(k))
    problems += [f"{k} is {observed.get(k)!r} in the run and {null.get(k)!r} in the sweep" for k in differ]
    if problems:
        raise CardioError(f"--permutation-of {run}: " + "; ".join(problems))


def point_values(estimates: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One point estimate per model and task of one run's pooled estimates
    (`cardio_cluster.sweep.pooled_estimates`): its `metric`, the mean over CV repeats (each interval method
    reports the same point)."""
    if estimates.empty:
        return pd.DataFrame(columns=["model", "task", "value"])
    rows = estimates[estimates["metric"] == metric].drop_duplicates(["model", "task", "repeat"])
    return (rows.groupby(["model", "task"], sort=False, dropna=False)["estimate"].mean().rename("value")
            .reset_index())


def null_values(null: Sequence[pd.DataFrame], model: str, task: str) -> np.ndarray:
    """The permuted runs' finite values of one model and task."""
    values = np.array([v for t in null for v in t.loc[(t["model"].astype(str) == str(model))
                                                      & (t["task"].astype(str) == str(task)), "value"]], float)
    return values[np.isfinite(values)]


def permutation_test(observed: pd.DataFrame, null: Sequence[pd.DataFrame], higher_is_better: bool) -> pd.DataFrame:
    """Per model and task of `observed`: its value, the permuted runs' mean and 95th (or 5th) percentile, N, the
    permutation p-value and its Holm adjustment over the rows."""
    from cardio_stats import adjust_pvalues

    rows = []
    for _, obs in observed.iterrows():
        values = null_values(null, obs["model"], obs["task"])
        n = len(values)
        as_good = np.sum(values >= obs["value"]) if higher_is_better else np.sum(values <= obs["value"])
        rows.append({"model": obs["model"], "task": obs["task"], "observed": obs["value"],
                     "null_mean": float(values.mean()) if n else np.nan,
                     "null_q95": float(np.quantile(values, 0.95 if higher_is_better else 0.05)) if n else np.nan,
                     "n_permutations": n, "p": (1 + as_good) / (1 + n) if n else np.nan})
    table = pd.DataFrame(rows)
    table["p_holm"] = adjust_pvalues(table["p"].to_numpy(dtype=float), "holm") if len(table) else []
    return table


def figure(table: pd.DataFrame, null: Sequence[pd.DataFrame], metric: str) -> Any:
    """One panel per model and task: the permuted runs' values as a histogram, RUN's as a line."""
    from matplotlib.ticker import MaxNLocator

    from cardio_report.figures import PALETTE, subplots

    n = len(table)
    fig, axes = subplots(1, n, figsize=(3.6 * n, 3.0), squeeze=False, sharex=True)
    every = np.concatenate([table["observed"].to_numpy(float), *(t["value"].to_numpy(float) for t in null)])
    every = every[np.isfinite(every)]
    pad = 0.05 * max(float(np.ptp(every)), 1e-3)
    edges = np.histogram_bin_edges(every, bins=min(20, max(5, len(null) // 3)))  # one set of bins: panels compare
    for ax, (_, row) in zip(axes[0], table.iterrows()):
        values = null_values(null, row["model"], row["task"])
        ax.hist(values, bins=edges, color=PALETTE[0], alpha=0.8,
                label=f"permuted labels (N = {len(values)})")
        ax.axvline(row["observed"], color=PALETTE[1], lw=2, label=f"this run: {row['observed']:.3f}")
        ax.set_title(f"{row['model']} · {row['task']}\np = {row['p']:.3g} (Holm {row['p_holm']:.3g})", fontsize=9)
        ax.set_xlabel(f"pooled out-of-fold {metric.upper() if metric == 'auc' else metric}")
        ax.set_ylabel("runs (count)")
        ax.set_xlim(every.min() - pad, every.max() + pad)  # the run's line never on the frame
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.5)  # headroom: the legend sits above the bars
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def markdown(run: Path, table: pd.DataFrame, metric: str, higher_is_better: bool) -> list[str]:
    """summary.md's section: the test's recipe and one row per model and task."""
    n = int(table["n_permutations"].max()) if len(table) else 0
    tail = "95th" if higher_is_better else "5th"
    out = ["## Permutation test against chance", "",
           f"`{run}` against this sweep's {n} runs on permuted labels (each seed permutes the patients' labels and "
           f"makes its own folds and models): p = (1 + runs whose pooled {metric} is as good as this run's or "
           f"better) / (1 + N); the smallest possible p is {1 / (1 + n):.3g}. Holm-adjusted over the run's "
           f"{len(table)} model(s) and task(s), whose smallest possible p is {min(1.0, len(table) / (1 + n)):.3g}: "
           "a family of k tests needs N >= 20k - 1 permutations to reach 0.05. Unlike the run's own intervals, "
           "which count which patients were scored, this test holds its level for a whole cross-validation "
           "(`benchmarks/cv_auc_null.py`). `permutation.png` draws it.", "",
           f"| model | task | {metric} | permuted: mean | permuted: {tail} percentile | N | p | p (Holm) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    out += [f"| {r.model} | {r.task} | {r.observed:.3f} | {r.null_mean:.3f} | {r.null_q95:.3f} | {r.n_permutations} "
            f"| {r.p:.3g} | {r.p_holm:.3g} |" for r in table.itertuples(index=False)]
    return [*out, ""]
