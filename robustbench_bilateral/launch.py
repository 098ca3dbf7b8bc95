"""Whether ``torchrun`` started this process, read from the environment alone (no torch import)."""

from __future__ import annotations

import os


def launched() -> bool:
    """Whether this process is one of several started by ``torchrun`` (``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
