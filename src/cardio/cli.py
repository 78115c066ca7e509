"""The `cardio` command line."""
from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import click

import cardio  # first of cardio's imports: it sets OpenMP's passive wait policy before torch loads
from cardio import config as config_mod
from cardio import plugins, services
from cardio.data import CardioError
from cardio.study import signing


def run_body(name: str, *args: object) -> None:
    """Run the body of a command, `module.function` of cardio.commands, imported only now: the heavy parts of cardio
    (torch, pandas, SciPy, matplotlib) load for the commands that need them, never for `cardio --help`."""
    cardio.freeze_at_exit()  # the heavy imports below make the interpreter's own teardown take seconds
    module, _, function = name.rpartition(".")
    body: Callable[..., None] = getattr(importlib.import_module(f"cardio.commands.{module}"), function)
    body(*args)


class CardioGroup(click.Group):
    """Turns CardioError into one line on stderr and exit code 2, with no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CardioError as e:  # one line, even when a library's message spans several
            click.echo("cardio: error: " + " ".join(str(e).split()), err=True)
            sys.exit(2)
        except OSError as e:  # a full disk or a folder cardio may not write: what and where, not a traceback
            if e.errno not in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT):
                raise
            click.echo(f"cardio: error: {e.strerror}: {e.filename or 'a file of the run'}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C: the run's folder already says interrupted
            click.echo("cardio: interrupted (SIGINT)", err=True)
            sys.exit(130)
        except BaseException as e:  # SIGTERM during a run (cardio.study.tasks.Cancelled): the same, with its exit code
            tasks = sys.modules.get("cardio.study.tasks")
            if tasks is None or not isinstance(e, tasks.Cancelled):
                raise
            click.echo(f"cardio: interrupted ({e})", err=True)
            sys.exit(143)


class RunCommand(click.Command):
    """`cardio run --help` ends with the installed plugins, their profiles and an example."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        try:
            loaded = plugins.get_plugin_manager()
            rows = []
            for r in plugins.listing(loaded):
                if r["error"] or not r["modality"]:
                    continue
                profiles = sorted((plugins.info(loaded.pm, r["name"]).default_config.get("profiles") or {}))
                rows.append((r["name"], f"profiles: {', '.join(profiles)}" if profiles else "no profiles"))
        except Exception as e:  # help must print whatever a plugin does
            rows = [("(plugins could not be listed)", str(e).splitlines()[0] if str(e) else type(e).__name__)]
        with formatter.section("Installed plugins"):
            formatter.write_dl(rows or [("(none)", cardio.pip_install("-e plugins/<name>"))])
        with formatter.section("Examples"):
            formatter.write_text("cardio run --plugin ecg_transfer")
            formatter.write_text("cardio run --plugin echo_cmr --set profile=paper --set cohort.dir=my_cohort/")
            formatter.write_text("cardio run --resume runs/ecg_transfer-20260101-120000")


@click.group(cls=CardioGroup)
@click.version_option(cardio.__version__, prog_name="cardio")
def main() -> None:
    """cardio: deep learning on cardiac data, one plugin per published method."""


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins: name, version, modality, hooks; broken ones with their error."""
    run_body("listing.list_plugins", as_json)



@main.command("config")
@click.option("--plugin", "plugin", required=True, help="Plugin whose default config to print.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML merged over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one key, e.g. profile=paper; repeat --set for each key.")
def config_cmd(plugin: str, config_file: str | None, sets: tuple[str, ...]) -> None:
    """Print the default config of a plugin (core keys included) as YAML, with the comments that document it;
    with --config or --set, the config a run given them would use (profile applied, checked, no comments)."""
    loaded = plugins.get_plugin_manager()
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    if not (config_file or sets):
        click.echo(config_mod.commented_defaults(plugin, info.default_config), nl=False)
        return
    cfg = config_mod.resolve(info.default_config, config_file, sets, info.moved_keys)
    given = " ".join([*([f"--config {config_file}"] if config_file else []), *(f"--set {s}" for s in sets)])
    click.echo(f"# plugin {plugin}, {given}: the config a run with these options uses\n"
               f"# (cardio config --plugin {plugin} prints the defaults with their comments)\n"
               + config_mod.dump(cfg), nl=False)


@main.command("run", cls=RunCommand)
@click.option("--plugin", help="Modality plugin to run (a resumed run knows its own).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML merged over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one key, e.g. train.lr=3e-4 or profile=paper; repeat --set for each key.")
@click.option("--device", type=services.Device(), metavar="DEVICE",
              help="Where to train: auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default runs/<plugin>-<time>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), help="Continue a killed or failed run.")
@click.option("--seed", type=int, help="Seed of everything random in the run.")
@click.option("--executor", type=click.Choice(["inline", "local", "slurm"]),
              help="Where the fits run: inline (this process, the default), local (--workers fits at once: this "
                   "process and worker processes; a worker per GPU where there are GPUs), slurm (job arrays; "
                   "executor.slurm.* keys). Same results on each.")
@click.option("--workers", type=click.IntRange(1), help="local: fits at once; slurm: the array's concurrency cap.")
def run_cmd(plugin, config_file, sets, device, out, resume, seed, executor, workers) -> None:
    """Run a study: load, preprocess, featurize, cross-validated train/predict, explain, evaluate.

    A run is a list of tasks (prepare, one fit per fold, the final model, evaluate), each finished one marked
    done in <run>/tasks/; the same command again, or --resume RUN, runs only the tasks not yet done.
    """
    run_body("run.run", plugin, config_file, sets, device, out, resume, seed, executor, workers)



@main.command("status")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def status_cmd(run_dir: str) -> None:
    """List a run's tasks: done, running, failed with the error, or missing (run the command again for those)."""
    run_body("run.status", run_dir)



@main.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False), help="The private key file (default: "
              "~/.config/cardio/signing_key, which cardio run then signs with); the public key goes to <out>.pub.")
def keygen_cmd(out: str | None) -> None:
    """Make an ed25519 key pair to sign your model bundles; give the .pub file to those who use them."""
    private, public, fp = signing.keygen(Path(out) if out else signing.config_dir() / "signing_key")
    default = signing.config_dir() / "signing_key"
    use = ("cardio run and cardio sign now sign with it" if private.resolve() == default.resolve()
           else f"sign with it: export CARDIO_SIGNING_KEY={private}")
    click.echo(f"private key {private} (mode 0600; keep it to yourself)\npublic key  {public} ({fp})\n{use}; "
               f"users of your bundles add {public.name}'s line to their {signing.trusted_keys_file()} or pass "
               f"--trusted-key {public.name} to cardio predict")


@main.command("sign")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def sign_cmd(run_dir: str) -> None:
    """Sign a run's model bundle with your key (CARDIO_SIGNING_KEY or ~/.config/cardio/signing_key), after
    checking that its files match its manifest; a signature already there is replaced."""
    run_body("bundles.sign", run_dir)



@main.command("validate")
@click.option("--plugin", required=True, help="Modality plugin whose cohort to check.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML merged over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one key, e.g. cohort.dir=cohort/.")
@click.option("--write-synthetic", is_flag=True, help="With no cohort.dir: write the plugin's synthetic cohort into "
              "the cache when it is not there (as cardio run would), then check it.")
def validate_cmd(plugin, config_file, sets, write_synthetic) -> None:
    """Load the cohort as a run does, reading every record file whole, and list every problem of the table, its
    records and the study at once (file, line, column, what to do); trains nothing, writes nothing."""
    run_body("cohorts.validate", plugin, config_file, sets, write_synthetic)



@main.command("new-cohort")
@click.option("--plugin", required=True, help="Modality plugin whose cohort to lay out.")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML merged over the defaults.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Settings that change the table, e.g. label.")
def new_cohort_cmd(plugin: str, dest: str, config_file, sets) -> None:
    """Write a cohort folder to fill in: the plugin's table (header only) and a README of its columns."""
    run_body("cohorts.new_cohort", plugin, dest, config_file, sets)


# the commands the installed services add (`cardio report` is the report service's, `cardio fuse` and `cardio
# synthetic-crt` the fusion service's, `cardio data` the public-data service's, `cardio new-plugin` the testing
# service's): one `cardio` command
for _command in services.commands():
    main.add_command(_command)

if __name__ == "__main__":
    main()
