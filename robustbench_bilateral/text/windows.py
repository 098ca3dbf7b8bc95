"""Sliding-window evaluation of a causal LM: every token predicted once, with long left context.

With window length ``C`` and stride ``s = C // 2``, window ``w`` feeds ``ids[w s : w s + C]`` and
predicts the tokens at positions ``w s + 1 .. w s + C``. Window 0 scores all of them; every later
window scores only those not scored before (its last ``s``), so each token after the first is
predicted exactly once and, past the first window, with at least ``C - s`` tokens of left context.
The last window is cut at the end of the stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window_plan(length: int, context: int) -> list[tuple[int, int, int]]:
    """``(start, end, first_scored)`` per window: inputs ``ids[start:end]``, targets
    ``ids[start + 1 : end + 1]``, of which positions ``>= first_scored`` are scored."""
    stride = max(1, context // 2)
    plan, scored_until, start = [], 0, 0
    while scored_until < length - 1:
        end = min(start + context, length - 1)
        plan.append((start, end, scored_until + 1))
        scored_until = end
        start += stride
    return plan


@torch.no_grad()
def sliding_window_nll(
    model: nn.Module, ids: torch.Tensor, context: int, batch_size: int = 32, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window NLL sums (float64, nats) and scored-token counts (int64) of the stream ``ids``.

    Per-word perplexity is ``exp(nll.sum() / counts.sum())``.
    """
    plan = window_plan(len(ids), context)
    nll = torch.zeros(len(plan), dtype=torch.float64)
    counts = torch.zeros(len(plan), dtype=torch.int64)
    groups: dict[int, list[int]] = {}
    for number, (start, end, _) in enumerate(plan):
        groups.setdefault(end - start, []).append(number)
    for width, numbers in groups.items():
        for offset in range(0, len(numbers), batch_size):
            chunk = numbers[offset : offset + batch_size]
            starts = torch.tensor([plan[n][0] for n in chunk])
            span = starts.unsqueeze(1) + torch.arange(width + 1)
            windows = ids[span].to(device)
            logits = model(windows[:, :-1]).double()
            losses = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none").cpu()
            for row, n in enumerate(chunk):
                start, _, first = plan[n]
                scored = losses[row, first - start - 1 :]
                nll[n] = scored.sum()
                counts[n] = scored.numel()
    return nll, counts
