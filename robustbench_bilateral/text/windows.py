"""Sliding-window negative log-likelihood of a causal language model (its perplexity: ``results.stats.perplexity``).

The metric: every target ``t >= 1`` of a token stream is scored exactly once, from the window
that holds it. With stride 1 (the default everywhere but training's end-of-epoch metric) target
``t`` is predicted from ``min(t, context)`` tokens of left context: full-context perplexity. A
stride ``S > 1`` is a cheaper approximation in which a target sees at least ``context - S + 1``
tokens (all of them while ``t <= context``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_bilateral.models.lm import CausalLM

WindowLoss = Callable[[Tensor], Tensor]
"""``loss(embeddings (B, T, C)) -> (B,)``: each window's summed NLL of its scored targets, differentiable."""
Perturb = Callable[[Tensor, WindowLoss, Sequence[int]], Tensor]
"""``perturb(embeddings (B, T, C), loss, window indices) -> embeddings (B, T, C)`` the model reads instead."""


def window_plan(length: int, context: int, stride: int = 1) -> list[tuple[int, int, int]]:
    """Windows ``(start, end, scored_from)`` over a token stream of ``length`` ids.

    Window k feeds ids ``[s_k, e_k)`` and predicts ids ``s_k + 1 .. e_k``, scoring the targets
    ``scored_from_k = e_(k-1) + 1 .. e_k`` (``e_(-1) = 0``). The first window is
    ``s_0 = 0, e_0 = min(context, length - 1)``; window k > 0 ends at ``e_k = min(context + k *
    stride, length - 1)`` and starts ``context`` ids earlier, ``s_k = e_k - context``. Windows stop
    once ``e_k = length - 1``. So every id after the first is scored exactly once, target ``t <=
    context`` from all ``t`` earlier ids and a later target from at least ``context - stride + 1``
    ids; with ``stride = 1`` every target ``t`` sees exactly ``min(t, context)`` ids, and the plan
    has ``max(1, length - context)`` windows.
    """
    if context < 2:
        raise ValueError(f"context must be at least 2, got {context}")
    if not 1 <= stride <= context:
        raise ValueError(f"stride must be between 1 and the context {context}, got {stride}")
    if length < 2:
        raise ValueError(f"need at least 2 tokens to score, got {length}")
    last = length - 1
    end = min(context, last)
    windows = [(0, end, 1)]
    while end < last:
        start_from, end = end + 1, min(end + stride, last)
        windows.append((end - context, end, start_from))
    return windows


def sliding_window_nll(
    model: CausalLM, ids: Tensor, context: int, stride: int = 1, batch_size: int = 32,
    device: str | torch.device = "cpu", part: slice = slice(None), perturb: Perturb | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-window NLL sums (W,) float64 in nats and scored-target counts (W,) int64.

    ``model`` runs in eval mode (its mode is restored) on the windows
    ``window_plan(len(ids), context, stride)[part]`` (default all), up to ``batch_size`` windows
    of equal length per forward pass, computing logits only at the scored positions; both tensors
    hold those windows, in order. ``nll_w = -sum_t log p(id_t | id_(s_w) .. id_(t-1))`` over the
    targets window w scores. ``perturb`` (an embedding attack) replaces each batch's input
    embeddings ``model.embed(ids)`` before they are scored; it gets the batch's window indices in
    the whole plan, so its draws do not depend on the batch size or the shard. ``on_batch(count)``
    is called after each forward pass with the windows it scored.
    """
    ids = ids.reshape(-1).to(device)
    plan = window_plan(len(ids), context, stride)
    first = range(len(plan))[part].start
    windows = plan[part]
    nll = torch.zeros(len(windows), dtype=torch.float64)
    counts = torch.tensor([end - scored_from + 1 for _, end, scored_from in windows], dtype=torch.long)
    runs = [list(run) for _, run in groupby(enumerate(windows), key=lambda item: item[1][1] - item[1][0])]
    was_training = model.training
    model.eval()
    try:
        for run in runs:
            for offset in range(0, len(run), batch_size):
                chunk = run[offset : offset + batch_size]
                inputs = torch.stack([ids[s:e] for _, (s, e, _) in chunk])
                chunk_counts = counts[[w for w, _ in chunk]].to(device)
                tail = int(chunk_counts.max())
                targets = torch.stack([ids[e - tail + 1 : e + 1] for _, (_, e, _) in chunk])
                loss = _window_loss(model, targets, chunk_counts)
                with torch.no_grad():
                    emb = model.embed(inputs)
                if perturb is not None:
                    emb = perturb(emb, loss, [first + w for w, _ in chunk]).detach()
                with torch.no_grad():
                    nll[[w for w, _ in chunk]] = loss(emb).cpu()
                if on_batch is not None:
                    on_batch(len(chunk))
    finally:
        model.train(was_training)
    return nll, counts


def _window_loss(model: CausalLM, targets: Tensor, counts: Tensor) -> WindowLoss:
    """The summed NLL (float64, nats) of the last ``counts[b]`` of each window's ``tail`` targets
    (B, tail), as a function of the window embeddings."""
    tail = targets.shape[1]
    scored = torch.arange(tail, device=targets.device) >= tail - counts[:, None]

    def loss(emb: Tensor) -> Tensor:
        logits = model.forward_embeddings(emb, tail).float()
        token_nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
        return (token_nll.double() * scored).sum(dim=1)

    return loss
