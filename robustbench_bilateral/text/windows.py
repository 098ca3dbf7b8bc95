"""Sliding-window negative log-likelihood of a causal language model (its perplexity: ``results.stats.perplexity``)."""

from __future__ import annotations

from itertools import groupby

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def window_plan(length: int, context: int) -> list[tuple[int, int, int]]:
    """Windows ``(start, end, scored_from)`` over a token stream of ``length`` ids.

    Rule, with ``stride = context // 2``: window k feeds ids ``[s_k, e_k)`` with ``s_k = k * stride``
    and ``e_k = min(s_k + context, length - 1)``, and predicts ids ``s_k + 1 .. e_k``; it scores the
    targets ``t`` with ``e_(k-1) < t <= e_k`` (``e_(-1) = 0``), i.e. the first window scores all
    its predictions and each later full window its last ``stride``. Windows stop once ``e_k =
    length - 1``. So every id after the first is scored exactly once, and target ``t`` of window
    k > 0 is predicted from ``t - s_k > context - stride >= context // 2`` ids of left context.
    ``scored_from`` is the first scored target.
    """
    if context < 2:
        raise ValueError(f"context must be at least 2, got {context}")
    if length < 2:
        raise ValueError(f"need at least 2 tokens to score, got {length}")
    stride = context // 2
    windows = []
    start, prev_end = 0, 0
    while prev_end < length - 1:
        end = min(start + context, length - 1)
        windows.append((start, end, prev_end + 1))
        start, prev_end = start + stride, end
    return windows


@torch.no_grad()
def sliding_window_nll(
    model: nn.Module, ids: Tensor, context: int, batch_size: int = 32, device: str | torch.device = "cpu",
    part: slice = slice(None),
) -> tuple[Tensor, Tensor]:
    """Per-window NLL sums (W,) float64 in nats and scored-token counts (W,) int64.

    ``model(ids (B, T)) -> logits (B, T, V)`` is run in eval mode (its mode is restored) on the
    windows ``window_plan(len(ids), context)[part]`` (default all), up to ``batch_size`` windows of
    equal length at a time; both tensors hold those windows, in order. ``nll_w = -sum_t log p(id_t |
    id_(s_w) .. id_(t-1))`` over the targets window w scores.
    """
    ids = ids.reshape(-1).to(device)
    windows = window_plan(len(ids), context)[part]
    nll = torch.zeros(len(windows), dtype=torch.float64)
    counts = torch.tensor([end - scored_from + 1 for _, end, scored_from in windows], dtype=torch.long)
    runs = [list(run) for _, run in groupby(enumerate(windows), key=lambda item: item[1][1] - item[1][0])]
    was_training = model.training
    model.eval()
    try:
        for run in runs:
            for first in range(0, len(run), batch_size):
                chunk = run[first : first + batch_size]
                inputs = torch.stack([ids[s:e] for _, (s, e, _) in chunk])
                targets = torch.stack([ids[s + 1 : e + 1] for _, (s, e, _) in chunk])
                logits = model(inputs).float()
                token_nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
                token_nll = token_nll.view(targets.shape).double().cpu()
                for row, (w, (s, _, scored_from)) in enumerate(chunk):
                    nll[w] = token_nll[row, scored_from - 1 - s :].sum()
    finally:
        model.train(was_training)
    return nll, counts

