"""Options every command shares, set on the ``bilat-eval`` group and read by each subcommand.

The device is resolved (and a ``torchrun`` process joins its process group) on first use, or at
once when ``--device`` names one or ``torchrun`` started the process; commands that run no model,
such as ``list`` and ``--help``, import no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import torch
    from rich.console import Console


@dataclass
class Settings:
    """Global options: ``--device`` name, seed, output folder, how much to print, whether models are compiled."""

    device_name: str = "auto"
    seed: int = 0
    out: Path = Path("results")
    quiet: bool = False
    verbose: bool = False
    compile_models: bool = False

    @cached_property
    def device(self) -> torch.device:
        """The device of ``--device``; under ``torchrun`` this rank's device, after joining the process group."""
        from robustbench_bilateral.device import resolve_device
        from robustbench_bilateral.engine.distributed import start_from_env

        return start_from_env(resolve_device(self.device_name))

    def start(self) -> torch.device:
        """Resolve the device now rather than on first use (joining the process group under ``torchrun``)."""
        return self.device

    @property
    def main_rank(self) -> bool:
        """Whether this process prints: always, unless it joined a process group as a rank other than 0."""
        if "device" not in vars(self):
            return True
        from robustbench_bilateral.engine.distributed import is_main

        return is_main()

    @property
    def console(self) -> Console:
        from rich.console import Console

        return Console(quiet=self.quiet or not self.main_rank, highlight=False)

    def close(self) -> None:
        """Leave the process group, if the device was resolved and joined one."""
        if "device" in vars(self):
            from robustbench_bilateral.engine.distributed import finish

            finish()


pass_settings = click.make_pass_decorator(Settings, ensure=True)
