"""Atomic writes: a reader sees the old file or folder or the new one, never a half-written one.

Both helpers build the new content under a temporary name beside the target,
``.<target name>.<process id>-<8 random hex digits>.tmp``, so concurrent processes (the ranks of
a sharded run) never share one; they flush it to disk with ``fsync`` and rename it into place,
then ``fsync`` the parent folder so the rename itself survives a crash. On an exception the
temporary file or folder is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(target: Path) -> Path:
    """A fresh name beside ``target`` that belongs to this process: ``.<name>.<pid>-<random>.tmp``."""
    return target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's content (for a folder: its entries) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    """Remove a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write the new file to; on leaving the block without
    an exception it is flushed to disk and renamed over ``path`` (replacing any old file).

    The writer creates the file (``open``, ``sqlite3.connect``, ``save_file``, ...), so it gets
    the permissions of any newly created file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        fsync_path(temporary)
        os.replace(temporary, path)
    finally:
        _remove(temporary)
    fsync_path(path.parent)


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (``str`` as UTF-8) to ``path`` through ``atomic_file``; returns ``path``."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` to build the new folder in; on leaving the block
    without an exception every file in it is flushed to disk and it is renamed to ``path``.

    A folder is not replaced: if ``path`` exists by then (another process built it first), that
    one is kept and this one removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    temporary.mkdir()
    try:
        yield temporary
        for folder, _, files in os.walk(temporary):
            for name in files:
                fsync_path(Path(folder) / name)
            fsync_path(Path(folder))
        if not path.exists():
            try:
                os.rename(temporary, path)
            except OSError:
                if not path.exists():
                    raise
    finally:
        _remove(temporary)
    fsync_path(path.parent)
