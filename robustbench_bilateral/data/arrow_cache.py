"""Arrow copies of built-in datasets: built once from the raw files, then memory-mapped."""

from __future__ import annotations

from collections.abc import Callable

import datasets

from robustbench_bilateral.atomic import atomic_folder
from robustbench_bilateral.paths import cache_dir

CACHE_VERSION = 1


def cached_split(source: str, split: str, build: Callable[[], datasets.Dataset]) -> datasets.Dataset:
    """Return ``<cache>/arrow/<source>-v<CACHE_VERSION>/<split>``, building and saving it if absent.

    The copy is built through ``atomic.atomic_folder``, so an interrupted build leaves no
    half-written cache behind, and processes building the same split at once (the ranks of a
    sharded run) do not collide: the first one in place wins, the others' copies are dropped.
    ``datasets``' own progress bars stay off while it saves (the commands draw their own).
    """
    target = cache_dir() / "arrow" / f"{source}-v{CACHE_VERSION}" / split
    if not target.exists():
        was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            with atomic_folder(target) as partial:
                build().save_to_disk(str(partial))
        finally:
            if was_enabled:
                datasets.enable_progress_bars()
    return datasets.load_from_disk(str(target))
