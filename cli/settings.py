"""Options every command shares, set on the ``bilat-eval`` group and read by each subcommand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import torch
from rich.console import Console



@dataclass
class Settings:
    """Global options: device (resolved from ``--device``), seed, output folder, how much to print."""

    device: torch.device = torch.device("cpu")
    seed: int = 0
    out: Path = Path("results")
    quiet: bool = False
    verbose: bool = False

    @property
    def console(self) -> Console:
        return Console(quiet=self.quiet, highlight=False)


pass_settings = click.make_pass_decorator(Settings, ensure=True)
