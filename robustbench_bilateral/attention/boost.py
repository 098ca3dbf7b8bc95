"""Boosting: re-filter what the attention filter removed (variants.md section 3)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def boost(apply: Callable[[Tensor], Tensor], values: Tensor, nu: Tensor, steps: int) -> Tensor:
    """K-step boosted attention output.

    With ``apply(W) = A W`` (the attention matrix of one head applied to a value tensor W of shape
    (B, H, T, d)) and per-head step ``nu`` (H,):

        u_0 = A V;   u_(k+1) = u_k + nu * A (V - u_k),  k = 0 .. K-1;   returns u_K

    which equals the closed form ``[I - (I - nu A)^K (I - A)] V``; K = 1, nu = 1 gives
    ``(2A - A^2) V`` (Twicing attention) and nu = 0 gives ``A V``. Each step is one more pass of
    the same attention (same q, k) on a new value tensor.
    """
    nu = nu.to(values.dtype).view(1, -1, 1, 1)
    out = apply(values)
    for _ in range(steps):
        out = out + nu * apply(values - out)
    return out
