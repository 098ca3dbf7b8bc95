"""Threats: what is done to an evaluation batch before the model sees it, and the parameters they declare.

A threat is one class that declares its parameters; ``Threat.__init__`` checks the values
against the declaration, so a class only says what it does::

    class Brightness(Threat):
        name = "brightness-shift"
        family = ThreatFamily.CORRUPTION
        summary = "Every pixel shifted by delta, clamped to [0, 1]."
        parameters = (Param("delta", float, 0.1, "shift in pixel units", minimum=-1.0, maximum=1.0),)

        def apply(self, images, labels, model, rng):
            return (images + self.params["delta"]).clamp(0, 1)

The registry that builds threats by name is ``robustbench_bilateral.threats``.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

from torch import Tensor, nn

from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.numbers import parse_number
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.rng import ExampleRNG


class _Required:
    """The default of a parameter that has none: the caller must give it."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()

TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One declared parameter of a threat.

    ``type`` is ``int``, ``float``, ``str`` or ``bool``; a float also accepts an int and a
    fraction written as a string (``"4/255"``) and is stored as a float. ``default`` is
    ``REQUIRED`` when the caller must give the value. ``choices`` holds the allowed values (a
    tuple, or a registry, whose entries registered later then count too);
    ``minimum``/``maximum`` bound a number (inclusive); ``none_allowed`` lets the value be
    ``None`` (e.g. "the attack's own rule").
    """

    name: str
    type: type
    default: Any = REQUIRED
    help: str = ""
    choices: Collection[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    none_allowed: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPE_NAMES:
            raise TypeError(f"parameter {self.name}: type must be one of int, float, str, bool, got {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def value(self, raw: Any) -> Any:
        """``raw`` checked and converted to ``type``; a bad one is a ``FieldError`` naming this parameter and the fix."""
        if raw is None:
            if self.none_allowed:
                return None
            raise FieldError(self.name, f"got None: {self.hint()}")
        value = self._typed(raw)
        if self.choices is not None and value not in self.choices:
            raise FieldError(self.name, f"unknown value {raw!r}: choose one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise FieldError(self.name, f"{raw!r} is out of range: {self.hint()}")
        return value

    def _typed(self, raw: Any) -> Any:
        if self.type is float:
            return parse_number(raw, self.name)
        if self.type is int and isinstance(raw, Integral) and not isinstance(raw, bool):
            return int(raw)
        if self.type in (str, bool) and isinstance(raw, self.type):
            return raw
        raise FieldError(self.name, f"got {raw!r}: {self.hint()}")

    def hint(self) -> str:
        """What a valid value is, e.g. "give a whole number >= 1"."""
        if self.choices is not None:
            return f"choose one of {', '.join(map(str, self.choices))}"
        bounds = [f">= {self.minimum:g}" if self.minimum is not None else "", f"<= {self.maximum:g}" if self.maximum is not None else ""]
        text = " ".join(["give", TYPE_NAMES[self.type], " and ".join(bound for bound in bounds if bound)]).rstrip()
        if self.none_allowed:
            text += " or None"
        return text + (' (a decimal or a fraction such as "8/255")' if self.type is float else "")


class Threat:
    """A named, parameterised perturbation of a batch.

    A subclass sets ``name``, ``family``, ``summary`` (one line of help) and ``parameters``.
    ``Threat(**values)`` checks ``values`` against ``parameters`` (unknown names, types,
    ranges, choices; defaults fill the rest), then ``complete`` checks relations between them
    and returns the entries to store. ``params`` holds them as JSON reads them back; with the
    name it identifies the threat in result rows and cell keys. Adversarial threats get
    gradients; all others run under ``torch.no_grad``.
    """

    name: ClassVar[str]
    family: ClassVar[ThreatFamily]
    summary: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = ()
    model_checks: ClassVar[tuple[str, ...]] = ()
    """Names of the model sanity checks (``gradient-masking``, ``nondeterministic-forward``) whose
    flags the engine puts on this threat's rows."""

    def __init__(self, **values: Any) -> None:
        declared = {param.name: param for param in self.parameters}
        for key in values:
            if key not in declared:
                names = ", ".join(declared) or "none"
                raise FieldError(key, f"threat {self.name!r} does not take {key!r}: its parameters are {names}")
        checked = {}
        for name, param in declared.items():
            if name in values:
                checked[name] = param.value(values[name])
            elif param.required:
                raise FieldError(name, f"threat {self.name!r} needs {name}: {param.hint()}")
            else:
                checked[name] = param.default
        self.params: dict[str, Any] = json.loads(canonical_json(self.complete(checked)))

    def filled(self, **values: Any) -> Threat:
        """This threat with each parameter of ``values`` that it declares and holds as ``None`` set to
        the given value (a new threat, checked as any); itself when there is none."""
        declared = [param.name for param in self.parameters]
        unset = {name: value for name, value in values.items() if name in declared and self.params[name] is None}
        if not unset:
            return self
        return type(self)(**{**{name: self.params[name] for name in declared}, **unset})

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """The entries to store from the checked ``values``: the place for a check across
        parameters (raise a ``FieldError``) or a derived entry. By default ``values`` as given."""
        return values

    def parallel_batches(self) -> bool:
        """Whether batches of this threat may run at once in several threads (``engine.parallel``): it
        draws only from the ``rng`` and generators of its own, never from torch's global generator,
        and keeps no state between batches. By default no."""
        return False

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


class Clean(Threat):
    """No perturbation: the batch as it is."""

    name = "clean"
    family = ThreatFamily.CLEAN
    summary = "No perturbation: the batch as it is."

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        return images
