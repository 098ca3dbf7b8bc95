"""The ``bilat-eval`` group, its global options and the one error style of every command.

Errors print one line to stderr: exit code 2 for bad input (usage), 1 for a failed run; a
traceback only with ``--verbose``.

Started by ``torchrun``, each process joins the run's process group here and takes its rank's
device; ranks other than 0 print nothing but their own failures (bad input is reported by rank 0
alone, since every rank reads the same input).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import click

from cli.attack_cmd import attack_command
from cli.contaminate_cmd import contaminate_command
from cli.batch_cmd import batch_command
from cli.evaluate_cmd import evaluate_command
from cli.list_cmd import list_command
from cli.report_cmd import report_command
from cli.train_cmd import train_command
from cli.wordswap_cmd import wordswap_command
from cli.settings import Settings
from robustbench_bilateral.device import DEVICE_CHOICES, resolve_device
from robustbench_bilateral.engine.distributed import finish, is_main, start_from_env
from robustbench_bilateral.errors import BilatError, InputError


class OneLineErrors(click.Group):
    """A group that reports a ``BilatError`` as one line on stderr and exits with its code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BilatError as error:
            if getattr(ctx.obj, "verbose", False):
                raise
            if is_main() or not isinstance(error, InputError):
                click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(metadata.version("robustbench-bilateral"), prog_name="bilat-eval")
@click.option("--device", "device_name", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
              help="Where models run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True,
              help="Folder for runs, results and checkpoints.")
@click.option("--quiet", is_flag=True, help="Print only errors.")
@click.option("--verbose", is_flag=True, help="Print more, and the traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, device_name: str, seed: int, out: Path, quiet: bool, verbose: bool) -> None:
    """bilat-eval: how robust are bilateral and boosted attention variants of transformers?"""
    device = start_from_env(resolve_device(device_name))
    ctx.call_on_close(finish)
    ctx.obj = Settings(device=device, seed=seed, out=out, quiet=quiet or not is_main(), verbose=verbose)


cli.add_command(list_command)
cli.add_command(train_command)
cli.add_command(evaluate_command)
cli.add_command(attack_command)
cli.add_command(batch_command)
cli.add_command(report_command)
cli.add_command(contaminate_command)
cli.add_command(wordswap_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and turn every failure into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args
    try:
        code = cli.main(args=args, prog_name="bilat-eval", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
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
