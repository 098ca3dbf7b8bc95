"""The threat registry: every built-in threat in one list, ``register_threat`` for new ones, ``build_threat`` by name.

Importing this module alone makes every built-in threat buildable; a new threat is one class
(see ``robustbench_bilateral.engine.threat``) added with ``@register_threat``. The ``attack``
command gets a flag for every registered adversarial threat, and batch specs accept every
registered name in ``[[threats]] name = ...``. Of the two AutoAttacks, ``autoattack`` (``--autoattack``)
is the reference code and ``autoattack-torchattacks`` torchattacks' re-implementation
(``robustbench_bilateral.attacks.vision``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from robustbench_bilateral.attacks.language import EmbeddingAttack, FGSMEmbedding, PGDEmbedding, PGDL2Embedding
from robustbench_bilateral.attacks.vision import FGSM, PGD, PGDL2, SPSA, AutoAttack, ReferenceAutoAttack, Square, VisionAttack
from robustbench_bilateral.corruptions.threats import CorruptionThreat, NoiseThreat
from robustbench_bilateral.engine.threat import Clean, Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.registry import Registry
from robustbench_bilateral.wordswap.threat import WordSwap

THREATS = Registry[type[Threat]]("threat", "bilat-eval list attacks")
NORMS = ("Linf", "L2")
ThreatClass = TypeVar("ThreatClass", bound=type[Threat])

BUILTIN_THREATS: tuple[type[Threat], ...] = (
    Clean, FGSM, PGD, PGDL2, SPSA, ReferenceAutoAttack, AutoAttack, Square, FGSMEmbedding, PGDEmbedding, PGDL2Embedding,
    CorruptionThreat, NoiseThreat, WordSwap,
)


def register_threat(cls: ThreatClass) -> ThreatClass:
    """Class decorator: make ``cls`` buildable as ``build_threat(cls.name, ...)``.

    ``cls`` needs a ``name`` (str), a ``family`` (``ThreatFamily``) and ``parameters`` (a tuple
    of ``Param``); an adversarial one is a ``VisionAttack`` (or, on language models, an
    ``EmbeddingAttack``) with a ``norm`` and an ``eps`` parameter. A name taken by another class raises ``ValueError``.
    """
    if not isinstance(getattr(cls, "name", None), str) or not isinstance(getattr(cls, "family", None), ThreatFamily):
        raise TypeError(f"{cls.__name__} needs a class attribute name (str) and family (ThreatFamily)")
    if not isinstance(cls.parameters, tuple) or not all(isinstance(param, Param) for param in cls.parameters):
        raise TypeError(f"{cls.__name__}.parameters must be a tuple of Param")
    if cls.family is ThreatFamily.ADVERSARIAL:
        _check_attack(cls)
    THREATS.register(cls.name, cls)
    return cls


def _check_attack(cls: type[Threat]) -> None:
    """What the ``attack`` command needs of an adversarial threat: a ``VisionAttack`` or ``EmbeddingAttack`` with a ``norm``
    (which eps option feeds it), an ``eps`` parameter and an ``iteration_param`` that is None or
    one of its parameters."""
    if not issubclass(cls, (VisionAttack, EmbeddingAttack)):
        raise TypeError(f"{cls.__name__} is adversarial: subclass robustbench_bilateral.attacks.vision.VisionAttack")
    declared = [param.name for param in cls.parameters]
    if cls.norm not in NORMS:
        raise TypeError(f"{cls.__name__} needs a class attribute norm, one of {', '.join(NORMS)}")
    if "eps" not in declared:
        raise TypeError(f"{cls.__name__} needs a parameter eps (its radius)")
    if cls.iteration_param not in (None, *declared):
        raise TypeError(f"{cls.__name__}.iteration_param must be None or one of its parameters {', '.join(declared)}")


def build_threat(name: str, **params: Any) -> Threat:
    """An instance of the registered threat ``name`` with ``params``.

    An unknown name is an ``InputError`` listing the registered ones; a bad parameter is a
    ``FieldError`` naming it (see ``Param.value``).
    """
    return THREATS.get(name)(**params)


def adversarial_threats() -> list[type[VisionAttack]]:
    """The registered adversarial threats, in registration order: the ``attack`` command's flags."""
    return [cls for _, cls in THREATS.items() if issubclass(cls, VisionAttack)]


def embedding_attacks() -> dict[str, type[EmbeddingAttack]]:
    """The registered embedding attacks by the ``attack`` flag (vision attack name) that selects them for language models."""
    return {cls.flag: cls for _, cls in THREATS.items() if issubclass(cls, EmbeddingAttack)}


for _builtin in BUILTIN_THREATS:
    register_threat(_builtin)
