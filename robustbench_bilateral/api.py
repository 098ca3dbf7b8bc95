"""The Python API: ``evaluate`` a model under threats and get the result rows as a DataFrame.

The same path as the command line and batch specs: keyword arguments -> ``EvaluationSpec`` ->
``plan_evaluation`` -> ``run_plan``, with the same store, cell keys and rows. A bad argument is a
``FieldError`` named by the argument (``batch_size``, ``threats[1].eps``, ``data``, ``model``,
``model_kwargs``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from robustbench_bilateral.data.user import prerendered_set
from robustbench_bilateral.device import resolve_device
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.evaluation import plan_evaluation, run_plan
from robustbench_bilateral.module_checkpoint import module_checkpoint
from robustbench_bilateral.results.export import tidy_frame
from robustbench_bilateral.sources import GivenImages
from robustbench_bilateral.spec import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_RUN,
    DEFAULT_SPLIT,
    CheckpointSource,
    EvaluationSpec,
    field_root,
    renamed_fields,
)

ARGUMENT_NAMES = {"checkpoints": "model", "dataset": "data", "model": "model_name", "clean_dataset": "clean_data"}
"""Spec fields whose argument of ``evaluate`` has another name; every other field is its own argument."""


def argument_name(field: str) -> str:
    """The argument of ``evaluate`` a spec field comes from: ``checkpoints[0]`` -> ``model``, ``threats[1].eps`` as it is."""
    root, rest = field_root(field)
    return "model" if root == "checkpoints" else ARGUMENT_NAMES.get(root, root) + rest


def evaluate(
    model: nn.Module | str | Path,
    data: str | tuple[torch.Tensor, torch.Tensor] | None = None,
    threats: Sequence[Any] = ("clean",),
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    n_examples: int = 0,
    split: str = DEFAULT_SPLIT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    context: int | None = None,
    stride: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    out: str | Path | None = None,
    run: str = DEFAULT_RUN,
    fresh: bool = False,
    model_name: str | None = None,
    model_kwargs: str | Mapping[str, Any] | None = None,
    variant: str | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
    clean_data: str | None = None,
) -> pd.DataFrame:
    """Evaluate ``model`` on ``data`` under each of ``threats``; return one line per result row.

    Parameters:
        model: an image classifier (``nn.Module``) taking pixels in [0, 1] that normalises
            inside ``forward`` (or give ``mean``/``std``), or a checkpoint path (``.safetensors``
            from ``bilat-eval train``, ``.pt``/``.pth``/``.safetensors`` weights with
            ``model_name``, ``timm:NAME``). A module is put in eval mode, moved to ``device``
            and identified by the SHA-256 of its state dict, so the same weights give the same
            cells.
        data: a dataset name (``"fmnist"``, ``"mnist5k"``, ``"npy:PATH"``, ...; see
            ``bilat-eval list datasets``), or ``(images, labels)`` tensors: float
            (N, C, H, W) in [0, 1] and int64 (N,). ``None``: the checkpoint's own dataset. A
            pre-rendered corruption set (``"npy:DIR"`` as CIFAR-10-C, ``"imagefolder:DIR"`` as
            ImageNet-C) is read by the ``corruption`` threats at their severities; the clean
            examples then come from ``clean_data``.
        threats: each a name (``"clean"``, ``"fgsm"``), a ``(name, params)`` pair such as
            ``("pgd", {"eps": "4/255", "steps": 10})``, a dict ``{"name": "noise", "kind":
            "gaussian", "strength": 0.1}`` (a list value expands into one threat per value; a
            dict may set its own ``n_examples``) or a ``Threat`` object. ``eps`` is in pixel
            units of [0, 1] and may be a fraction string; a language model's attacks are
            ``fgsm-embedding``, ``pgd-embedding`` and ``pgdl2-embedding``, whose ``eps`` is
            relative to its mean embedding norm (``attacks.language``).
        mean, std: per-channel constants; when given, a module is evaluated as
            ``model((x - mean) / std)``, and a checkpoint file normalises with them instead of
            its own.
        n_examples: the first ``n`` examples of the split (0 = all).
        split: the split of a named dataset (the name recorded for given tensors).
        batch_size: examples (windows of a language model) per forward pass.
        context: tokens of left context a language model reads (``None``: its training
            ``context_length``); longer than a learned position table is a ``FieldError``.
        stride: of the sliding window of a language model: 1 scores every word from
            ``min(t, context)`` tokens (full context), a larger one is the cheaper approximation.
            Image classifiers ignore ``context`` and ``stride``.
        seed: seed of every random draw (noise, random starts), recorded in every row.
        device: ``"cpu"``, ``"cuda"``, ``"mps"``, ``"auto"`` or a ``torch.device``.
        out: when given, rows go to ``<out>/<run>/results.sqlite`` with the exports next to
            it, and cells stored there already are read back rather than run again; when
            ``None``, a temporary store is used and removed.
        run: the run's folder name under ``out``.
        fresh: clear the run's stored rows first instead of resuming.
        model_name: the model plain weights (``.pt``, ``timm:NAME``) load into: a name of
            ``bilat-eval list models`` or any timm model name (``vit_tiny_patch16_224``).
        model_kwargs: the model's arguments for plain weights, a mapping or ``key=value,...``
            text (``"patch_size=7,depth=4"``).
        variant: the attention variant plain weights are built with (default softmax); new
            parameters start at their softmax-equivalent values.
        crop_pct, interpolation: for decoded pictures, the fraction of the resized picture
            the centre crop keeps and the resize interpolation (``bilinear``, ``bicubic``,
            ``nearest``), instead of the checkpoint's own.
        clean_data: with a pre-rendered ``data`` only: the clean set it was rendered from
            (``None``: the checkpoint's own dataset), read by every threat but the corruptions.

    Returns:
        A ``pandas.DataFrame`` with the columns of ``results.csv``: checkpoint and its sha256,
        variant, task, dataset, split, threat family, threat and ``params`` (JSON), ``n``,
        ``metric`` (``accuracy``; ``success_rate`` over the originally correct examples for
        a real threat), ``value`` with its 95 % interval ``ci_low``/``ci_high``, counts, seed,
        device, flags, wall time, versions and the cell key; one line per row, in the order the
        run's store holds them (cells stored by an earlier call first).
        ``frame.attrs["notes"]`` lists what loading added, initialised or dropped, one
        ``"<checkpoint>: <note>"`` line each.

    Raises:
        FieldError: a bad argument, named as above (an ``InputError``, one line with the fix).

    Example:
        >>> import robustbench_bilateral as rb
        >>> frame = rb.evaluate("model.safetensors", "mnist5k",
        ...                     ["clean", ("fgsm", {"eps": "4/255"})], n_examples=64)  # doctest: +SKIP
        >>> frame[["threat", "metric", "value"]]  # doctest: +SKIP
    """
    file_settings: dict[str, Any] = {"model": model_name, "variant": variant, "model_kwargs": model_kwargs, "mean": mean,
                                     "std": std, "crop_pct": crop_pct, "interpolation": interpolation}
    with renamed_fields(argument_name):
        if isinstance(model, nn.Module):
            source, settings = module_source(model, data, clean_data, file_settings), {}
        else:
            source, settings = checkpoint_path(model), file_settings
        spec = EvaluationSpec(checkpoints=[source], threats=threats, dataset=data_source(data, split), split=split,
                              n_examples=n_examples, batch_size=batch_size, context=context, stride=stride, seed=seed,
                              run=run, fresh=fresh, clean_dataset=clean_data, **settings)
        plan = plan_evaluation(spec)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    if out is not None:
        frame = tidy_frame(run_plan(plan, out=Path(out), device=target))
    else:
        with tempfile.TemporaryDirectory(prefix="bilat-eval-") as folder:
            frame = tidy_frame(run_plan(plan, out=Path(folder), device=target))
    frame.attrs["notes"] = list(plan.notes)
    return frame


def module_source(module: nn.Module, data: Any, clean_data: str | None, settings: Mapping[str, Any]) -> CheckpointSource:
    """The spec's checkpoint of a module: ``module_checkpoint`` with the given ``mean``/``std``.

    A setting only a checkpoint file takes (``variant``, ``model_kwargs``, ...), no ``data``, or a
    pre-rendered ``data`` without ``clean_data``, is a ``FieldError``.
    """
    checkpoint = module_checkpoint(module, settings["mean"], settings["std"])
    given = [name for name, value in settings.items() if value is not None and name not in {"mean", "std"}]
    if given:
        raise FieldError(given[0], "applies to a checkpoint file only: an nn.Module is evaluated as it is")
    if data is None:
        raise FieldError("dataset", "an nn.Module has no dataset of its own: pass data='fmnist', ... or (images, labels)")
    if clean_data is None and isinstance(data, str) and prerendered_set(data) is not None:
        raise FieldError("clean_dataset", f"an nn.Module has no dataset of its own: pass the clean set {data} was "
                                          "rendered from as clean_data")
    return checkpoint


def checkpoint_path(model: Any) -> str:
    """The spec's checkpoint of a ``model`` argument that is not a module: its path as a string."""
    if not isinstance(model, (str, Path)):
        raise FieldError("checkpoints[0]", f"must be an nn.Module or a checkpoint path, got {type(model).__name__}")
    return str(model)


def data_source(data: Any, split: str) -> str | GivenImages | None:
    """The spec's dataset of the ``data`` argument: a name, ``None`` or checked ``GivenImages``."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise FieldError("dataset", f"must be a dataset name or an (images, labels) pair, got {len(data)} items")
        return GivenImages.of(data[0], data[1], split)
    return data
