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


@pytest.fixture(scope="session")
def language_checkpoints(tmp_path_factory):
    """Softmax (sinusoidal positions) and bilateral language models trained for seconds (``smoke`` preset,
    context 32) on the real Shakespeare."""
    from robustbench_bilateral.training import train

    root = tmp_path_factory.mktemp("lm")
    return {variant: train("shakespeare", variant, "smoke", root / variant).checkpoint for variant in ("softmax", "bilateral")}


@pytest.fixture
def run_bilat(capsys):
    """``run_bilat(*args) -> (exit code, stdout, stderr)`` of ``bilat-eval ARGS`` in this process
    (``cli.main.main``), its signal handlers put back afterwards."""
    import signal

    from cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
