"""Noise: additive threats at a given strength and the four ImageNet-C noise corruptions.

Every value (pixel and channel) gets its own draw; all draws come from the ``ExampleRNG``.
"""

from __future__ import annotations

import math

import torch

from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.rng import ExampleRNG

POISSON_EXACT_MAX_RATE = 12.0
POISSON_EXACT_TERMS = 40


def _draw(rng: ExampleRNG, images: torch.Tensor, kind: str) -> torch.Tensor:
    """One uniform [0, 1) or standard normal draw per value, on the images' device and dtype."""
    sample = rng.rand if kind == "uniform" else rng.randn
    return sample(*images.shape[1:]).to(images)


def additive_gaussian(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + strength * z, 0, 1)``, z standard normal; ``strength`` is sigma in intensity units."""
    return (images + strength * _draw(rng, images, "normal")).clamp(0.0, 1.0)


def additive_uniform(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """``clip(x + u, 0, 1)``, u uniform in [-strength, strength); ``strength`` is the half-width."""
    return (images + strength * (2.0 * _draw(rng, images, "uniform") - 1.0)).clamp(0.0, 1.0)


def salt_pepper(images: torch.Tensor, strength: float, rng: ExampleRNG) -> torch.Tensor:
    """Each value becomes 0 or 1 (even odds) with probability ``strength`` (scikit-image ``s&p``)."""
    hit = _draw(rng, images, "uniform") < strength
    salt = _draw(rng, images, "uniform") < 0.5
    return torch.where(hit, salt.to(images.dtype), images)


def poisson_quantile(rate: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Poisson(rate) counts from uniforms ``u`` by inversion, one uniform per value.

    Rates up to ``POISSON_EXACT_MAX_RATE`` = 12 use the exact inverse CDF summed over the first
    ``POISSON_EXACT_TERMS`` = 40 terms (the tail beyond holds < 1e-8 of the mass); larger rates the
    Cornish-Fisher quantile ``round(rate + sqrt(rate) z + (z^2 - 1) / 6)``, z = Phi^-1(u), which
    is within one count of the exact quantile there.
    """
    u = u.clamp(1e-7, 1.0 - 1e-7)
    z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    counts = torch.round(rate + rate.sqrt() * z + (z * z - 1.0) / 6.0).clamp_min(0.0)
    small = rate <= POISSON_EXACT_MAX_RATE
    low_rate, low_u = rate[small], u[small]
    term = torch.exp(-low_rate)
    cdf = term.clone()
    exact = torch.zeros_like(low_rate)
    for k in range(1, POISSON_EXACT_TERMS + 1):
        exact += low_u > cdf
        term = term * low_rate / k
        cdf = cdf + term
    counts[small] = exact
    return counts


def gaussian_noise(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Additive Gaussian noise, sigma from the table (ImageNet-C .08-.38, CIFAR-10-C .04-.10)."""
    sigma, _ = level("gaussian_noise", severity, images)
    return additive_gaussian(images, sigma, rng)


def shot_noise(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Photon noise ``clip(Poisson(lambda x) / lambda, 0, 1)``, lambda from the table."""
    photons, _ = level("shot_noise", severity, images)
    counts = poisson_quantile(images * photons, _draw(rng, images, "uniform"))
    return (counts / photons).clamp(0.0, 1.0)


def impulse_noise(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Salt-and-pepper noise on the table's fraction of values."""
    amount, _ = level("impulse_noise", severity, images)
    return salt_pepper(images, amount, rng)


def speckle_noise(images: torch.Tensor, severity: int, rng: ExampleRNG) -> torch.Tensor:
    """Multiplicative noise ``clip(x + x sigma z, 0, 1)``, z standard normal, sigma from the table."""
    sigma, _ = level("speckle_noise", severity, images)
    return (images + images * sigma * _draw(rng, images, "normal")).clamp(0.0, 1.0)
