"""The ``bilat-eval`` group, its global options and the one error style of every command.

Errors print one line to stderr: exit code 2 for bad input (usage), 1 for a failed run; a
traceback only with ``--verbose``. SIGTERM and SIGINT stop a command with one line saying what
is stored and how to resume, exit code 143 / 130 (under ``torchrun`` a rank's SIGTERM keeps its
own handler, ``engine.distributed``).

Commands load lazily: the group knows each command's module and one-line help (``COMMANDS``) and
imports a module only when its command runs, so ``--help``, ``--version`` and ``list`` start
without torch. Started by ``torchrun``, each process joins the run's process group when the group
callback resolves the device; ranks other than 0 print nothing but their own failures (bad input
is reported by rank 0 alone, since every rank reads the same input).
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import click

from cli.settings import Settings
from robustbench_bilateral.device import DEVICE_CHOICES
from robustbench_bilateral.errors import BilatError, InputError, Interrupted
from robustbench_bilateral.launch import launched


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``"module:attribute"``) and the first sentence of its help."""

    target: str
    help: str

    def load(self) -> click.Command:
        module, _, name = self.target.partition(":")
        return getattr(import_module(module), name)


COMMANDS: dict[str, LazyCommand] = {
    "attack": LazyCommand("cli.attack_cmd:attack_command",
                          "Robust accuracy of each CHECKPOINT under the chosen attacks: one table per attack, variants by eps."),
    "batch": LazyCommand("cli.batch_cmd:batch_command",
                         "Check SPEC, train its study's checkpoints, run its cells not yet stored, write the report and "
                         "print its grids."),
    "contaminate": LazyCommand("cli.contaminate_cmd:contaminate_command",
                               "Accuracy of each CHECKPOINT under common corruptions (and noise), with mCE against a baseline."),
    "evaluate": LazyCommand("cli.evaluate_cmd:evaluate_command",
                            "Clean accuracy or perplexity of each CHECKPOINT, stored in the run and exported to CSV."),
    "list": LazyCommand("cli.list_cmd:list_command",
                        "Show the registered variants, models, datasets, attacks or corruptions."),
    "report": LazyCommand("cli.report_cmd:report_command",
                          "Report the runs in RUN_DIR... [default: <out>/main] from their stored rows alone."),
    "train": LazyCommand("cli.train_cmd:train_command",
                         "Train a checkpoint of VARIANT on TASK; resumes from the last finished epoch."),
    "verify": LazyCommand("cli.verify_cmd:verify_command",
                          "Check every cell of RUN_DIR... [default: <out>/main] against its digests and outcomes; list each inconsistent one."),
    "wordswap": LazyCommand("cli.wordswap_cmd:wordswap_command",
                            "Perplexity of each language CHECKPOINT with words of the evaluation split swapped, one column per rate."),
}


def load_plugin(name: str) -> None:
    """Import ``name``: a ``.py`` file by its path, anything else as a module (the current folder is searched too).

    What the module registers at import (``register_kernel``, ``register_threat``, ``CORRUPTIONS.register``)
    is then available to every command; a module that cannot be imported is an ``InputError``.
    """
    try:
        if name.endswith(".py"):
            path = Path(name)
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no file {name}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            import_module(name)
    except BilatError:
        raise
    except Exception as error:
        raise InputError(f"--plugin {name} cannot be imported ({type(error).__name__}: {error}): "
                         "pass an importable module name or the path of a .py file") from error


class LazyGroup(click.Group):
    """A group whose commands are imported when they run, and that reports a ``BilatError`` as one
    line on stderr, exiting with its code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return COMMANDS[cmd_name].load() if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command table of ``--help`` from ``COMMANDS``, without importing any command."""
        width = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, click.Command(name, help=COMMANDS[name].help).get_short_help_str(width))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BilatError as error:
            if getattr(ctx.obj, "verbose", False):
                raise
            if getattr(ctx.obj, "main_rank", True) or not isinstance(error, InputError):
                click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="robustbench-bilateral", prog_name="bilat-eval")
@click.option("--device", "device_name", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
              help="Where models run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True,
              help="Folder for runs, results and checkpoints.")
@click.option("--quiet", is_flag=True, help="Print only errors.")
@click.option("--verbose", is_flag=True, help="Print more, and the traceback of an error.")
@click.option("--compile", "compile_models", is_flag=True,
              help="Run models through torch.compile (needs a C compiler on the CPU); its batches then run one after the "
                   "other. Off by default: on 2 CPU cores the compile adds ~17 s and gains nothing (bench/compile.py).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE|FILE.py", envvar="BILAT_EVAL_PLUGINS",
              help="Import this module or file first, so the kernels, threats and corruptions it registers can be used; "
                   "repeatable [env: BILAT_EVAL_PLUGINS, space-separated].")
@click.pass_context
def cli(ctx: click.Context, device_name: str, seed: int, out: Path, quiet: bool, verbose: bool, compile_models: bool,
        plugins: tuple[str, ...]) -> None:
    """bilat-eval: how robust are bilateral and boosted attention variants of transformers?"""
    for plugin in plugins:
        load_plugin(plugin)
    settings = Settings(device_name=device_name, seed=seed, out=out, quiet=quiet, verbose=verbose,
                        compile_models=compile_models)
    ctx.obj = settings
    ctx.call_on_close(settings.close)
    if device_name != "auto" or launched():
        settings.start()  # an asked-for device must exist; torchrun ranks join their group before any work


def _interrupt(signal_number: int, frame: object) -> None:
    """Signal handler: stop the command by raising ``Interrupted``."""
    raise Interrupted(signal.Signals(signal_number).name, signal_number)


def interrupted_message(interrupt: Interrupted) -> str:
    """``interrupted (SIGTERM): 12 cells stored in results/main/results.sqlite; run the same command again to resume``."""
    store = sys.modules.get("robustbench_bilateral.results.store")
    counts = store.stored_cell_counts() if store is not None else {}
    stored = "; ".join(f"{count} cells stored in {path}" for path, count in counts.items()) or "no results store opened yet"
    return f"interrupted ({interrupt.signal_name}): {stored}; run the same command again to resume"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and turn every failure into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args
    if not launched():
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, _interrupt)
    try:
        code = cli.main(args=args, prog_name="bilat-eval", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except Interrupted as interrupt:
        click.echo(f"error: {interrupted_message(interrupt)}", err=True)
        sys.exit(interrupt.exit_code)
    except click.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        click.echo(f"error: {error.format_message().rstrip('.')}{hint}", err=True)
        sys.exit(2)
    except Exception as error:
        if verbose:
            raise
        click.echo(f"error: unexpected {type(error).__name__}: {error} (run with --verbose for the traceback)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
