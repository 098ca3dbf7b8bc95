"""Corruptions and noises as engine threats: ``corruption`` (name, severity 1-5) and ``noise`` (kind, strength)."""

from __future__ import annotations

from torch import Tensor, nn

from robustbench_bilateral.corruptions.registry import CORRUPTIONS, NOISES, apply_corruption, apply_noise
from robustbench_bilateral.corruptions.severity import SEVERITIES
from robustbench_bilateral.engine.threat import Threat, register_threat
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results.row import ThreatFamily
from robustbench_bilateral.rng import ExampleRNG


@register_threat
class CorruptionThreat(Threat):
    """Common corruption ``corruption`` at ``severity`` (1-5), e.g. ``shot_noise`` at 3."""

    name = "corruption"
    family = ThreatFamily.CORRUPTION

    def __init__(self, corruption: str, severity: int) -> None:
        if corruption not in CORRUPTIONS:
            raise InputError(f"unknown corruption {corruption!r}: choose one of {', '.join(CORRUPTIONS)}")
        if severity not in SEVERITIES:
            raise InputError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")
        super().__init__(corruption=corruption, severity=severity)

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return apply_corruption(self.params["corruption"], images, self.params["severity"], rng)


@register_threat
class NoiseThreat(Threat):
    """Additive noise ``kind`` (gaussian: sigma; uniform: half-width; salt_pepper: fraction) of ``strength``."""

    name = "noise"
    family = ThreatFamily.NOISE

    def __init__(self, kind: str, strength: float) -> None:
        if kind not in NOISES:
            raise InputError(f"unknown noise {kind!r}: choose one of {', '.join(NOISES)}")
        limit = NOISES[kind].max_strength
        if not strength >= 0 or (limit is not None and strength > limit):
            raise InputError(f"{kind} noise strength must be between 0 and {limit or 'any'}, got {strength!r}")
        super().__init__(kind=kind, strength=float(strength))

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return apply_noise(self.params["kind"], images, self.params["strength"], rng)
