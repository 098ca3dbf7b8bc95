"""How pictures become a model's input: resize, centre crop, interpolation, and the mean/std it normalises with.

Field names follow timm's data config. For an input of ``input_size`` px a decoded picture is
resized so its short side is ``resize`` px (None = ``round(input_size / crop_pct)``, e.g. 224 px at
crop_pct 0.875 -> 256 px), with ``interpolation`` (antialiased), then centre-cropped to
``input_size`` x ``input_size``. Pixels are in [0, 1]; the model computes ``(x - mean) / std`` per
channel inside its ``forward``. Image arrays stored at the model's size (the built-in datasets)
are used as they are. Every checkpoint records its preprocessing under ``"preprocessing"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from robustbench_bilateral.errors import FieldError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
DEFAULT_CROP_PCT = 0.875
DEFAULT_INTERPOLATION = "bilinear"
"""What checkpoints that do not record their preprocessing get: resize to ``input_size / 0.875``
(the ImageNet evaluation transform) with bilinear interpolation, as they were evaluated before."""


@dataclass(frozen=True)
class Preprocessing:
    """Input transform of an image model; invalid values raise ``FieldError`` naming the field.

    mean, std:     per-channel constants for pixels in [0, 1] (one value per input channel, std > 0).
    input_size:    side of the square model input, in px.
    resize:        short side after resizing, in px; None = ``round(input_size / crop_pct)``.
    crop_pct:      fraction of the resized short side kept by the centre crop, in (0, 1].
    interpolation: ``bilinear`` | ``bicubic`` | ``nearest``.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    resize: int | None = None
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = DEFAULT_INTERPOLATION

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _floats("mean", self.mean))
        object.__setattr__(self, "std", _floats("std", self.std))
        if len(self.std) != len(self.mean):
            raise FieldError("std", f"has {len(self.std)} values but mean has {len(self.mean)}: "
                                    "give both one value per input channel")
        if min(self.std) <= 0:
            raise FieldError("std", f"must be positive, got {list(self.std)}")
        object.__setattr__(self, "input_size", _size("input_size", self.input_size))
        if self.resize is not None:
            object.__setattr__(self, "resize", _size("resize", self.resize))
        crop = _number("crop_pct", self.crop_pct)
        if not 0 < crop <= 1:
            raise FieldError("crop_pct", f"must be in (0, 1] (timm's default is 0.875), got {self.crop_pct!r}")
        object.__setattr__(self, "crop_pct", crop)
        if self.interpolation not in INTERPOLATIONS:
            raise FieldError("interpolation", f"unknown interpolation {self.interpolation!r}: choose one of {', '.join(INTERPOLATIONS)}")

    @property
    def resize_size(self) -> int:
        """The short side after resizing, in px: ``resize`` or ``round(input_size / crop_pct)``."""
        return self.resize if self.resize is not None else int(round(self.input_size / self.crop_pct))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as stored in checkpoint metadata."""
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """Inverse of ``to_dict``; an unknown key is a ``FieldError`` on ``preprocessing``."""
        _check_keys(d)
        return cls(**dict(d))

    def with_overrides(self, overrides: Mapping[str, Any]) -> Preprocessing:
        """This preprocessing with the fields in ``overrides`` replaced (None values are ignored)."""
        _check_keys(overrides)
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})

    @classmethod
    def derived(cls, model_kwargs: Mapping[str, Any]) -> Preprocessing | None:
        """What a model with these kwargs was evaluated with before checkpoints recorded it:
        its mean/std and ``img_size``, crop_pct 0.875, bilinear; None for models without ``img_size``."""
        if "img_size" not in model_kwargs:
            return None
        return cls(tuple(model_kwargs["mean"]), tuple(model_kwargs["std"]), int(model_kwargs["img_size"]))


def _check_keys(d: Mapping[str, Any]) -> None:
    names = [f.name for f in fields(Preprocessing)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise FieldError("preprocessing", f"unknown field {unknown[0]!r}: choose from {', '.join(names)}")


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(field, f"must be a finite number, got {value!r}")
    return float(value)


def _floats(field: str, values: Any) -> tuple[float, ...]:
    """One number or a sequence of numbers as a non-empty tuple of floats."""
    items = values if isinstance(values, (list, tuple)) else (values,)
    if not items:
        raise FieldError(field, "needs one value per input channel, got none")
    return tuple(_number(field, v) for v in items)


def _size(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(field, f"must be a positive whole number of pixels, got {value!r}")
    return value
