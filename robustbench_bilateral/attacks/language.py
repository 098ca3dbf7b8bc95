"""Embedding-space attacks on causal language models, one threat class per attack (``robustbench_bilateral.threats`` registers them).

An attack perturbs the input token embeddings ``embed(ids)`` (``models.lm.CausalLM``) of every
window of the sliding window (``text.windows``) separately, all of the window's input positions,
to maximise the window's next-token loss: the summed NLL of the targets it scores. The metric is
the per-word perplexity of those targets under the perturbed embeddings.

Radii are relative to the scale of the embeddings, ``m = mean over the vocabulary v of
||embed(v)||_2``: ``eps_abs = eps_rel * m`` for L2, a ball per token position (``||delta_i||_2 <=
eps_abs``), and ``eps_abs = eps_rel * m / sqrt(C)`` for L-inf (relative to the RMS coordinate of
an embedding of width C; ``|delta_i,c| <= eps_abs``). Rows store the relative radius as ``eps``
(the key every attack shares, which tables and sanity checks read) and again as ``eps_rel`` (its
unit stated), ``step_size`` as given (relative like eps; ``None`` for the default, so one setting
spans every eps), and the absolute ``eps_abs`` and ``step_size_abs`` the model gave.

FGSM: one step ``delta = eps * sign(grad)``. PGD: ``steps`` steps of size ``step_size`` (default
``2.5 * eps / steps``) along ``sign(grad)`` (L-inf) or ``grad / ||grad_i||_2`` per token (L2),
each projected back onto the ball, from a random start (uniform in the L-inf box; in L2 a
Gaussian direction at a uniform radius); of the iterates, the one with the highest loss of each
window is kept. Random starts draw from ``ExampleRNG(seed, window indices)``: window ``w`` of the
plan gets the same start whatever the batch size or shard. At ``eps = 0`` the embeddings are
left as they are, so the perplexity is the clean one exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from robustbench_bilateral.engine.language import EmbeddingThreat
from robustbench_bilateral.engine.threat import REQUIRED, Param
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.models.lm import CausalLM
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.text.windows import Perturb, WindowLoss

EPS_REL = Param("eps", float, REQUIRED, "radius relative to the mean embedding norm (L-inf: to the RMS coordinate)",
                minimum=0.0)
STEP_RATIO = 2.5
"""PGD's default step size is ``STEP_RATIO * eps / steps``."""


class EmbeddingAttack(EmbeddingThreat):
    """An attack on the token embeddings of a language model.

    ``params``: ``eps`` and ``eps_rel`` (both the relative radius), ``norm``, and a subclass's own settings.
    Subclasses set ``name``, ``summary``, ``norm``, ``flag`` (the ``attack`` flag that selects
    them for language checkpoints), ``parameters`` and ``attack``.
    """

    family = ThreatFamily.ADVERSARIAL
    norm: ClassVar[str] = "Linf"
    iteration_param: ClassVar[str | None] = None
    flag: ClassVar[str]
    parameters: ClassVar[tuple[Param, ...]] = (EPS_REL,)

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "eps_rel": values["eps"], "norm": self.norm}

    def scale(self, model: CausalLM) -> float:
        """Absolute size of a relative radius 1 on ``model``: ``m`` (L2) or ``m / sqrt(C)`` (L-inf)."""
        norm = model.mean_embedding_norm()
        return norm if self.norm == "L2" else norm / math.sqrt(model.tok_embed.embedding_dim)

    def absolute(self, model: CausalLM) -> dict[str, float]:
        """The absolute radius ``eps_abs`` (and ``step_size_abs``) on ``model``, as its rows record them."""
        scale = self.scale(model)
        sizes = {"eps_abs": self.params["eps_rel"] * scale}
        if "step_size" in self.params:
            sizes["step_size_abs"] = self.step_size() * scale
        return sizes

    def step_size(self) -> float:
        """The relative step size: ``step_size``, or ``STEP_RATIO * eps / steps`` when it is ``None``."""
        size = self.params["step_size"]
        return STEP_RATIO * self.params["eps"] / self.params["steps"] if size is None else size

    def perturbation(self, model: CausalLM, seed: int) -> Perturb:
        sizes = self.absolute(model)

        def perturb(emb: Tensor, loss: WindowLoss, windows: Sequence[int]) -> Tensor:
            if sizes["eps_abs"] == 0:
                return emb
            with torch.enable_grad():
                return self.attack(emb, loss, sizes, ExampleRNG(seed, windows, emb.device))

        return perturb

    def attack(self, emb: Tensor, loss: WindowLoss, sizes: dict[str, float], rng: ExampleRNG) -> Tensor:
        """The perturbed embeddings (B, T, C) of a batch of windows."""
        raise NotImplementedError


def gradient(loss: WindowLoss, emb: Tensor, delta: Tensor) -> tuple[Tensor, Tensor]:
    """Each window's loss at ``emb + delta`` (B,) and its gradient with respect to ``delta``."""
    delta = delta.detach().requires_grad_(True)
    value = loss(emb + delta)
    (grad,) = torch.autograd.grad(value.sum(), delta)
    return value.detach(), grad


def direction(grad: Tensor, norm: str) -> Tensor:
    """Steepest ascent direction of unit size in ``norm`` per token: ``sign(g)`` or ``g / ||g_i||_2``."""
    if norm == "Linf":
        return grad.sign()
    return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def project(delta: Tensor, eps: float, norm: str) -> Tensor:
    """``delta`` moved onto the ball of radius ``eps`` per token: clamped (L-inf) or rescaled (L2)."""
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


class FGSMEmbedding(EmbeddingAttack):
    name = "fgsm-embedding"
    flag = "fgsm"
    summary = "FGSM on the token embeddings of a language model: one L-inf sign step of size eps (relative)."

    def attack(self, emb, loss, sizes, rng):
        _, grad = gradient(loss, emb, torch.zeros_like(emb))
        return emb + sizes["eps_abs"] * grad.sign()


class PGDEmbedding(EmbeddingAttack):
    name = "pgd-embedding"
    flag = "pgd"
    summary = "PGD L-inf on the token embeddings of a language model, from a random start (step_size None = 2.5 eps / steps)."
    iteration_param = "steps"
    parameters = (
        EPS_REL,
        Param("steps", int, 10, "iterations", minimum=1),
        Param("step_size", float, None, "step size relative like eps; None = 2.5 * eps / steps", minimum=0.0,
              none_allowed=True),
        Param("random_start", bool, True, "start from a random point of the ball, drawn per window"),
    )


    def start(self, rng: ExampleRNG, shape: torch.Size, eps: float) -> Tensor:
        """A random start (B, T, C): uniform in the L-inf box, or a Gaussian direction at a uniform radius (L2)."""
        if self.norm == "Linf":
            return (2 * rng.rand(*shape) - 1) * eps
        return direction(rng.randn(*shape), "L2") * eps * rng.rand(shape[0], 1)

    def attack(self, emb, loss, sizes, rng):
        eps, step = sizes["eps_abs"], sizes["step_size_abs"]
        delta = self.start(rng, emb.shape[1:], eps) if self.params["random_start"] else torch.zeros_like(emb)
        best, best_loss = delta, torch.full((len(emb),), -math.inf, dtype=torch.float64, device=emb.device)
        for _ in range(self.params["steps"]):
            value, grad = gradient(loss, emb, delta)
            best, best_loss = keep_best(best, best_loss, delta, value)
            delta = project(delta + step * direction(grad, self.norm), eps, self.norm)
        with torch.no_grad():
            best, _ = keep_best(best, best_loss, delta, loss(emb + delta))
        return emb + best


class PGDL2Embedding(PGDEmbedding):
    name = "pgdl2-embedding"
    flag = "pgdl2"
    norm = "L2"
    summary = "PGD L2 (per token) on the token embeddings of a language model, from a random start (step_size None = 2.5 eps / steps)."


def keep_best(best: Tensor, best_loss: Tensor, delta: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    """Per window, ``delta`` where its loss ``value`` beats ``best_loss``, else ``best``; and the new best losses."""
    better = value > best_loss
    return torch.where(better[:, None, None], delta.detach(), best), torch.maximum(value, best_loss)
