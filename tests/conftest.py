"""Shared test set-up: offline Hugging Face libraries, quiet progress bars, small real data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402

datasets.disable_progress_bars()


@pytest.fixture(scope="session")
def fmnist():
    """The real Fashion-MNIST source."""
    from robustbench_bilateral.data import load_source

    return load_source("fmnist")


@pytest.fixture(scope="session")
def smoke_checkpoints(tmp_path_factory):
    """Checkpoints of four variants trained for seconds (``smoke`` preset) on the real mnist5k."""
    from robustbench_bilateral.training import train

    root = tmp_path_factory.mktemp("smoke")
    return {
        variant: train("mnist5k", variant, "smoke", root / variant.replace("+", "-")).checkpoint
        for variant in ("softmax", "bilateral", "softmax+boost", "bilateral+boost")
    }
