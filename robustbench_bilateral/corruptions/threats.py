"""Corruptions and noises as engine threats: ``corruption`` (name, severity 1-5) and ``noise`` (kind, strength).

A ``corruption`` is rendered on the fly from the clean batch, or, with ``rendered`` set to a
pre-rendered set (``npy:DIR`` in the CIFAR-10-C layout, ``imagefolder:DIR`` in ImageNet-C's,
``data.user.prerendered_set``), read from it: clean example ``i`` is replaced by example ``i``
of the set's severity block, whose label must equal the clean one. Its rows then carry
``rendered`` among their params, so they never pool with on-the-fly rows; on-the-fly rows carry
no ``rendered`` entry.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from robustbench_bilateral.corruptions.registry import CORRUPTIONS, NOISES, apply_corruption, apply_noise
from robustbench_bilateral.corruptions.severity import SEVERITIES
from robustbench_bilateral.data.images import centre_crop, channels_first
from robustbench_bilateral.data.user import PrerenderedSet, prerendered_set
from robustbench_bilateral.engine.threat import REQUIRED, Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.rng import ExampleRNG


class CorruptionThreat(Threat):
    """Common corruption ``corruption`` at ``severity`` (1-5), e.g. ``shot_noise`` at 3."""

    name = "corruption"
    family = ThreatFamily.CORRUPTION
    summary = "A common corruption (ImageNet-C's 15 and 4 held out) at a severity 1-5."
    parameters = (
        Param("corruption", str, REQUIRED, "corruption name (see `bilat-eval list corruptions`)", choices=CORRUPTIONS),
        Param("severity", int, REQUIRED, "severity", choices=SEVERITIES),
        Param("rendered", str, None, "pre-rendered set to read it from (npy:DIR as CIFAR-10-C, imagefolder:DIR as "
                                     "ImageNet-C) [default: rendered on the fly]", none_allowed=True),
    )

    _set: PrerenderedSet
    """The pre-rendered set of a ``rendered`` corruption."""

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """Drops ``rendered`` when on the fly; else refuses a source that is not a pre-rendered set or lacks the corruption."""
        if values["rendered"] is None:
            return {key: value for key, value in values.items() if key != "rendered"}
        found = prerendered_set(values["rendered"])
        if found is None:
            raise FieldError("rendered", f"{values['rendered']!r} is not a pre-rendered set: give npy:DIR of "
                                         "<corruption>.npy files with labels.npy (CIFAR-10-C) or imagefolder:DIR of "
                                         "<corruption>/<severity>/<class>/<picture> (ImageNet-C)")
        if values["corruption"] not in found.corruptions:
            raise FieldError("corruption", f"{values['rendered']} has no {values['corruption']}: choose one of "
                                           f"{', '.join(found.corruptions)}")
        self._set = found
        return values

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        if "rendered" not in self.params:
            return apply_corruption(self.params["corruption"], images, self.params["severity"], rng)
        return self.read(images, labels, rng.indices)

    def read(self, images: Tensor, labels: Tensor, indices: list[int]) -> Tensor:
        """Examples ``indices`` of the pre-rendered block in place of the clean ``images`` (N, C, H, W):
        pixels / 255, centre-cropped to the clean size when larger (ImageNet-C's evaluation crop)."""
        corruption, severity = self.params["corruption"], self.params["severity"]
        stored = self._set.labels(corruption, severity, indices)
        differ = (torch.from_numpy(stored) != labels.cpu()).nonzero()
        if len(differ):
            first = indices[int(differ[0])]
            raise InputError(f"{self.params['rendered']}: example {first} is labelled {int(stored[int(differ[0])])} there "
                             f"but {int(labels[int(differ[0])])} in the clean split: evaluate it with the clean split it "
                             "was rendered from (--clean-data / clean_dataset)")
        pixels = channels_first(self._set.pixels(corruption, severity, indices, images.shape[1]))
        try:
            pixels = centre_crop(pixels, images.shape[-2], images.shape[-1])
        except ValueError as error:
            raise InputError(f"{self.params['rendered']} {corruption}: {error}, the model's input: evaluate a model "
                             "of the set's picture size") from None
        return pixels.to(images.device, torch.float32).div_(255.0)


class NoiseThreat(Threat):
    """Additive noise ``kind`` (gaussian: sigma; uniform: half-width; salt_pepper: fraction) of ``strength``."""

    name = "noise"
    family = ThreatFamily.NOISE
    summary = "Additive noise of a strength: " + ", ".join(f"{name} ({noise.unit})" for name, noise in NOISES.items()) + "."
    parameters = (
        Param("kind", str, REQUIRED, "noise kind", choices=NOISES),
        Param("strength", float, REQUIRED, "sigma, half-width or fraction, in pixel units of [0, 1]", minimum=0.0),
    )

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """Refuses a strength above the kind's limit (salt_pepper: a fraction, at most 1)."""
        limit = NOISES.get(values["kind"]).max_strength
        if limit is not None and values["strength"] > limit:
            raise FieldError("strength", f"{values['kind']} noise strength must be between 0 and {limit}, got {values['strength']!r}")
        return values

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return apply_noise(self.params["kind"], images, self.params["strength"], rng)
