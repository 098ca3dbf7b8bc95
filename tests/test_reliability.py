"""A hostile or careless user's inputs: every one is refused with exit code 2, one line, and no change on disk.

Each case runs the real command line (``cli.main.main``, in this process) on a folder that already
holds a finished run, and asserts exit code 2, exactly one stderr line starting with ``error:``
that names the input, no traceback, and every file under the folder byte-identical afterwards.
Signals run ``bilat-eval`` in a subprocess: SIGTERM/SIGINT stop it with one line, exit 143/130,
and the same command resumes to a consistent store.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from report_rows import stored_cell_count
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from robustbench_bilateral.results import ResultStore

BILAT_EVAL = str(Path(sys.executable).parent / "bilat-eval")
NOISE = '[[threats]]\nname = "noise"\nkind = "gaussian"\nstrength = 0.1\n'


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def edit_metadata(source: Path, target: Path, edit) -> Path:
    """A copy of checkpoint ``source`` whose metadata is ``edit(meta)`` (a dict, or text written as it is)."""
    with safe_open(str(source), "pt") as handle:
        meta = json.loads(handle.metadata()["bilat_eval"])
    edited = edit(meta)
    edited = meta if edited is None else edited
    save_file(load_file(str(source)), str(target), metadata={"bilat_eval": edited if isinstance(edited, str) else json.dumps(edited)})
    return target


def corrupt_header(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    target.write_bytes(data[:8] + b"X" + data[9:8 + length] + data[8 + length:])
    return target


def drop_key(key: str):
    return lambda meta: meta.pop(key) and None


def set_path(path: tuple[str, ...], value):
    def edit(meta: dict) -> None:
        table = meta
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
    return edit


def softmax_config_on_bilateral(meta: dict) -> None:
    meta["model"]["attention"] = {**meta["model"]["attention"], "kernel": "softmax", "name": "softmax"}
    meta["variant"] = "softmax"


class PickledCode:
    """An object whose unpickling would call ``print``: a .pt file that runs code."""

    def __reduce__(self):
        return (print, ("ran",))


@pytest.fixture(scope="module")
def inputs(smoke_checkpoints, tmp_path_factory) -> dict[str, str]:
    """Every malformed file, by name, next to the good checkpoints ``softmax`` and ``bilateral``."""
    root = tmp_path_factory.mktemp("inputs")
    softmax, bilateral = Path(smoke_checkpoints["softmax"]), Path(smoke_checkpoints["bilateral"])
    files = {
        "truncated": lambda path: path.write_bytes(softmax.read_bytes()[:1000]),
        "empty": lambda path: path.write_bytes(b""),
        "random": lambda path: path.write_bytes(random.Random(1).randbytes(5000)),
        "corrupt_header": lambda path: corrupt_header(softmax, path),
        "no_task": lambda path: edit_metadata(softmax, path, drop_key("task")),
        "no_model": lambda path: edit_metadata(softmax, path, drop_key("model")),
        "unknown_kernel": lambda path: edit_metadata(softmax, path, set_path(("model", "attention", "kernel"), "nope")),
        "unknown_task": lambda path: edit_metadata(softmax, path, set_path(("task",), "juggling")),
        "not_an_object": lambda path: edit_metadata(softmax, path, lambda meta: "[1, 2]"),
        "not_json": lambda path: edit_metadata(softmax, path, lambda meta: "{not json"),
        "fancy_variant": lambda path: edit_metadata(softmax, path, set_path(("variant",), "fancy")),
        "variant_against_config": lambda path: edit_metadata(bilateral, path, set_path(("variant",), "softmax")),
        "variant_against_weights": lambda path: edit_metadata(bilateral, path, softmax_config_on_bilateral),
        "negative_img_size": lambda path: edit_metadata(softmax, path, set_path(("model", "kwargs", "img_size"), -28)),
        "unknown_model": lambda path: edit_metadata(softmax, path, set_path(("model", "name"), "no_such_model")),
        "bad_depth": lambda path: edit_metadata(softmax, path, set_path(("model", "kwargs", "depth"), "two")),
    }
    paths = {"softmax": str(softmax), "bilateral": str(bilateral)}
    for name, make in files.items():
        path = root / f"{name}.safetensors"
        make(path)
        paths[name] = str(path)
    torch.save(PickledCode(), root / "code.pt")
    (root / "garbage.pt").write_bytes(random.Random(0).randbytes(300))
    paths["code_pt"], paths["garbage_pt"] = str(root / "code.pt"), str(root / "garbage.pt")
    paths["root"] = str(root)
    return paths


@pytest.fixture(scope="module")
def out(inputs, tmp_path_factory) -> Path:
    """An output folder holding one finished run ``main`` (clean accuracy of the softmax checkpoint)."""
    folder = tmp_path_factory.mktemp("out")
    code = subprocess.run([BILAT_EVAL, "--device", "cpu", "--quiet", "--out", str(folder), "evaluate", "--n-examples", "8",
                           inputs["softmax"]], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert code.returncode == 0, code.stderr
    (folder / "text").mkdir()
    (folder / "text" / "results.sqlite").write_text("not a database\n")
    with sqlite3.connect(folder / "foreign.sqlite") as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    (folder / "foreign").mkdir()
    (folder / "foreign.sqlite").rename(folder / "foreign" / "results.sqlite")
    future = folder / "future"
    future.mkdir()
    data = bytearray((folder / "main" / "results.sqlite").read_bytes())
    data[60:64] = struct.pack(">i", 9)
    (future / "results.sqlite").write_bytes(bytes(data))
    (folder / "a_file").write_text("x\n")
    return folder


def spec(folder: Path, name: str, body: str) -> str:
    path = folder / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return str(path)


CHECKPOINT_CASES = {  # case: (input, extra flags, what the line names)
    "truncated": ("truncated", (), "truncated or not a safetensors file"),
    "empty": ("empty", (), "truncated or not a safetensors file"),
    "random": ("random", (), "truncated or not a safetensors file"),
    "corrupt_header": ("corrupt_header", (), "truncated or not a safetensors file"),
    "no_task": ("no_task", (), "metadata field 'task' is missing"),
    "no_model": ("no_model", (), "metadata field 'model' is missing"),
    "unknown_kernel": ("unknown_kernel", (), "metadata field 'model.attention.kernel'"),
    "unknown_task": ("unknown_task", (), "metadata field 'task' must be one of"),
    "not_an_object": ("not_an_object", (), "metadata field 'bilat_eval' must be a JSON object"),
    "not_json": ("not_json", (), "metadata is not JSON"),
    "fancy_variant": ("fancy_variant", (), "metadata field 'variant' is not a variant"),
    "variant_against_config": ("variant_against_config", (), "metadata field 'variant' is 'softmax' but model.attention"),
    "variant_against_weights": ("variant_against_weights", (), "the weights holds bilateral bandwidth tensors"),
    "negative_img_size": ("negative_img_size", (), "metadata field 'model.kwargs.img_size' must be a positive integer"),
    "unknown_model": ("unknown_model", (), "metadata field 'model.name' names no registered model"),
    "bad_depth": ("bad_depth", (), "metadata field 'model.kwargs.depth' must be a positive integer"),
    "pt_without_model": ("garbage_pt", (), "is a plain state dict: add --model NAME"),
    "pt_garbage": ("garbage_pt", ("--model", "bilat_vit_tiny_28"), "refused to load"),
    "pt_running_code": ("code_pt", ("--model", "bilat_vit_tiny_28"), "loading them would run code"),
    "weights_of_another_model": ("softmax", ("--model", "bilat_deit_tiny_224"), "does not fit model bilat_deit_tiny_224"),
    "truncated_as_weights": ("truncated", ("--model", "bilat_vit_tiny_28"), "truncated or not a safetensors file"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_a_malformed_checkpoint_is_refused_with_one_line(run_bilat, inputs, out, case):
    name, flags, message = CHECKPOINT_CASES[case]
    assert_refused(run_bilat, out, message, "--out", str(out), "evaluate", "--n-examples", "8", *flags, inputs[name])


FLAG_CASES = {  # case: (arguments after the checkpoint's command, message); {ckpt} is the softmax checkpoint
    "eps_above_one": (("attack", "--fgsm", "--eps", "2", "{ckpt}"), "--eps: must be at most 1 in pixel space"),
    "eps_not_a_number": (("attack", "--fgsm", "--eps", "lots", "{ckpt}"), "bad eps 'lots'"),
    "eps_divided_by_zero": (("attack", "--fgsm", "--eps", "1/0", "{ckpt}"), "bad eps '1/0'"),
    "batch_size_zero": (("evaluate", "--batch-size", "0", "{ckpt}"), "--batch-size: must be a whole number >= 1"),
    "n_examples_negative": (("evaluate", "--n-examples", "-3", "{ckpt}"), "--n-examples: must be a whole number >= 0"),
    "n_examples_text": (("evaluate", "--n-examples", "many", "{ckpt}"), "--n-examples"),
    "severity_out_of_range": (("contaminate", "--corruptions", "fog", "--severities", "9", "{ckpt}"), "9"),
    "unknown_corruption": (("contaminate", "--corruptions", "nope", "--severities", "1", "{ckpt}"), "nope"),
    "unknown_option": (("evaluate", "--frobnicate", "{ckpt}"), "No such option"),
    "unknown_command": (("frobnicate",), "No such command"),
    "run_escaping": (("evaluate", "--run", "../escape", "{ckpt}"), "--run: '../escape' is not a plain folder name"),
    "run_with_slash": (("evaluate", "--run", "a/b", "{ckpt}"), "--run: 'a/b' is not a plain folder name"),
    "missing_checkpoint": (("evaluate", "nowhere.safetensors"), "checkpoint nowhere.safetensors does not exist"),
    "uncached_hf_dataset": (("evaluate", "--dataset", "hf:no-such-user/no-such-dataset", "{ckpt}"), "could not be loaded"),
    "missing_npy_folder": (("evaluate", "--dataset", "npy:/no/such/folder", "{ckpt}"), "npy:/no/such/folder"),
    "unknown_dataset": (("evaluate", "--dataset", "cifar99", "{ckpt}"), "unknown dataset 'cifar99'"),
    "unknown_model_flag": (("evaluate", "--model", "no_such_model", "{ckpt}"), "--model"),
    "unknown_variant_flag": (("evaluate", "--variant", "fancy", "{ckpt}"), "--variant"),
    "variant_for_own_checkpoint": (("evaluate", "--variant", "bilateral", "{ckpt}"), "--variant"),
    "missing_plugin": (("--plugin", "no_such_plugin_module", "list", "variants"), "--plugin no_such_plugin_module"),
}


@pytest.mark.parametrize("case", FLAG_CASES)
def test_a_bad_flag_is_refused_with_one_line(run_bilat, inputs, out, case):
    args, message = FLAG_CASES[case]
    assert_refused(run_bilat, out, message, "--out", str(out), *(arg.format(ckpt=inputs["softmax"]) for arg in args))


def test_an_out_folder_that_is_a_file_is_refused(run_bilat, inputs, out):
    assert_refused(run_bilat, out, "'--out'", "--out", str(out / "a_file"), "evaluate", inputs["softmax"])


SPEC_CASES = {  # case: (spec text, {ckpt} the softmax checkpoint, message)
    "checkpoints_a_string": ('run = "s"\ncheckpoints = "{ckpt}"\n' + NOISE, "checkpoints: must be a list of strings"),
    "strength_of_mixed_types": ('run = "s"\ncheckpoints = ["{ckpt}"]\n[[threats]]\nname = "noise"\nkind = "gaussian"\n'
                                'strength = [0.1, "lots", [0.2]]\n', "threats[0].strength[1]: bad number 'lots'"),
    "unknown_key": ('run = "s"\nrunn = "t"\ncheckpoints = ["{ckpt}"]\n' + NOISE, "runn: unknown key"),
    "no_checkpoints": ('run = "s"\n' + NOISE, "checkpoints: missing"),
    "no_threats": ('run = "s"\ncheckpoints = ["{ckpt}"]\n', "threats: missing"),
    "batch_size_text": ('run = "s"\nbatch_size = "big"\ncheckpoints = ["{ckpt}"]\n' + NOISE, "batch_size"),
    "run_a_number": ('run = 5\ncheckpoints = ["{ckpt}"]\n' + NOISE, "run: must be a non-empty string"),
    "run_escaping": ('run = "../escape"\ncheckpoints = ["{ckpt}"]\n' + NOISE, "run: '../escape' is not a plain folder name"),
    "seed_a_fraction": ('run = "s"\nseed = 1.5\ncheckpoints = ["{ckpt}"]\n' + NOISE, "seed"),
    "not_toml": ('run = "s\ncheckpoints = [\n', "is not valid TOML"),
    "threat_without_name": ('run = "s"\ncheckpoints = ["{ckpt}"]\n[[threats]]\nkind = "gaussian"\n', "threats[0]: missing 'name'"),
    "unknown_threat": ('run = "s"\ncheckpoints = ["{ckpt}"]\n[[threats]]\nname = "pgdd"\n', "threats[0].name: unknown threat 'pgdd'"),
    "eps_above_one": ('run = "s"\ncheckpoints = ["{ckpt}"]\n[[threats]]\nname = "fgsm"\neps = 2\n',
                      "threats[0].eps: must be at most 1 in pixel space"),
    "glob_matching_nothing": ('run = "s"\ncheckpoints = ["nothing/*.safetensors"]\n' + NOISE, "checkpoints[0]: no file matches"),
    "malformed_checkpoint": ('run = "s"\ncheckpoints = ["{bad}"]\n' + NOISE, "checkpoints[0]: checkpoint"),
}


@pytest.mark.parametrize("case", SPEC_CASES)
def test_a_bad_spec_is_refused_with_one_line(run_bilat, inputs, out, tmp_path, case):
    body, message = SPEC_CASES[case]
    path = spec(tmp_path, case, body.format(ckpt=inputs["softmax"], bad=inputs["no_task"]))
    assert_refused(run_bilat, out, message, "--out", str(out), "batch", path)


def test_a_missing_spec_is_refused(run_bilat, out, tmp_path):
    assert_refused(run_bilat, out, "does not exist", "--out", str(out), "batch", str(tmp_path / "nowhere.toml"))


STORE_CASES = {  # case: (run folder under out, message)
    "text_file": ("text", "is not a SQLite database"),
    "foreign_database": ("foreign", "is a SQLite database of another application"),
    "future_schema": ("future", "has results schema 9"),
}


@pytest.mark.parametrize("case", STORE_CASES)
@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_a_file_that_is_not_our_store_is_refused_and_untouched(run_bilat, inputs, out, case, command):
    run, message = STORE_CASES[case]
    args = ("report", str(out / run)) if command == "report" else ("evaluate", "--n-examples", "8", "--run", run, inputs["softmax"])
    assert_refused(run_bilat, out, message, "--out", str(out), *args)


def test_a_report_of_a_folder_without_results_is_refused(run_bilat, out):
    assert_refused(run_bilat, out, "no results in", "--out", str(out), "report", str(out / "nothing"))


def assert_refused(run_bilat, out: Path, message: str, *args: str) -> None:
    """Exit code 2, one stderr line ``error: ...`` holding ``message``, no traceback, ``out`` unchanged."""
    before = tree_digest(out)
    code, _, stderr = run_bilat(*args)
    assert code == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert message in stderr
    assert tree_digest(out) == before


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), pytest.param("SIGINT", 130, marks=pytest.mark.slow)])
def test_a_signal_stops_with_one_line_and_the_same_command_resumes(smoke_checkpoints, tmp_path, name, code):
    args = [BILAT_EVAL, "--device", "cpu", "--quiet", "--out", str(tmp_path), "contaminate", "--corruptions",
            "fog,contrast,brightness", "--severities", "1,2", "--n-examples", "32",
            str(smoke_checkpoints["softmax"])]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    store = tmp_path / "main" / "results.sqlite"
    while process.poll() is None and stored_cell_count(store) < 1:
        time.sleep(0.05)
    process.send_signal(getattr(signal, name))
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the command finished before the signal arrived")
    assert process.returncode == code
    assert stderr.count("\n") == 1 and stderr.startswith(f"error: interrupted ({name}): ") and "Traceback" not in stderr
    assert f"cells stored in {store}; run the same command again to resume" in stderr
    with ResultStore(store) as opened:
        assert opened.problems() == []
    resumed = subprocess.run(args, capture_output=True, text=True, env=environment)
    assert resumed.returncode == 0, resumed.stderr
    with ResultStore(store) as opened:
        assert opened.problems() == [] and len(opened.rows()) == 1 + 2 * 3 * 2
