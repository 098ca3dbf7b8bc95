"""Common corruptions (ImageNet-C's 15 and 4 held out, severities 1-5) and additive noises as
batched torch operations on (N, C, H, W) images in [0, 1].

Every random draw comes from an ``ExampleRNG``, so an example's corrupted image depends only on
(seed, example index), not on the batch it sits in. Which severity table applies to an image
size is stated in ``severity``.
"""

from robustbench_bilateral.corruptions.registry import (
    CORRUPTIONS,
    GROUPS,
    NOISES,
    Corruption,
    Noise,
    apply_corruption,
    apply_noise,
    resolve_corruptions,
)
from robustbench_bilateral.corruptions.severity import IMAGENET_MIN_SIZE, SEVERITIES, regime_for

__all__ = [
    "CORRUPTIONS",
    "GROUPS",
    "IMAGENET_MIN_SIZE",
    "NOISES",
    "SEVERITIES",
    "Corruption",
    "Noise",
    "apply_corruption",
    "apply_noise",
    "regime_for",
    "resolve_corruptions",
]
