"""Noise: additive threats at a given strength and the four noise corruptions (speckle held out).

Every value (pixel and channel) gets its own draw; all draws come from the ``ExampleRNG``.
"""

from __future__ import annotations

import math

import torch

from robustbench_bilateral.corruptions.entry import additive_noise, corruption
from robustbench_bilateral.corruptions.severity import Level
from robustbench_bilateral.rng import ExampleRNG

POISSON_CORRECTION_STEPS = 6


def _uniform(rng: ExampleRNG, images: torch.Tensor) -> torch.Tensor:
    """One uniform [0, 1) draw per value, on the images' device and dtype."""
    return rng.rand(*images.shape[1:]).to(images)


def _normal(rng: ExampleRNG, images: torch.Tensor) -> torch.Tensor:
    """One standard normal draw per value, on the images' device and dtype."""
    return rng.randn(*images.shape[1:]).to(images)


@additive_noise("gaussian", unit="sigma")
def additive_gaussian(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + strength * z, 0, 1)``, z standard normal; ``strength`` is sigma in intensity units."""
    return (images + strength * _normal(rng, images)).clamp(0.0, 1.0)


@additive_noise("uniform", unit="half-width")
def additive_uniform(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + u, 0, 1)``, u uniform in [-strength, strength); ``strength`` is the half-width."""
    return (images + strength * (2.0 * _uniform(rng, images) - 1.0)).clamp(0.0, 1.0)


@additive_noise("salt_pepper", unit="fraction", max_strength=1.0)
def salt_pepper(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """Each value becomes 0 or 1 (even odds) with probability ``strength`` (scikit-image ``s&p``)."""
    hit = _uniform(rng, images) < strength
    salt = _uniform(rng, images) < 0.5
    return torch.where(hit, salt.to(images.dtype), images)


def poisson_quantile(rate: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Poisson(rate) counts from uniforms ``u`` by exact inversion, one uniform per value.

    The count is the smallest k with ``P(X <= k) >= u``. Start from the Cornish-Fisher quantile
    ``k0 = round(rate + sqrt(rate) z + (z^2 - 1) / 6)``, z = Phi^-1(u), take its CDF from the
    regularised incomplete gamma function ``P(X <= k) = Q(k + 1, rate)`` and its probability
    ``rate^k e^-rate / k!``, then step k up while ``u > P(X <= k)`` and down while
    ``u <= P(X <= k - 1)``, at most ``POISSON_CORRECTION_STEPS`` = 6 steps each way (the start is
    never further off for u in [1e-7, 1 - 1e-7]). Computed in float64 on the positive rates only;
    rate 0 gives 0.
    """
    counts = torch.zeros(rate.numel(), dtype=torch.float64, device=rate.device)
    positive = (rate.reshape(-1) > 0).nonzero().squeeze(1)
    mean = rate.reshape(-1)[positive].to(torch.float64)
    u = u.reshape(-1)[positive].to(torch.float64).clamp(1e-7, 1.0 - 1e-7)
    z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    count = torch.round(mean + mean.sqrt() * z + (z * z - 1.0) / 6.0).clamp_min(0.0)
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
    return counts.index_copy_(0, positive, count).view(rate.shape)


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
    return (counts / photons).to(images.dtype).clamp(0.0, 1.0)


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
    return (images + images * sigma * _normal(rng, images)).clamp(0.0, 1.0)
