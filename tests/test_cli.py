"""The real ``bilat-eval`` command line: help, version, list tables and the one error style."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import cli


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m cli ARGS`` in a subprocess, as a user's shell would."""
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120)


def test_help_and_version():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("list", "train", "evaluate"):
        assert command in result.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "bilat-eval, version 0.1.0"


@pytest.mark.parametrize("what, expected", [
    ("variants", ["softmax", "bilateral", "softmax+boost", "bilateral+boost", "twicing"]),
    ("datasets", ["fmnist", "shakespeare", "mnist5k", "digits", "imagefolder:PATH", "npy:PATH", "hf:NAME"]),
    ("models", ["bilat_vit_tiny_28", "bilat_vit_tiny_32", "bilat_deit_tiny_224", "bilat_deit_small_224", "bilat_lm"]),
    ("attacks", ["fgsm", "pgd", "pgdl2", "spsa", "autoattack-torchattacks", "square"]),
    ("corruptions", ["gaussian_noise", "jpeg_compression", "saturate", "RGB only", "salt_pepper"]),
])
def test_list_prints_a_table_of_each_registry(what, expected):
    result = CliRunner().invoke(cli, ["list", what], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in expected:
        assert name in result.output


@pytest.mark.parametrize("args, code, message", [
    (["list", "nothing"], 2, "error: Invalid value for"),
    (["no-such-command"], 2, "error: No such command 'no-such-command'"),
    (["--device", "cuda", "list", "variants"], 2, "error: device 'cuda' is not available on this machine"),
    (["train", "--task", "cifar99", "--variant", "softmax"], 2, "error: unknown dataset 'cifar99'"),
    (["evaluate", "--batch-size", "0", "nowhere.safetensors"], 2, "error: --batch-size: must be a whole number >= 1, got 0"),
    (["evaluate", "--n-examples", "-3", "nowhere.safetensors"], 2, "error: --n-examples: must be a whole number >= 0"),
    (["evaluate", "--run", "a/b", "nowhere.safetensors"], 2, "error: --run: 'a/b' is not a plain folder name"),
    (["evaluate", "nowhere.safetensors"], 2, "error: CHECKPOINT 1: checkpoint nowhere.safetensors does not exist"),
])
def test_errors_are_one_line_with_exit_code_and_no_traceback(args, code, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli(*args)
    assert result.returncode == code
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_help_and_list_variants_import_no_torch():
    probe = ("import sys, runpy; sys.argv = ['bilat-eval'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('heavy:', sorted(m for m in ('torch', 'timm', 'pandas', 'datasets') if m in sys.modules))")
    for args in (["--help"], ["--version"], ["list", "variants"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("heavy: []"), (args, result.stdout[-200:])


def test_the_lazy_command_table_matches_each_command():
    from cli.main import COMMANDS

    for name, lazy in COMMANDS.items():
        command = lazy.load()
        assert command.name == name
        assert (command.help or "").split("\n\n")[0].replace("\n", " ").startswith(lazy.help), name


def test_train_takes_a_variant_checked_when_it_runs():
    result = run_cli("train", "--task", "mnist5k", "--variant", "softmax+bost", "--preset", "smoke")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --variant: unknown variant 'softmax+bost': choose one of softmax, bilateral")
    assert result.stderr.count("\n") == 1


def test_list_models_shows_kwargs_presets_and_preprocessing():
    result = CliRunner().invoke(cli, ["list", "models"], terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "img_size=28,patch_size=4,in_chans=1,num_classes=10" in result.output
    quick = [line for line in result.output.splitlines() if [cell.strip() for cell in line.split("│")[1:3]] == ["quick", "fmnist"]]
    assert len(quick) == 1 and "│ patch_size=7,embed_dim=64,depth=2 " in quick[0], quick
    assert "mean (0.286,) std (0.353,), 28 px, crop_pct 0.875, bilinear" in quick[0]
