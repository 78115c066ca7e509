"""What the cluster service adds to `cardio` (entry point `cardio.services: cluster`): the command `cardio sweep` and
the executors `local` (a process per task) and `slurm` (job arrays), both through submitit. Light on purpose:
`cardio --help` loads it; the executors and the sweep load (with torch and submitit) when a run or a sweep uses them."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from cardio import services


def _submit(*args: Any, **kwargs: Any) -> bool:
    """cardio_cluster.executors.submit, imported when a run hands its tasks to the local or slurm executor."""
    from cardio_cluster.executors import submit  # torch, the kernel's tasks and submitit

    return submit(*args, **kwargs)


class SweepCommand(click.Command):
    """`--seeds 0 1 2` (or `--seeds 1-99`) and `--grid a=1,2 b=3,4`: the values up to the next option belong to it
    (click's options take one value each, so they are read as --seeds 0 --seeds 1 --seeds 2)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out, greedy = [], None
        for arg in args:
            if arg.startswith("-"):
                greedy = arg if arg in ("--seeds", "--grid") else None
                out.append(arg)
                continue
            span = re.fullmatch(r"(\d+)-(\d+)", arg) if greedy == "--seeds" else None
            if span and int(span[1]) > int(span[2]):
                raise click.BadParameter(f"{arg}: the first seed is above the last", param_hint="--seeds")
            for value in [str(v) for v in range(int(span[1]), int(span[2]) + 1)] if span else [arg]:
                out += [greedy, value] if greedy and out[-1] != greedy else [value]
        return super().parse_args(ctx, out)


@click.command("sweep", cls=SweepCommand)
@click.option("--plugin", required=True, help="Modality plugin to run.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Base YAML merged over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one key in every run.")
@click.option("--grid", "grid", multiple=True, required=True, metavar="KEY=V1,V2",
              help="A key and its values; the sweep runs every combination of the --grid keys.")
@click.option("--seeds", "seeds", multiple=True, type=click.IntRange(0), help="Seeds, e.g. --seeds 0 1 2 or "
              "--seeds 1-99 (default: the config's seed).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="The sweep's folder: <setting>/seed<k>/ runs, summary.csv, summary.md.")
@click.option("--device", type=services.Device(), metavar="DEVICE",
              help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--executor", type=click.Choice(["inline", "local", "slurm"]),
              help="inline: runs one after another here; local: a process per run; slurm: one job array of runs.")
@click.option("--workers", type=click.IntRange(1), help="local: runs at once (one per GPU with GPUs); slurm: the "
              "array's concurrency cap.")
@click.option("--select-metric", default="auc", show_default=True, help="Pooled metric that ranks the settings.")
@click.option("--select-model", help="Model whose metric ranks them (default: the config's stats.reference).")
@click.option("--select-task", help="Task whose metric ranks them, where the runs predict several.")
@click.option("--nested", is_flag=True, help="Also estimate the choose-the-best recipe by nested CV (needs "
              "cv.inner_folds >= 2).")
@click.option("--permutation-of", "permutation_of", type=click.Path(file_okay=False, exists=True), metavar="RUN",
              help="Test RUN against chance: this sweep's runs (--grid cohort.permute_labels=true, one per seed) "
              "are its permutations; writes permutation.csv and .png.")
def sweep_cmd(plugin, config_file, sets, grid, seeds, out, device, executor, workers, select_metric, select_model,
              select_task, nested, permutation_of) -> None:
    """Run every setting of a grid x every seed as a run of its own, then summarize every estimate with its CI.

    The same command again skips the finished runs and continues the others.
    """
    from cardio_cluster.sweep import Selection, run_sweep  # torch and the kernel's runs: only when the command runs

    summary = run_sweep(plugin, tuple(grid), out, config_file, tuple(sets), tuple(seeds), device, executor, workers,
                        Selection(select_metric, select_model, select_task), nested,
                        permutation_of=permutation_of)
    click.echo(str(summary) if summary else f"submitted; run the same command again to write {out}/summary.md")


@services.hookimpl
def cardio_commands() -> list[click.Command]:
    return [sweep_cmd]


@services.hookimpl
def cardio_executors() -> dict[str, Callable[..., bool]]:
    return {"local": _submit, "slurm": _submit}
