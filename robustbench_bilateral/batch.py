"""Batch specs: a TOML file naming checkpoints and threats, expanded into the grid of cells.

A spec::

    run = "demo"                 # results go to <out>/<run>/results.sqlite
    n_examples = 500             # optional, 0 = whole split (default 0)
    batch_size = 256             # optional
    seed = 0                     # optional: overrides --seed
    dataset = "fmnist"           # optional: default is each checkpoint's own dataset
    split = "test"               # optional
    checkpoints = ["results/checkpoints/fmnist/*/model.safetensors"]   # paths or globs, relative to the spec

    [[threats]]
    name = "pgd"
    eps = ["1/255", "4/255"]     # a list expands: one threat per value (the product over all lists)
    steps = 20

    [[threats]]
    name = "corruption"
    corruption = ["gaussian_noise", "fog"]
    severity = [1, 3, 5]

    [[threats]]
    name = "spsa"
    eps = "4/255"
    n_examples = 100             # optional: this table's own n (a costly attack on fewer examples)

Every key is checked before any cell runs; an error names the key (``threats[1].eps``) and the fix.
Numbers may be written as fractions, ``"4/255"``.
"""

from __future__ import annotations

import glob
import itertools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustbench_bilateral.engine import THREATS, Cell, Threat, build_threat
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.evaluation import DEFAULT_SPLIT, describe_checkpoint, plan_cells

TOP_LEVEL_KEYS = {"run", "n_examples", "batch_size", "seed", "dataset", "split", "checkpoints", "threats"}


@dataclass(frozen=True)
class BatchPlan:
    """A checked spec: its run name, batch size, every cell (checkpoint x threat order), the variants."""

    run: str
    batch_size: int
    cells: list[Cell]
    variants: tuple[str, ...]


def fraction_value(text: str) -> float:
    """The finite number written as a decimal (``"0.0157"``) or a fraction (``"4/255"``).

    Anything else raises ``ValueError`` whose message is the problem: "not a number", "division
    by zero" or "must be finite".
    """
    numerator, slash, denominator = text.strip().partition("/")
    try:
        value = float(numerator) / float(denominator) if slash else float(numerator)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


def parse_number(text: str | int | float, key: str) -> float:
    """A number from ``4``, ``0.5`` or ``"4/255"``; anything else is an ``InputError`` naming ``key``."""
    if isinstance(text, bool):
        raise InputError(f"{key}: expected a number, got {text!r}: write e.g. 0.03 or \"8/255\"")
    try:
        return fraction_value(str(text))
    except ValueError as error:
        raise InputError(f"{key}: bad number {text!r} ({error}): write e.g. 0.03 or \"8/255\"") from error


def expand_threats(entry: dict[str, Any], key: str) -> list[Threat]:
    """All threats of one ``[[threats]]`` table: the product of its list-valued parameters."""
    if "name" not in entry:
        raise InputError(f"{key}: missing 'name': add name = \"clean\", \"pgd\", \"corruption\", ... (see `bilat-eval list attacks`)")
    name = entry["name"]
    if name not in THREATS:
        raise InputError(f"{key}.name: unknown threat {name!r}: choose one of {', '.join(sorted(THREATS))}")
    params = {param: value for param, value in entry.items() if param not in ("name", "n_examples")}
    if "eps" in params:
        values = params["eps"] if isinstance(params["eps"], list) else [params["eps"]]
        params["eps"] = [parse_number(value, f"{key}.eps") for value in values]
    names = list(params)
    grids = [value if isinstance(value, list) else [value] for value in params.values()]
    threats = []
    for combination in itertools.product(*grids):
        try:
            threats.append(build_threat(name, **dict(zip(names, combination))))
        except InputError as error:
            raise InputError(f"{key}: {error}") from error
    return threats


def example_count(value: Any, key: str) -> int:
    """An ``n_examples`` value: a whole number >= 0 (0 = the whole split), else an ``InputError`` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{key}: expected a whole number >= 0 (0 = whole split), got {value!r}")
    return value


def resolve_checkpoints(patterns: list[str], base: Path) -> list[str]:
    """Paths from ``patterns`` (globs allowed, relative to ``base``), in order, each once."""
    paths: list[str] = []
    for index, pattern in enumerate(patterns):
        if pattern.startswith("timm:"):
            matches = [pattern]
        else:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            matches = sorted(glob.glob(full))
            if not matches:
                raise InputError(f"checkpoints[{index}]: no file matches {pattern!r}: train it first or fix the path")
        paths.extend(match for match in matches if match not in paths)
    return paths


def load_spec(path: Path, seed: int) -> BatchPlan:
    """Read and check a spec, returning its cells; nothing runs and nothing is written."""
    try:
        spec = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"spec {path} does not exist: pass the path of a TOML spec (see `bilat-eval batch --help`)") from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"spec {path} is not valid TOML ({error}): fix the line it names") from error
    unknown = sorted(set(spec) - TOP_LEVEL_KEYS)
    if unknown:
        raise InputError(f"{unknown[0]}: unknown key in {path}: use {', '.join(sorted(TOP_LEVEL_KEYS))}")
    for required in ("checkpoints", "threats"):
        if not spec.get(required):
            raise InputError(f"{required}: missing or empty in {path}: list at least one")
    n_examples = example_count(spec.get("n_examples", 0), "n_examples")
    tables = [(expand_threats(entry, f"threats[{index}]"),
               example_count(entry.get("n_examples", n_examples), f"threats[{index}].n_examples"))
              for index, entry in enumerate(spec["threats"])]
    paths = resolve_checkpoints(list(spec["checkpoints"]), Path(path).parent)
    infos = []
    for index, checkpoint in enumerate(paths):
        try:
            infos.append(describe_checkpoint(checkpoint))
        except BilatError as error:
            raise InputError(f"checkpoints[{index}]: {error}") from error
    cells = [cell for threats, n in tables
             for cell in plan_cells(infos, threats, dataset=spec.get("dataset"), split=spec.get("split", DEFAULT_SPLIT),
                                    n_examples=n, seed=int(spec.get("seed", seed)))]
    variants = tuple(dict.fromkeys(info.meta["variant"] for info in infos))
    return BatchPlan(str(spec.get("run", path.stem)), int(spec.get("batch_size", 256)), cells, variants)
