"""Vision attacks through torchattacks, one threat class per attack (``robustbench_bilateral.threats`` registers them).

Defaults follow the paper group's protocol: FGSM one L-inf step;
PGD 20 steps of size ``0.15 * eps`` from a uniform random start; PGD-L2 likewise in L2; SPSA 40
iterations, lr 0.01, delta 0.01, 128 samples (``eps`` always passed: torchattacks' own default
is 0.3); AutoAttack is torchattacks' re-implementation (APGD-CE, APGD-T, FAB-T, Square with its
own defaults), not the reference code, and says so in its name; Square 5,000 queries, p_init 0.8.

Attacks are untargeted; ``labels="true"`` attacks the ground truth, ``labels="pred"`` the
model's clean prediction (the paper group's choice). Accuracy is always against the ground truth.
Random parts of torchattacks (random starts, SPSA samples) draw from torch's global generator,
which each batch seeds with ``example_seed(seed, index of its first example)`` inside
``torch.random.fork_rng``; AutoAttack and Square reseed that generator themselves and get the same
batch seed as their ``seed``. Rows are reproducible for a given batch size, and rows of attacks
with random parts record it (``batch_size``: the attack runs in batches of its own when set, else
of the run's, which ``EvaluationSpec.validate`` fills in). torchattacks is imported when an attack is first
built, not with this module.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from robustbench_bilateral.attacks.space import RANGE, AttackSpace, UnitBoxModel, model_normalization
from robustbench_bilateral.engine.threat import REQUIRED, Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.results.sanity import GRADIENT_MASKING, NONDETERMINISTIC_FORWARD
from robustbench_bilateral.rng import ExampleRNG, example_seed

LABEL_MODES = ("true", "pred")

EPS = Param("eps", float, REQUIRED, "radius in pixel units of [0, 1] (normalised units with space=normalized)", minimum=0.0)
SPACE = Param("space", str, AttackSpace.PIXEL.value, "attack [0, 1] pixels (clamped) or normalised inputs (unclamped)",
              choices=tuple(space.value for space in AttackSpace))
LABELS = Param("labels", str, "true", "attack the ground truth or the model's clean prediction", choices=LABEL_MODES)
BATCH_SIZE = Param("batch_size", int, None, "examples per batch (None: the run's); the random parts, hence the rows, depend on it",
                   minimum=1, none_allowed=True)
COMMON: tuple[Param, ...] = (EPS, SPACE, LABELS)
"""Parameters of every attack; one with random parts adds ``BATCH_SIZE`` after its own."""


def _torchattacks() -> ModuleType:
    """The torchattacks package, imported on first use."""
    import torchattacks

    return torchattacks


class VisionAttack(Threat):
    """An attack as a threat: builds the attack object and runs it on a batch.

    ``params`` = the declared parameters plus ``norm``. Subclasses set ``name``, ``summary``,
    ``norm`` (``"Linf"`` or ``"L2"``: which ``eps`` flag feeds them), ``parameters`` (``COMMON``
    first), ``iteration_param`` (the parameter ``--steps`` sets, if any) and ``make``.
    """

    family = ThreatFamily.ADVERSARIAL
    model_checks = (GRADIENT_MASKING, NONDETERMINISTIC_FORWARD)
    norm: ClassVar[str] = "Linf"
    iteration_param: ClassVar[str | None] = None
    parameters = COMMON

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """Adds ``norm``; in pixel space ``eps`` is at most 1 (pixels lie in [0, 1]). In normalised
        space ``eps`` is in units of the normalised input and has no upper bound."""
        if values["space"] == AttackSpace.PIXEL.value and values["eps"] > 1:
            raise FieldError("eps", f"must be at most 1 in pixel space (pixels lie in [0, 1]), got {values['eps']:g}: "
                                    "write a fraction such as 8/255, or set space=normalized for normalised units")
        return {**values, "norm": self.norm}

    def make(self, model: nn.Module, scale: float, seed: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The attack on ``model``: ``attack(images, labels)`` -> adversarial images of the same
        shape, in [0, 1]. ``scale`` multiplies every size in pixel units (eps and step sizes);
        ``seed`` is the batch's seed, for attacks that seed torch's generator themselves."""
        raise NotImplementedError

    def apply(self, images: torch.Tensor, labels: torch.Tensor, model: nn.Module, rng: ExampleRNG) -> torch.Tensor:
        if self.params["labels"] == "pred":
            with torch.no_grad():
                labels = model(images).argmax(-1)
        if self.params["eps"] == 0:
            return images.clone()
        normalized = self.params["space"] == AttackSpace.NORMALIZED.value
        # torchattacks puts a model found in training mode back into it after the attack: the
        # wrapper takes the mode of the wrapped model so that stays as the caller set it.
        box = UnitBoxModel(model, *model_normalization(model)).train(model.training) if normalized else None
        target = model if box is None else box
        start = images if box is None else box.to_unit(images)
        seed = example_seed(rng.seed, rng.indices[0])
        attack = self.make(target, 1 / (2 * RANGE) if normalized else 1.0, seed)
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            adversarial = attack(start, labels)
        return (adversarial if box is None else box.to_pixels(adversarial)).detach()


class FGSM(VisionAttack):
    name = "fgsm"
    summary = "FGSM: one L-inf gradient-sign step of size eps."

    def make(self, model, scale, seed):
        return _torchattacks().FGSM(model, eps=self.params["eps"] * scale)


class PGD(VisionAttack):
    name = "pgd"
    summary = "PGD L-inf: projected gradient-sign steps from a uniform random start (step_size None = 0.15 eps)."
    iteration_param = "steps"
    parameters = (
        *COMMON,
        Param("steps", int, 20, "iterations", minimum=1),
        Param("step_size", float, None, "step size, in the units of eps; None = 0.15 * eps", minimum=0.0, none_allowed=True),
        Param("random_start", bool, True, "start from a uniform random point of the ball"),
        BATCH_SIZE,
    )

    def step(self) -> float:
        """Step size: ``step_size`` when given, else ``0.15 * eps``."""
        size = self.params["step_size"]
        return 0.15 * self.params["eps"] if size is None else size

    def make(self, model, scale, seed):
        attack = getattr(_torchattacks(), "PGDL2" if self.norm == "L2" else "PGD")
        return attack(model, eps=self.params["eps"] * scale, alpha=self.step() * scale, steps=self.params["steps"],
                      random_start=self.params["random_start"])


class PGDL2(PGD):
    name = "pgdl2"
    summary = "PGD L2: projected L2-normalised gradient steps from a random start (step_size None = 0.15 eps)."
    norm = "L2"


class SPSA(VisionAttack):
    name = "spsa"
    summary = "SPSA (gradient-free) L-inf: Adam steps on gradients estimated from nb_sample random finite differences."
    iteration_param = "nb_iter"
    settings: ClassVar[tuple[Param, ...]] = (
        Param("nb_iter", int, 40, "iterations", minimum=1),
        Param("lr", float, 0.01, "Adam learning rate in pixel units", minimum=0.0),
        Param("delta", float, 0.01, "finite-difference perturbation size in pixel units", minimum=0.0),
        Param("nb_sample", int, 128, "random directions per gradient estimate", minimum=1),
        Param("max_batch_size", int, 64, "directions evaluated per forward pass", minimum=1),
    )
    """The keyword arguments of ``torchattacks.SPSA``, passed as they are (``lr`` and ``delta`` scaled with eps)."""
    parameters = (*COMMON, *settings, BATCH_SIZE)

    def make(self, model, scale, seed):
        settings = {param.name: self.params[param.name] for param in self.settings}
        sizes = {"delta": settings["delta"] * scale, "lr": settings["lr"] * scale}
        return _torchattacks().SPSA(model, eps=self.params["eps"] * scale, **{**settings, **sizes})


class AutoAttack(VisionAttack):
    name = "autoattack-torchattacks"
    summary = "torchattacks' AutoAttack re-implementation, L-inf (APGD-CE, APGD-T, FAB-T, Square): not the reference code."
    parameters = (
        *COMMON,
        Param("version", str, "standard", "torchattacks' attack set", choices=("standard", "plus", "rand")),
        Param("n_classes", int, 10, "number of classes of the model", minimum=2),
        BATCH_SIZE,
    )

    def make(self, model, scale, seed):
        return _torchattacks().AutoAttack(model, norm="Linf", eps=self.params["eps"] * scale, version=self.params["version"],
                                          n_classes=self.params["n_classes"], seed=seed)


class Square(VisionAttack):
    name = "square"
    summary = "Square (score-based, gradient-free) L-inf: random square-shaped updates, n_queries queries per example."
    parameters = (
        *COMMON,
        Param("n_queries", int, 5000, "model queries per example", minimum=1),
        Param("p_init", float, 0.8, "initial fraction of pixels a square covers", minimum=0.0, maximum=1.0),
        BATCH_SIZE,
    )

    def make(self, model, scale, seed):
        return _torchattacks().Square(model, norm="Linf", eps=self.params["eps"] * scale, n_queries=self.params["n_queries"],
                                      p_init=self.params["p_init"], seed=seed)
