"""Vision attacks through torchattacks, one threat class per attack (``robustbench_bilateral.threats`` registers them).

Defaults follow the paper group's protocol: FGSM one L-inf step;
PGD 20 steps of size ``0.15 * eps`` from a uniform random start; PGD-L2 likewise in L2; SPSA 40
iterations, lr 0.01, delta 0.01, 128 samples (``eps`` always passed: torchattacks' own default
is 0.3); Square 5,000 queries, p_init 0.8. Two AutoAttacks, both L-inf, both with ``n_classes``
the model's number of classes (its output width, filled in when a run is planned and recorded):

- ``autoattack``: the reference code (Croce & Hein's, the ``pyautoattack`` package), standard
  version: APGD-CE (``n_iter`` 100 iterations, ``n_restarts`` 1), APGD-T (targeted DLR loss,
  ``n_target_classes`` = min(9, n_classes - 1) targets, 100 iterations, 1 restart), FAB-T (the
  same targets, 100 iterations) and Square (``n_queries`` 5,000), each run on the examples the
  ones before left correct. Every budget is a parameter recorded on the rows, together with the
  attacks that ran (``attacks``): APGD-T's targeted DLR loss reads the four largest logits, so a
  model of fewer than 4 classes runs APGD-CE, FAB-T and Square. The reference code's own
  logging (its checks' warnings included) is kept off the terminal; ``results.sanity`` and
  ``engine.model_checks`` check the rows instead.
- ``autoattack-torchattacks``: torchattacks' re-implementation (APGD-CE, APGD-T, FAB-T, Square
  with its own defaults: fewer iterations, ``n_classes - 1`` targets), not the reference code,
  and says so in its name; its APGD-T always runs, so it refuses a model of fewer than 4 classes.

FGSM, PGD and PGD-L2 state their ``schedule`` (``attacks.schedule``): ``early-exit`` by default
(examples misclassified clean are not attacked; PGD returns an example at its first misclassified
iterate and attacks only the examples still correct), ``full`` for torchattacks' loop over every
example to the final iterate. The other attacks run on every example as their code does.

Attacks are untargeted; ``labels="true"`` attacks the ground truth, ``labels="pred"`` the
model's clean prediction (the paper group's choice). Accuracy is always against the ground truth.
Random parts of torchattacks (random starts, SPSA samples) draw from torch's global generator,
which each batch seeds with ``example_seed(seed, index of its first example)`` inside
``torch.random.fork_rng``; AutoAttack and Square reseed that generator themselves and get the same
batch seed as their ``seed`` (the reference AutoAttack reseeds it before each of its attacks).
Rows are reproducible for a given batch size, and rows of attacks
with random parts record it (``batch_size``: the attack runs in batches of its own when set, else
of the run's, which ``EvaluationSpec.validate`` fills in). torchattacks and pyautoattack are imported
when an attack is first built, not with this module.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from robustbench_bilateral.attacks.schedule import Schedule, early_exit_pgd
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
SCHEDULE = Param("schedule", str, Schedule.EARLY_EXIT.value,
                 "early-exit: examples misclassified clean are not attacked and PGD stops on an example at its first "
                 "misclassified iterate; full: every example, final iterate (torchattacks' loop)",
                 choices=tuple(schedule.value for schedule in Schedule))
BATCH_SIZE = Param("batch_size", int, None, "examples per batch (None: the run's); the random parts, hence the rows, depend on it",
                   minimum=1, none_allowed=True)
COMMON: tuple[Param, ...] = (EPS, SPACE, LABELS)
"""Parameters of every attack; one with random parts adds ``BATCH_SIZE`` after its own."""


DLR_TARGETED_CLASSES = 4
"""APGD-T's targeted DLR loss reads the four largest logits: the fewest classes it runs on."""
N_CLASSES = Param("n_classes", int, None, "classes of the model (None: its output width, filled in when a run is planned)",
                  minimum=2, none_allowed=True)


def _torchattacks() -> ModuleType:
    """The torchattacks package, imported on first use."""
    import torchattacks

    return torchattacks


def _pyautoattack() -> ModuleType:
    """The pyautoattack package (the reference AutoAttack), imported on first use."""
    import pyautoattack

    return pyautoattack


def output_width(model: nn.Module, images: torch.Tensor) -> int:
    """The number of classes of ``model``: the width of its logits on ``images[:1]``."""
    with torch.no_grad():
        return int(model(images[:1]).shape[-1])


def model_classes(model: nn.Module, images: torch.Tensor, declared: int | None) -> int:
    """``declared`` (the ``n_classes`` a planned run filled in and checked), else ``output_width``."""
    return declared if declared is not None else output_width(model, images)


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
    random_parts: ClassVar[bool] = True
    """Whether the attack draws random numbers (from torch's global generator, seeded per batch)."""
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
        early_exit = self.params.get("schedule") == Schedule.EARLY_EXIT.value
        predicted = labels
        if self.params["labels"] == "pred" or early_exit:
            with torch.no_grad():
                predicted = model(images).argmax(-1)
        attacked: torch.Tensor | None = predicted == labels if early_exit else None
        if self.params["labels"] == "pred":
            labels = predicted
        if self.params["eps"] == 0:
            return images.clone()
        normalized = self.params["space"] == AttackSpace.NORMALIZED.value
        # torchattacks puts a model found in training mode back into it after the attack: the
        # wrapper takes the mode of the wrapped model so that stays as the caller set it.
        box = UnitBoxModel(model, *model_normalization(model)).train(model.training) if normalized else None
        target = model if box is None else box
        start = images if box is None else box.to_unit(images)
        scale = 1 / (2 * RANGE) if normalized else 1.0
        adversarial = self.attack(target, start, labels, attacked, scale, example_seed(rng.seed, rng.indices[0]))
        return (adversarial if box is None else box.to_pixels(adversarial)).detach()

    def parallel_batches(self) -> bool:
        """Under the ``early-exit`` schedule: its attacks draw from generators of their own (PGD) or
        none (FGSM), never from torch's global one."""
        return self.params.get("schedule") == Schedule.EARLY_EXIT.value

    def attack(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attacked: torch.Tensor | None,
               scale: float, seed: int) -> torch.Tensor:
        """The adversarial images of the batch: ``make``'s attack on every example (``attacked`` None),
        or only on the examples ``attacked`` marks (the others returned as they are), with torch's
        global generator seeded by ``seed`` (and put back afterwards) if it has ``random_parts``."""
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=self.random_parts):
            if self.random_parts:
                torch.manual_seed(seed)
            if attacked is None:
                return self.make(model, scale, seed)(images, labels)
            adversarial = images.clone()
            if attacked.any():
                adversarial[attacked] = self.make(model, scale, seed)(images[attacked], labels[attacked])
            return adversarial


class FGSM(VisionAttack):
    name = "fgsm"
    summary = "FGSM: one L-inf gradient-sign step of size eps."
    parameters = (*COMMON, SCHEDULE)
    random_parts = False

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
        SCHEDULE,
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

    def attack(self, model, images, labels, attacked, scale, seed):
        """torchattacks' PGD under the ``full`` schedule; under ``early-exit`` ``schedule.early_exit_pgd``
        with a generator of its own seeded by ``seed``, which draws what torch's global generator seeded
        so would."""
        if attacked is None:
            return super().attack(model, images, labels, attacked, scale, seed)
        generator = torch.Generator(images.device).manual_seed(seed)
        return early_exit_pgd(model, images, labels, attacked, self.params["eps"] * scale, self.step() * scale,
                              self.params["steps"], self.params["random_start"], self.norm, generator)


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
        N_CLASSES,
        BATCH_SIZE,
    )

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """Adds ``norm``; a model of fewer than 4 classes is a ``FieldError`` (``few_classes``)."""
        values = super().complete(values)
        if values["n_classes"] is not None:
            few_classes(values["n_classes"])
        return values

    def make(self, model, scale, seed):
        def attack(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            classes = few_classes(model_classes(model, images, self.params["n_classes"]))
            run = _torchattacks().AutoAttack(model, norm="Linf", eps=self.params["eps"] * scale,
                                             version=self.params["version"], n_classes=classes, seed=seed)
            return run(images, labels)

        return attack


def few_classes(classes: int) -> int:
    """``classes`` if torchattacks' AutoAttack runs on that many: its APGD-T always uses the targeted DLR
    loss, which needs ``DLR_TARGETED_CLASSES`` (4); fewer is a ``FieldError`` pointing to the reference."""
    if classes < DLR_TARGETED_CLASSES:
        raise FieldError("n_classes", f"the model has {classes} classes, too few for torchattacks' AutoAttack (its APGD-T "
                                      f"needs {DLR_TARGETED_CLASSES}): use autoattack, the reference, which runs without APGD-T")
    return classes


STANDARD_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
"""The reference AutoAttack's standard version, in the order it runs them."""
MAX_TARGETS = 9


def reference_attacks(classes: int | None) -> list[str]:
    """The attacks of the standard version that run on a model of ``classes`` classes (all when unknown)."""
    if classes is not None and classes < DLR_TARGETED_CLASSES:
        return [name for name in STANDARD_ATTACKS if name != "apgd-t"]
    return list(STANDARD_ATTACKS)


def target_classes(classes: int, given: int | None) -> int:
    """Targets of APGD-T and FAB-T: ``given``, else ``min(9, classes - 1)`` (the standard 9 where the
    model has them); more than the ``classes - 1`` other classes is a ``FieldError``."""
    if given is None:
        return min(MAX_TARGETS, classes - 1)
    if given > classes - 1:
        raise FieldError("n_target_classes", f"{given} is more than the {classes - 1} other classes of a model of {classes} "
                                             "classes: leave it out (min(9, n_classes - 1))")
    return given


class ReferenceAutoAttack(VisionAttack):
    name = "autoattack"
    summary = ("AutoAttack, the reference code (Croce & Hein, pyautoattack), L-inf, standard version: APGD-CE, APGD-T, "
               "FAB-T, Square, every budget recorded.")
    iteration_param = "n_iter"
    parameters = (
        *COMMON,
        Param("version", str, "standard", "the reference attack set (APGD-CE, APGD-T, FAB-T, Square)", choices=("standard",)),
        N_CLASSES,
        Param("n_iter", int, 100, "iterations of APGD-CE, APGD-T and FAB-T", minimum=1),
        Param("n_target_classes", int, None, "target classes of APGD-T and FAB-T (None: min(9, n_classes - 1))",
              minimum=1, none_allowed=True),
        Param("n_queries", int, 5000, "Square's queries per example", minimum=1),
        Param("n_restarts", int, 1, "restarts of APGD-CE and APGD-T (FAB-T and Square run once, as in the reference)",
              minimum=1),
        BATCH_SIZE,
    )

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """Adds ``norm`` and the ``attacks`` that run; with ``n_classes`` known, ``n_target_classes``
        becomes the number of targets that run (``target_classes``)."""
        values = super().complete(values)
        classes, targets = values["n_classes"], values["n_target_classes"]
        if classes is not None:
            targets = target_classes(classes, targets)
        return {**values, "n_target_classes": targets, "attacks": reference_attacks(classes)}

    def make(self, model, scale, seed):
        def attack(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            classes = model_classes(model, images, self.params["n_classes"])
            targets = target_classes(classes, self.params["n_target_classes"])
            adversary = _pyautoattack().AutoAttack(model, norm="Linf", eps=self.params["eps"] * scale, version="standard",
                                                   device=images.device, seed=seed)
            adversary.attacks_to_run = reference_attacks(classes)
            for apgd in (adversary.apgd, adversary.apgd_targeted):
                apgd_iterations(apgd, self.params["n_iter"])
                apgd.n_restarts = self.params["n_restarts"]
            adversary.fab.n_iter = self.params["n_iter"]
            adversary.apgd_targeted.n_target_classes = adversary.fab.n_target_classes = targets
            adversary.square.n_queries = self.params["n_queries"]
            with quiet(adversary.logger):
                adversarial, _ = adversary.run_standard_evaluation(images, labels, batch_size=len(images))
            return adversarial

        return attack


def apgd_iterations(apgd: Any, n_iter: int) -> None:
    """Set the iterations of a reference APGD attack and the step-size checkpoints that follow from them
    (Croce & Hein 2020, section 3.2): the first check after ``0.22 n_iter`` iterations, the interval
    between checks shrinking by ``0.03 n_iter`` down to ``0.06 n_iter`` (each at least 1). The package
    derives them when the attack is built, at 100 iterations."""
    apgd.n_iter = apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


@contextlib.contextmanager
def quiet(logger: logging.Logger) -> Iterator[None]:
    """Nothing ``logger`` (the reference AutoAttack's: its checks' warnings, its progress) emits reaches
    a handler while the block runs (with no handler configured, Python would print its warnings)."""
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


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
