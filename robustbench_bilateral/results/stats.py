"""The reported metrics that are more than a ratio of counts, and confidence intervals of all of them."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

Z_95 = 1.959964


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` at normal quantile ``z`` (1.959964: 95 %).

    With ``p = k / n``: ``centre = (p + z^2 / 2n) / (1 + z^2 / n)`` and
    ``half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)``; the interval is
    ``[centre - half, centre + half]`` clipped to [0, 1].
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def perplexity(nll: ArrayLike, counts: ArrayLike) -> float:
    """Per-word perplexity ``exp(sum nll / sum counts)``.

    ``nll`` holds negative log-likelihoods in nats (one sum per window), ``counts`` the words each
    window scores (``<eos>`` counts as a word); NumPy arrays or CPU tensors. The sum of ``nll`` is
    taken in float64.
    """
    return float(np.exp(np.sum(np.asarray(nll), dtype=np.float64) / np.sum(np.asarray(counts))))


def bootstrap_perplexity_interval(
    nll: np.ndarray, counts: np.ndarray, seed: int, n_resamples: int = 1000
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of ``perplexity`` over windows.

    The unit resampled is the sliding window (``text.windows``), not the word: with stride 1 the
    first window holds the first ``context`` scored words and every later one a single word. Each
    resample draws ``len(nll)`` windows with replacement (NumPy PCG64 seeded by ``seed``)
    and computes ``perplexity`` (``exp(sum nll / sum counts)``) on them; the bounds are the 2.5th and 97.5th
    percentiles of the ``n_resamples`` values.
    """
    nll = np.asarray(nll, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if nll.shape != counts.shape or nll.ndim != 1 or len(nll) == 0:
        raise ValueError(f"bootstrap needs two equal, non-empty 1-D arrays, got {nll.shape} and {counts.shape}")
    generator = np.random.Generator(np.random.PCG64(seed))
    values = np.empty(n_resamples)
    for resample in range(n_resamples):
        picks = generator.integers(0, len(nll), size=len(nll))
        values[resample] = perplexity(nll[picks], counts[picks])
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
