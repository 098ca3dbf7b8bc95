"""One evaluation's settings, checked once, whichever way they came in.

An ``EvaluationSpec`` holds every setting of an evaluation. The command line
(``cli.evaluating``), a TOML batch spec (``batch.read_spec``) and Python keywords
(``api.evaluate``) all make one, and its one ``validate`` checks it. A bad value raises a
``FieldError`` whose ``field`` is named as below; each caller renames it into its own
vocabulary with ``renamed_fields`` (``--batch-size`` on the command line, the key path in
TOML, the argument name in Python).

Fields (and the names errors use):

- ``checkpoints`` (``checkpoints[i]``): a non-empty list of strings, each a checkpoint path, a
  glob or ``timm:NAME``, or a ``LoadedCheckpoint`` (a model given in memory). Globs are matched
  relative to ``base``; with ``base = None`` every string is taken literally (a shell has
  already expanded it).
- ``threats`` (``threats[i]``, ``threats[i].name``, ``threats[i].<param>``,
  ``threats[i].n_examples``): a non-empty list; entry ``i`` is a threat name (``"clean"``), a
  ``(name, params)`` pair, a mapping ``{"name": ..., **params}`` or a built ``Threat``. A
  parameter given as a list expands into one threat per value, the product over all listed
  parameters of the entry (a bad value is named ``threats[i].<param>[j]``). An entry's own
  ``n_examples``, ``context`` and ``stride`` override the spec's; an entry's ``context`` may be a
  list (``threats[i].context[j]``), giving its threats once per context length. Parameters are
  checked by the threat classes.
- ``dataset``: a data source name (``fmnist``, ``npy:PATH``, ...; ``None`` = each checkpoint's
  own) or ``GivenImages``. A pre-rendered corruption set (``npy:DIR`` as CIFAR-10-C,
  ``imagefolder:DIR`` as ImageNet-C; ``data.user.prerendered_set``) is read by the
  ``corruption`` threats, which then take ``rendered = dataset`` (``read_prerendered``); every
  cell reads its clean examples from ``clean_dataset``.
- ``clean_dataset``: with a pre-rendered ``dataset`` only, the clean set it was rendered from
  (``None`` = each checkpoint's own); any other use is a ``FieldError``.
- ``split``: split of the dataset (default ``test``).
- ``n_examples``: a whole number >= 0, the first ``n`` examples or words (0 = the whole split).
- ``batch_size``: a whole number >= 1, examples (windows of a language model) per forward pass.
  A threat that declares ``batch_size`` (an attack with random parts, seeded per batch) and
  leaves it ``None`` gets this one, so its rows and cell key name the batch size it runs with.
- ``context``: ``None`` (each language checkpoint's training ``context_length``) or a whole
  number >= 2, the tokens of left context of the sliding window (``text.windows``); beyond a
  learned position table's length it is a ``FieldError`` when planned. Image classifiers ignore it.
- ``stride``: a whole number >= 1 (and <= ``context``): 1 scores every word from its full left
  context, a larger one is the cheaper approximation. Image classifiers ignore it.
- ``seed``: a whole number, the seed of every random draw.
- ``run``: a plain folder name; results go to ``<out>/<run>/results.sqlite``.
- ``fresh``: true to clear the run's stored results first instead of resuming.
- ``model``: ``None`` or the model that plain weights (``.pt``, ``timm:NAME``) load into: a name
  of ``bilat-eval list models`` or any timm model name (``vit_tiny_patch16_224``, ``resnet18``).
- ``variant``: ``None`` or the attention variant plain weights are built with
  (``bilat-eval list variants``; ``None``: softmax, or a checkpoint's own).
- ``model_kwargs``: ``None``, ``key=value,...`` text (``patch_size=7,depth=4``, values read as
  Python literals) or a mapping of the model's arguments.
- ``mean``, ``std``: ``None``, or per-channel constants (a list of numbers or comma-separated
  text) replacing the checkpoint's normalisation ``(x - mean) / std``.
- ``crop_pct``: ``None`` or the fraction of the resized picture the centre crop keeps.
- ``interpolation``: ``None`` or how pictures are resized (``bilinear``, ``bicubic``, ``nearest``).

The preprocessing overrides are checked by ``Preprocessing``'s rules (``crop_pct`` in (0, 1], std
> 0, ...) and again against each checkpoint when it loads (a ``mean`` with the wrong number of
channels), still under their own names.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from robustbench_bilateral.attention import parse_variant
from robustbench_bilateral.checkpoint import LoadedCheckpoint
from robustbench_bilateral.corruptions.threats import CorruptionThreat
from robustbench_bilateral.data.user import prerendered_set
from robustbench_bilateral.engine import Threat
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.models import model_entry, parse_model_kwargs
from robustbench_bilateral.numbers import whole_number
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.sources import GivenImages, LoadSettings
from robustbench_bilateral.threats import THREATS

DEFAULT_RUN = "main"
DEFAULT_SPLIT = "test"
DEFAULT_BATCH_SIZE = 256
CHECKPOINT_KINDS = "strings (checkpoint paths, globs or timm:NAME)"
THREAT_KINDS = "threat names, (name, params) pairs, {'name': ..., **params} tables or Threat objects"
WHOLE_SPLIT = " (0 = the whole split)"
NEUTRAL_SIZE = 224
"""Input size of the preprocessing that overrides are checked on before any checkpoint loads."""
LOAD_FIELDS = ("model", "variant", "model_kwargs", "mean", "std", "crop_pct", "interpolation")
"""The fields that say how checkpoint files load (``LoadSettings``), in the order they are listed."""

CheckpointSource = str | LoadedCheckpoint


@dataclass(frozen=True)
class ThreatGroup:
    """Threats that run on the same number of examples, each with the field it is reported under."""

    threats: tuple[Threat, ...]
    fields: tuple[str, ...]
    n_examples: int
    context: int | None = None
    stride: int = 1


@dataclass(frozen=True)
class CheckedSpec:
    """The values of a spec that passed ``validate``: checkpoints resolved, threats built.

    ``checkpoints`` pairs each checkpoint (a path, ``timm:NAME`` or a model in memory) with the
    field it came from; ``groups`` are the threats in spec order.
    """

    checkpoints: tuple[tuple[str, CheckpointSource], ...]
    groups: tuple[ThreatGroup, ...]
    dataset: str | GivenImages | None
    split: str
    batch_size: int
    seed: int
    run: str
    fresh: bool
    load: LoadSettings


@dataclass
class EvaluationSpec:
    """Every setting of one evaluation (see the module docstring for each field)."""

    checkpoints: Sequence[CheckpointSource] | None
    threats: Sequence[Any] | None
    dataset: str | GivenImages | None = None
    split: str = DEFAULT_SPLIT
    n_examples: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE
    context: int | None = None
    stride: int = 1
    seed: int = 0
    run: str = DEFAULT_RUN
    fresh: bool = False
    model: str | None = None
    variant: str | None = None
    model_kwargs: str | Mapping[str, Any] | None = None
    mean: str | Sequence[float] | None = None
    std: str | Sequence[float] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    clean_dataset: str | None = None
    base: Path | None = None

    def validate(self, *, checkpoints_required: bool = True) -> CheckedSpec:
        """Check every field, raising a ``FieldError`` that names the first bad one, and return the checked values.

        Types come first (``batch_size`` must be a whole number >= 1, ``checkpoints`` a list of
        strings, ...), then values: every glob matches a file, every threat name is registered
        and every threat parameter passes its class's checks. Nothing is loaded and nothing runs.
        Without ``checkpoints_required`` an empty or missing ``checkpoints`` is no error (a study
        checks its spec before it trains them).
        """
        n_examples = whole_number(self.n_examples, "n_examples", 0, WHOLE_SPLIT)
        batch_size = whole_number(self.batch_size, "batch_size", 1)
        seed = whole_number(self.seed, "seed", None)
        run, fresh, load = run_name(self.run), flag(self.fresh, "fresh"), self.load_settings()
        dataset = self.dataset if isinstance(self.dataset, GivenImages) else optional_text(self.dataset, "dataset")
        split = text(self.split, "split")
        checkpoints = tuple(resolve_checkpoints(self.checkpoints, self.base)) if checkpoints_required or self.checkpoints else ()
        reading = sliding_window(self.context, self.stride, "")
        groups = tuple(replace(group, threats=tuple(threat.filled(batch_size=batch_size) for threat in group.threats))
                       for group in threat_groups(self.threats, ThreatGroup((), (), n_examples, *reading)))
        dataset, groups = read_prerendered(dataset, optional_text(self.clean_dataset, "clean_dataset"), groups)
        return CheckedSpec(checkpoints, groups, dataset, split, batch_size, seed, run, fresh, load)

    def load_settings(self) -> LoadSettings:
        """The checked ``LoadSettings`` of ``model``, ``variant``, ``model_kwargs`` and the preprocessing overrides."""
        variant = optional_text(self.variant, "variant")
        if variant is not None:
            parse_variant(variant)
        preprocessing = preprocessing_overrides(self.mean, self.std, self.crop_pct, self.interpolation)
        return LoadSettings(model_name(self.model), variant, model_arguments(self.model_kwargs), preprocessing)


def read_prerendered(dataset: str | GivenImages | None, clean_dataset: str | None,
                     groups: tuple[ThreatGroup, ...]) -> tuple[str | GivenImages | None, tuple[ThreatGroup, ...]]:
    """The dataset the cells read and the groups, after a pre-rendered ``dataset``: ``clean_dataset``,
    and every on-the-fly ``corruption`` threat reading from ``dataset`` (a corruption it lacks is a
    ``FieldError`` on the threat's field). Any other ``dataset`` is returned as it is."""
    try:
        rendered = prerendered_set(dataset) if isinstance(dataset, str) else None
    except InputError as error:
        raise FieldError("dataset", str(error)) from error
    if rendered is None:
        if clean_dataset is not None:
            raise FieldError("clean_dataset", "applies only with a pre-rendered dataset (npy:DIR as CIFAR-10-C, "
                                              "imagefolder:DIR as ImageNet-C): give the clean set as dataset")
        return dataset, groups
    source = rendered.name

    def reading(threat: Threat, name: str) -> Threat:
        if not isinstance(threat, CorruptionThreat) or "rendered" in threat.params:
            return threat
        with renamed_fields(lambda field: f"{name}.{field}"):
            return CorruptionThreat(**threat.params, rendered=source)

    if not any(isinstance(threat, CorruptionThreat) for group in groups for threat in group.threats):
        raise FieldError("dataset", f"{source} holds pre-rendered corruptions, which only corruption threats read: add "
                                    "one (name = \"corruption\", or `bilat-eval contaminate`) or give a clean set as dataset")
    return clean_dataset, tuple(replace(group, threats=tuple(reading(threat, name) for threat, name in
                                                             zip(group.threats, group.fields))) for group in groups)


@contextmanager
def renamed_fields(rename: Callable[[str], str]) -> Iterator[None]:
    """Re-raise a ``FieldError`` from the block under ``rename(field)``: a caller's own name for the field."""
    try:
        yield
    except FieldError as error:
        raise error.renamed(rename(error.field)) from error


def field_root(name: str) -> tuple[str, str]:
    """``"threats[1].eps"`` -> ``("threats", "[1].eps")``: the top-level field and the rest of the path."""
    cut = min((index for index in (name.find("["), name.find(".")) if index >= 0), default=len(name))
    return name[:cut], name[cut:]


def text(value: Any, name: str) -> str:
    """``value`` if it is a non-empty string, else a ``FieldError``."""
    if not isinstance(value, str) or not value:
        raise FieldError(name, f"must be a non-empty string, got {value!r}")
    return value


def optional_text(value: Any, name: str) -> str | None:
    """``None`` or a non-empty string."""
    return None if value is None else text(value, name)


def preprocessing_overrides(mean: Any, std: Any, crop_pct: Any, interpolation: Any) -> dict[str, Any]:
    """The given preprocessing overrides (``mean``/``std`` as lists of numbers or comma-separated
    text), checked by ``Preprocessing``'s own rules on a neutral preprocessing with as many channels."""
    overrides = {"mean": channel_values(mean, "mean"), "std": channel_values(std, "std"), "crop_pct": crop_pct,
                 "interpolation": interpolation}
    given = {name: value for name, value in overrides.items() if value is not None}
    first = given.get("mean", given.get("std"))
    channels = max(len(first), 1) if isinstance(first, (list, tuple)) else 1
    checked = Preprocessing((0.5,) * channels, (1.0,) * channels, NEUTRAL_SIZE).with_overrides(given)
    return {name: getattr(checked, name) for name in given}


def channel_values(value: Any, name: str) -> Any:
    """Comma-separated text (``"0.5,0.5,0.5"``) as a tuple of floats; any other value as it is."""
    if not isinstance(value, str):
        return value
    try:
        return tuple(float(token) for token in value.split(","))
    except ValueError:
        raise FieldError(name, f"must be numbers separated by commas, one per channel (e.g. 0.485,0.456,0.406), "
                               f"got {value!r}") from None


def model_name(value: Any) -> str | None:
    """``None`` or a model name registered in ``MODELS`` or known to timm (``models.model_entry``)."""
    name = optional_text(value, "model")
    if name is not None:
        try:
            model_entry(name)
        except InputError as error:
            raise FieldError("model", f"{error} or a timm model name such as vit_tiny_patch16_224") from None
    return name


def model_arguments(value: Any) -> dict[str, Any]:
    """The model's keyword arguments from ``key=value,...`` text (``parse_model_kwargs``) or a mapping; ``None`` is none."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_model_kwargs(value)
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return dict(value)
    raise FieldError("model_kwargs", f"must be key=value pairs separated by commas (e.g. patch_size=7,depth=4) "
                                     f"or a table of them, got {value!r}")


def flag(value: Any, name: str) -> bool:
    """``value`` if it is a bool, else a ``FieldError``."""
    if not isinstance(value, bool):
        raise FieldError(name, f"must be true or false, got {value!r}")
    return value


def run_name(value: Any) -> str:
    """A run name: a plain folder name (no slashes, not ``.`` or ``..``)."""
    name = text(value, "run")
    if name in {".", ".."} or "/" in name or "\\" in name:
        raise FieldError("run", f"{name!r} is not a plain folder name: choose one without slashes")
    return name


def listed(value: Any, name: str, kinds: str) -> Sequence[Any]:
    """``value`` if it is a non-empty list (or tuple), else a ``FieldError`` naming what it must hold."""
    if value is None:
        raise FieldError(name, f"missing: give a list of {kinds}")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise FieldError(name, f"must be a list of {kinds}, got {value!r}")
    if not value:
        raise FieldError(name, f"is empty: give at least one of the {kinds}")
    return value


def resolve_checkpoints(entries: Any, base: Path | None) -> list[tuple[str, CheckpointSource]]:
    """``(field, checkpoint)`` of every entry in order, each checkpoint once.

    With ``base``, a string other than ``timm:NAME`` is a glob relative to ``base`` (an absolute
    one as it is) whose sorted matches replace it; a glob matching nothing is a ``FieldError``.
    """
    resolved: dict[str, tuple[str, CheckpointSource]] = {}
    for index, entry in enumerate(listed(entries, "checkpoints", CHECKPOINT_KINDS)):
        name = f"checkpoints[{index}]"
        if isinstance(entry, LoadedCheckpoint):
            matches: Sequence[CheckpointSource] = [entry]
        elif base is None or text(entry, name).startswith("timm:"):
            matches = [text(entry, name)]
        else:
            matches = sorted(glob.glob(entry if Path(entry).is_absolute() else str(base / entry)))
            if not matches:
                raise FieldError(name, f"no file matches {entry!r}: train it first or fix the path")
        for match in matches:
            resolved.setdefault(str(match.path) if isinstance(match, LoadedCheckpoint) else match, (name, match))
    return list(resolved.values())


def sliding_window(context: Any, stride: Any, prefix: str) -> tuple[int | None, int]:
    """Checked ``(context, stride)``: ``None`` or a whole number >= 2, and a whole number >= 1 no
    larger than the context; errors are named ``<prefix>context`` / ``<prefix>stride``."""
    checked = None if context is None else whole_number(context, prefix + "context", 2)
    step = whole_number(stride, prefix + "stride", 1)
    if checked is not None and step > checked:
        raise FieldError(prefix + "stride", f"{step} is longer than the context {checked}: give a stride <= the context")
    return checked, step


def threat_groups(entries: Any, spec: ThreatGroup) -> list[ThreatGroup]:
    """The threats of every entry, in order: one group per table, one for each run of ``Threat`` objects.

    ``spec`` holds no threats, only the spec's ``n_examples``, ``context`` and ``stride``, which a
    table may override with its own.
    """
    groups: list[ThreatGroup] = []
    after_threat = False
    for index, entry in enumerate(listed(entries, "threats", THREAT_KINDS)):
        name = f"threats[{index}]"
        if isinstance(entry, Threat):
            last = groups.pop() if after_threat else spec
            groups.append(replace(last, threats=(*last.threats, entry), fields=(*last.fields, name)))
        else:
            table = threat_table(entry, name)
            own_n = whole_number(table.pop("n_examples", spec.n_examples), f"{name}.n_examples", 0, WHOLE_SPLIT)
            context, stride = table.pop("context", spec.context), table.pop("stride", spec.stride)
            threats = expand_threats(table, name)
            for one_context in listed_contexts(context, name):
                reading = sliding_window(one_context, stride, f"{name}.")
                groups.append(ThreatGroup(tuple(threats), (name,) * len(threats), own_n, *reading))
        after_threat = isinstance(entry, Threat)
    return groups


def listed_contexts(context: Any, name: str) -> list[Any]:
    """A table's ``context``: one value, or a list of them (a whole number >= 2 each, named
    ``<name>.context[j]`` in errors), each giving one group of the table's threats."""
    if not isinstance(context, list):
        return [context]
    if not context:
        raise FieldError(f"{name}.context", "is an empty list: give a context length or a list of them")
    return [whole_number(value, f"{name}.context[{j}]", 2) for j, value in enumerate(context)]


def threat_table(entry: Any, name: str) -> dict[str, Any]:
    """An entry as a dict ``{"name": ..., **params}``: from a name, a ``(name, params)`` pair or a mapping."""
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], Mapping):
        table = {"name": entry[0], **entry[1]}
    elif isinstance(entry, Mapping):
        table = dict(entry)
    else:
        raise FieldError(name, f"must be one of the {THREAT_KINDS}, got {entry!r}")
    if "name" not in table:
        raise FieldError(name, f"missing 'name': add name = \"clean\", \"pgd\", \"corruption\", ... (see `{THREATS.listing}`)")
    return table


def expand_threats(table: dict[str, Any], name: str) -> list[Threat]:
    """Every threat of one table: the product of its list-valued parameters, in order.

    A parameter's ``FieldError`` is reported as ``<name>.<param>``, with ``[j]`` when it is
    value ``j`` of a list.
    """
    threat_name = text(table.pop("name"), f"{name}.name")
    try:
        cls = THREATS.get(threat_name)
    except InputError as error:
        raise FieldError(f"{name}.name", str(error)) from None
    params = list(table)
    axes = [value if isinstance(value, list) else [value] for value in table.values()]
    for param, axis in zip(params, axes):
        if not axis:
            raise FieldError(f"{name}.{param}", "is an empty list: give at least one value")
    threats = []
    for positions in itertools.product(*(range(len(axis)) for axis in axes)):
        values = {param: axis[position] for param, axis, position in zip(params, axes, positions)}
        try:
            threats.append(cls(**values))
        except FieldError as error:
            suffix = f"[{positions[params.index(error.field)]}]" if isinstance(table.get(error.field), list) else ""
            raise error.renamed(f"{name}.{error.field}{suffix}") from error
        except InputError as error:
            raise FieldError(name, str(error)) from error
    return threats
