"""Corruptions and noises as engine threats: ``corruption`` (name, severity 1-5) and ``noise`` (kind, strength)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from robustbench_bilateral.corruptions.registry import CORRUPTIONS, NOISES, apply_corruption, apply_noise
from robustbench_bilateral.corruptions.severity import SEVERITIES
from robustbench_bilateral.engine.threat import REQUIRED, Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.rng import ExampleRNG


class CorruptionThreat(Threat):
    """Common corruption ``corruption`` at ``severity`` (1-5), e.g. ``shot_noise`` at 3."""

    name = "corruption"
    family = ThreatFamily.CORRUPTION
    summary = "A common corruption (ImageNet-C's 15 and 4 held out) at a severity 1-5."
    parameters = (
        Param("corruption", str, REQUIRED, "corruption name (see `bilat-eval list corruptions`)", choices=CORRUPTIONS),
        Param("severity", int, REQUIRED, "severity", choices=SEVERITIES),
    )

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return apply_corruption(self.params["corruption"], images, self.params["severity"], rng)


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
