"""Threats: what is done to an evaluation batch before the model sees it, and their registry.

Adding a threat is registering one class::

    @register_threat
    class GaussianNoise(Threat):
        name = "gaussian"
        family = ThreatFamily.NOISE

        def __init__(self, sigma: float = 0.1) -> None:
            super().__init__(sigma=sigma)

        def apply(self, images, labels, model, rng):
            return (images + self.params["sigma"] * rng.randn(*images.shape[1:])).clamp(0, 1)
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from torch import Tensor, nn

from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results.row import ThreatFamily, canonical_json
from robustbench_bilateral.rng import ExampleRNG

THREATS: dict[str, type[Threat]] = {}


class Threat:
    """A named, parameterised perturbation of a batch.

    ``params`` holds every parameter (defaults included) as JSON reads it back; with the name
    it identifies the threat in result rows and cell keys. Adversarial threats get gradients;
    all others run under ``torch.no_grad``.
    """

    name: ClassVar[str]
    family: ClassVar[ThreatFamily]

    def __init__(self, **params: Any) -> None:
        try:
            text = canonical_json(params)
        except (TypeError, ValueError) as error:
            raise InputError(f"threat {self.name} parameters {params!r} are not JSON-safe ({error}): pass numbers, strings or lists") from error
        self.params: dict[str, Any] = json.loads(text)

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        """The evaluated batch: same shape as ``images`` (pixels in [0, 1]).

        ``rng`` row ``n`` belongs to example ``n`` of the batch; every random draw must come
        from it so results do not depend on the batch size. For a language model the batch is
        its token stream as one example, ``(1, L)`` ids with ``labels`` the same ids, and the
        threat returns ids of the same shape.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({canonical_json(self.params)})"


def register_threat(cls: type[Threat]) -> type[Threat]:
    """Class decorator: make ``cls`` buildable by ``build_threat(cls.name, ...)``."""
    if not isinstance(getattr(cls, "name", None), str) or not isinstance(getattr(cls, "family", None), ThreatFamily):
        raise TypeError(f"{cls.__name__} needs a class attribute name (str) and family (ThreatFamily)")
    if THREATS.get(cls.name, cls) is not cls:
        raise ValueError(f"threat name {cls.name!r} is taken by {THREATS[cls.name].__name__}")
    THREATS[cls.name] = cls
    return cls


def build_threat(name: str, **params: Any) -> Threat:
    """An instance of the registered threat ``name`` with ``params``."""
    if name not in THREATS:
        raise InputError(f"unknown threat {name!r}: choose one of {', '.join(sorted(THREATS))}")
    try:
        return THREATS[name](**params)
    except TypeError as error:
        raise InputError(f"threat {name!r} does not take parameters {sorted(params)} ({error})") from error


@register_threat
class Clean(Threat):
    """No perturbation: the batch as it is."""

    name = "clean"
    family = ThreatFamily.CLEAN

    def __init__(self) -> None:
        super().__init__()

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return images
