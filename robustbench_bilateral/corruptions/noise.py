"""Noise: additive threats at a given strength and the four noise corruptions (speckle held out).

Every value (pixel and channel) gets its own draw; all draws come from the ``ExampleRNG``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import torch

from robustbench_bilateral.corruptions.entry import additive_noise, corruption
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.rng import ExampleRNG

POISSON_CORRECTION_STEPS = 6
POISSON_TABLE_ROWS = 2048
POISSON_TABLE_MAX_RATE = 512.0
POISSON_CHUNK = 1 << 16


def _uniform(rng: ExampleRNG, images: torch.Tensor) -> torch.Tensor:
    """One uniform [0, 1) draw per value, on the images' device and dtype."""
    return rng.rand(*images.shape[1:]).to(images)


def _normal(rng: ExampleRNG, images: torch.Tensor) -> torch.Tensor:
    """One standard normal draw per value, on the images' device and dtype."""
    return rng.randn(*images.shape[1:]).to(images)


@additive_noise("gaussian", unit="sigma")
def additive_gaussian(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + strength * z, 0, 1)``, z standard normal; ``strength`` is sigma in intensity units."""
    return (images + strength * _normal(rng, images)).clamp_(0.0, 1.0)


@additive_noise("uniform", unit="half-width")
def additive_uniform(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + u, 0, 1)``, u uniform in [-strength, strength); ``strength`` is the half-width."""
    return (images + strength * (2.0 * _uniform(rng, images) - 1.0)).clamp_(0.0, 1.0)


@additive_noise("salt_pepper", unit="fraction", max_strength=1.0)
def salt_pepper(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """Each value becomes 0 or 1 (even odds) with probability ``strength`` (scikit-image ``s&p``)."""
    hit = _uniform(rng, images) < strength
    salt = _uniform(rng, images) < 0.5
    return torch.where(hit, salt.to(images.dtype), images)


def cornish_fisher_start(mean: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``k0 = max(0, round(rate + sqrt(rate) z + (z^2 - 1) / 6))``, z = Phi^-1(u): the
    Cornish-Fisher guess of the Poisson(rate) quantile at u, in the inputs' dtype."""
    z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    return torch.round(mean + mean.sqrt() * z + (z * z - 1.0) / 6.0).clamp_min(0.0)


def poisson_steps(mean: torch.Tensor, u: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The Poisson(mean) quantile at u by stepping from the guess ``count`` (float64 tensors).

    The CDF at the guess comes from the regularised incomplete gamma function
    ``P(X <= k) = Q(k + 1, rate)`` and its probability from ``rate^k e^-rate / k!``; k steps up
    while ``u > P(X <= k)`` and down while ``u <= P(X <= k - 1)``, at most
    ``POISSON_CORRECTION_STEPS`` = 6 steps each way (the Cornish-Fisher guess is never further
    off for u in [1e-7, 1 - 1e-7]).
    """
    cdf = torch.special.gammaincc(count + 1.0, mean)
    mass = torch.exp(count * mean.log() - mean - torch.special.gammaln(count + 1.0))
    for _ in range(POISSON_CORRECTION_STEPS):
        up = u > cdf
        if not up.any():
            break
        count = count + up.to(count.dtype)
        mass = torch.where(up, mass * mean / count, mass)
        cdf = torch.where(up, cdf + mass, cdf)
    for _ in range(POISSON_CORRECTION_STEPS):
        down = (count > 0) & (u <= cdf - mass)
        if not down.any():
            break
        cdf = torch.where(down, cdf - mass, cdf)
        mass = torch.where(down, mass * count / mean, mass)
        count = count - down.to(count.dtype)
    return count


class PoissonTable(NamedTuple):
    """Poisson CDFs on a rate grid of ``step``, (rows, counts): ``bounds[j, k]`` packs
    ``P_{j step}(X <= k - 1)`` as its real and ``P_{(j + 1) step}(X <= k)`` as its imaginary
    part (complex128, so one gather fetches both)."""

    step: float
    bounds: torch.Tensor


@lru_cache(maxsize=16)
def poisson_table(top: float) -> PoissonTable:
    """The ``PoissonTable`` for rates 0 ... ``top`` (a power of two) in ``POISSON_TABLE_ROWS``
    steps of ``h = top / POISSON_TABLE_ROWS`` (a power of two too, so ``j h`` and ``rate / h``
    are exact).

    The CDFs are ``P(X <= k) = Q(k + 1, j h)``, the function ``poisson_steps`` uses, with
    ``P(X <= -1) = 0``, for k up to ``top + 6 sqrt(top) + 8``: past the Cornish-Fisher guess
    ``rate + 5.2 sqrt(rate) + 4.4`` for rates <= top and u <= 1 - 1e-7 (z <= 5.2).
    """
    step = top / POISSON_TABLE_ROWS
    rates = torch.arange(POISSON_TABLE_ROWS + 1, dtype=torch.float64).view(-1, 1) * step
    counts = torch.arange(math.ceil(top + 6.0 * math.sqrt(top) + 8.0) + 1, dtype=torch.float64)
    cdf = torch.special.gammaincc(counts, rates).where(counts > 0, 0.0)
    return PoissonTable(step, torch.complex(cdf[:-1, :-1], cdf[1:, 1:]))


def table_settles(mean: torch.Tensor, u: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
    """Where ``guess`` is certainly the Poisson(mean) quantile at u (float64), by the rate grid
    alone; mean >= 0 and guess from ``cornish_fisher_start``.

    P(X <= k) falls as the rate grows, so for a rate in ``[j h, (j + 1) h]`` the guess k is the
    quantile when ``P_{j h}(X <= k - 1) < u <= P_{(j + 1) h}(X <= k)``: one table look-up, no
    special function. A fraction ``h`` of uniforms falls between the two rows' quantiles (the
    rows' mean counts differ by h) and stays unsettled (False), as does every value when the
    rates exceed ``POISSON_TABLE_MAX_RATE`` = 512 (which bounds the table's size).
    """
    largest = float(mean.max()) if mean.numel() else 0.0
    if not 0.0 < largest <= POISSON_TABLE_MAX_RATE:
        return torch.zeros_like(u, dtype=torch.bool)
    table = poisson_table(2.0 ** math.ceil(math.log2(largest)))
    rows, width = table.bounds.shape
    row = (mean / table.step).floor().clamp_max(rows - 1)
    bounds = table.bounds.to(mean.device).take((row * width + guess).long())
    return (bounds.real < u) & (u <= bounds.imag)


def poisson_quantile(rate: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Poisson(rate) counts from uniforms ``u`` by exact inversion, one uniform per value.

    The count is the smallest k with ``P(X <= k) >= u``, u clamped to [1e-7, 1 - 1e-7]. Guess
    it (``cornish_fisher_start``, in the rates' dtype); where the rate grid of ``poisson_table``
    brackets the guess (``table_settles``, most values) it is the count, elsewhere
    ``poisson_steps`` corrects the float64 guess with the incomplete gamma function. Both decide
    by the same CDF values up to float rounding, so they differ only where u ties a CDF value
    within ~1e-15. ``POISSON_CHUNK`` values at a time (their temporaries stay in cache); rates
    <= 0 give 0.
    """
    rates, uniforms = rate.reshape(-1), u.reshape(-1)
    counts = torch.empty(rates.numel(), dtype=torch.float64, device=rate.device)
    unsettled = []
    for first in range(0, rates.numel(), POISSON_CHUNK):
        mean, uniform = rates[first : first + POISSON_CHUNK], uniforms[first : first + POISSON_CHUNK]
        positive = mean > 0
        mean = mean.where(positive, 0.0)
        guess = cornish_fisher_start(mean, uniform.clamp(1e-7, 1.0 - 1e-7).to(mean.dtype))
        counts[first : first + POISSON_CHUNK] = guess.where(positive, 0.0)
        exact_u = uniform.to(torch.float64).clamp(1e-7, 1.0 - 1e-7)
        unsettled.append(first + (positive & ~table_settles(mean, exact_u, guess)).nonzero().squeeze(1))
    if unsettled:
        open_ = torch.cat(unsettled)
        mean = rates[open_].to(torch.float64)
        uniform = uniforms[open_].to(torch.float64).clamp(1e-7, 1.0 - 1e-7)
        counts[open_] = poisson_steps(mean, uniform, cornish_fisher_start(mean, uniform))
    return counts.view(rate.shape)


@corruption("noise", is_random=True, small=(0.04, 0.06, 0.08, 0.09, 0.10),
            medium=(0.04, 0.08, 0.12, 0.15, 0.18), large=(0.08, 0.12, 0.18, 0.26, 0.38))
def gaussian_noise(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Additive Gaussian noise; table: sigma (CIFAR-10-C .04-.10, ImageNet-C .08-.38)."""
    sigma, _ = level
    return additive_gaussian(images, sigma, rng)


@corruption("noise", is_random=True, small=(500, 250, 100, 75, 50), medium=(250, 100, 50, 30, 15), large=(60, 25, 12, 5, 3))
def shot_noise(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Photon noise ``clip(Poisson(lambda x) / lambda, 0, 1)``; table: photons per unit intensity lambda."""
    photons, _ = level
    counts = poisson_quantile(images * photons, _uniform(rng, images))
    return (counts / photons).to(images.dtype).clamp_(0.0, 1.0)


@corruption("noise", is_random=True, small=(0.01, 0.02, 0.03, 0.05, 0.07),
            medium=(0.01, 0.02, 0.05, 0.08, 0.14), large=(0.03, 0.06, 0.09, 0.17, 0.27))
def impulse_noise(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Salt-and-pepper noise; table: the fraction of values replaced."""
    return salt_pepper(images, level.row, rng)


@corruption("noise", is_random=True, held_out=True, small=(0.06, 0.1, 0.12, 0.16, 0.2),
            medium=(0.15, 0.2, 0.25, 0.3, 0.35), large=(0.15, 0.2, 0.35, 0.45, 0.6))
def speckle_noise(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Multiplicative noise ``clip(x + x sigma z, 0, 1)``, z standard normal; table: sigma."""
    sigma, _ = level
    return (images + images * sigma * _normal(rng, images)).clamp_(0.0, 1.0)
