"""Training reproduces bit for bit: the same settings and thread count give identical checkpoint bytes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import torch

from robustbench_bilateral.checkpoint import read_metadata
from robustbench_bilateral.training import train
from robustbench_bilateral.training.environment import reproducible


def train_in_process(out: Path, omp_threads: int, *extra: str) -> Path:
    """``bilat-eval train`` (smoke ViT on mnist5k) in a fresh process whose OpenMP default is ``omp_threads``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(omp_threads)}
    args = ["--quiet", "--out", str(out), "train", "--task", "mnist5k", "--variant", "bilateral+boost",
            "--preset", "smoke", *extra]
    done = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return out / "checkpoints" / "mnist5k" / "smoke" / "bilateral-boost-seed0" / "model.safetensors"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_trainings_with_one_thread_count_give_identical_checkpoint_bytes(tmp_path):
    first = train_in_process(tmp_path / "a", 2, "--threads", "1")
    second = train_in_process(tmp_path / "b", 1, "--threads", "1")
    assert digest(first) == digest(second)
    environment = read_metadata(first)["environment"]
    assert environment["threads"] == 1
    assert environment["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert {"cpu", "machine", "device"} <= set(environment)


def test_the_thread_count_is_recorded_in_the_checkpoint(tmp_path):
    one = train("mnist5k", "softmax", "smoke", tmp_path / "one", threads=1).checkpoint
    two = train("mnist5k", "softmax", "smoke", tmp_path / "two", threads=2).checkpoint
    assert [read_metadata(path)["environment"]["threads"] for path in (one, two)] == [1, 2]
    assert read_metadata(one)["recipe"] == read_metadata(two)["recipe"]


def test_reproducible_restores_torch_settings():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with reproducible(1) as used:
        assert used == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)
