"""Vision attacks through torchattacks, one registered threat class per attack.

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
with random parts record it (``batch_size``).
"""

from __future__ import annotations

import torch
import torchattacks
from torch import nn

from robustbench_bilateral.attacks.space import RANGE, AttackSpace, UnitBoxModel, model_normalization
from robustbench_bilateral.engine.threat import Threat, register_threat
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results.row import ThreatFamily
from robustbench_bilateral.rng import ExampleRNG, example_seed

LABEL_MODES = ("true", "pred")


class VisionAttack(Threat):
    """An attack as a threat: builds the torchattacks object and runs it on a batch.

    ``params`` = the attack's settings (``DEFAULTS`` overridden by keyword arguments) plus
    ``eps``, ``space`` and ``labels``. Subclasses set ``name``, ``DEFAULTS``, ``random`` and ``make``.
    """

    family = ThreatFamily.ADVERSARIAL
    norm = "Linf"
    random = False
    DEFAULTS: dict = {}

    def __init__(self, eps: float, space: str = "pixel", labels: str = "true", batch_size: int | None = None,
                 **settings) -> None:
        unknown = set(settings) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"{self.name} has no setting {', '.join(sorted(unknown))}: use {', '.join(self.DEFAULTS) or 'only eps'}")
        if eps < 0:
            raise InputError(f"{self.name}: eps must be >= 0, got {eps}")
        if labels not in LABEL_MODES:
            raise InputError(f"--labels must be one of {', '.join(LABEL_MODES)}, got {labels!r}")
        params = {"eps": float(eps), "norm": self.norm, "space": AttackSpace(space).value, "labels": labels,
                  **self.DEFAULTS, **settings}
        if self.random:
            params["batch_size"] = batch_size
        super().__init__(**params)

    def make(self, model: nn.Module, scale: float, seed: int) -> torchattacks.Attack:
        """The torchattacks object for ``model``; ``scale`` multiplies every pixel-unit size;
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
        target = UnitBoxModel(model, *model_normalization(model)).train(model.training) if normalized else model
        start = target.to_unit(images) if normalized else images
        seed = example_seed(rng.seed, rng.indices[0])
        attack = self.make(target, 1 / (2 * RANGE) if normalized else 1.0, seed)
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            adversarial = attack(start, labels)
        return (target.to_pixels(adversarial) if normalized else adversarial).detach()


@register_threat
class FGSM(VisionAttack):
    name = "fgsm"

    def make(self, model, scale, seed):
        return torchattacks.FGSM(model, eps=self.params["eps"] * scale)


@register_threat
class PGD(VisionAttack):
    name = "pgd"
    random = True
    DEFAULTS = {"steps": 20, "step_size": None, "random_start": True}

    def step(self) -> float:
        """Step size: ``step_size`` when given, else ``0.15 * eps``."""
        size = self.params["step_size"]
        return 0.15 * self.params["eps"] if size is None else size

    def make(self, model, scale, seed):
        return torchattacks.PGD(model, eps=self.params["eps"] * scale, alpha=self.step() * scale,
                                steps=self.params["steps"], random_start=self.params["random_start"])


@register_threat
class PGDL2(PGD):
    name = "pgdl2"
    norm = "L2"

    def make(self, model, scale, seed):
        return torchattacks.PGDL2(model, eps=self.params["eps"] * scale, alpha=self.step() * scale,
                                  steps=self.params["steps"], random_start=self.params["random_start"])


@register_threat
class SPSA(VisionAttack):
    name = "spsa"
    random = True
    DEFAULTS = {"nb_iter": 40, "lr": 0.01, "delta": 0.01, "nb_sample": 128, "max_batch_size": 64}

    def make(self, model, scale, seed):
        settings = {key: self.params[key] for key in self.DEFAULTS}
        sizes = {"delta": settings["delta"] * scale, "lr": settings["lr"] * scale}
        return torchattacks.SPSA(model, eps=self.params["eps"] * scale, **{**settings, **sizes})


@register_threat
class AutoAttack(VisionAttack):
    name = "autoattack-torchattacks"
    random = True
    DEFAULTS = {"version": "standard", "n_classes": 10}

    def make(self, model, scale, seed):
        return torchattacks.AutoAttack(model, norm="Linf", eps=self.params["eps"] * scale,
                                       version=self.params["version"], n_classes=self.params["n_classes"], seed=seed)


@register_threat
class Square(VisionAttack):
    name = "square"
    random = True
    DEFAULTS = {"n_queries": 5000, "p_init": 0.8}

    def make(self, model, scale, seed):
        return torchattacks.Square(model, norm="Linf", eps=self.params["eps"] * scale,
                                   n_queries=self.params["n_queries"], p_init=self.params["p_init"], seed=seed)
