"""Common corruptions (ImageNet-C's 15 and 4 held out, severities 1-5) and additive noises as
batched torch operations on (N, C, H, W) images in [0, 1].

Every random draw comes from an ``ExampleRNG``, so an example's corrupted image depends only on
(seed, example index), not on the batch it sits in. Each corruption is declared once, in its
group module next to its function, with its flags and its severity tables (``entry``); which
table serves an image size is stated in ``severity``. The registries are filled here, in the
order ``all`` lists them: the 15 ImageNet-C corruptions by group, then the 4 held out.
"""

from robustbench_bilateral.corruptions import blur, digital, noise, spatter, weather
from robustbench_bilateral.corruptions.entry import GROUPS, Corruption, Noise, additive_noise, corruption
from robustbench_bilateral.corruptions.registry import (
    CORRUPTIONS,
    NOISES,
    apply_corruption,
    apply_noise,
    resolve_corruptions,
)
from robustbench_bilateral.corruptions.severity import IMAGENET_MIN_SIZE, SEVERITIES, TINY_IMAGENET_MIN_SIZE, Level, regime_for

for _corruption in (
    *(noise.gaussian_noise, noise.shot_noise, noise.impulse_noise),
    *(blur.defocus_blur, blur.glass_blur, blur.motion_blur, blur.zoom_blur),
    *(weather.snow, weather.frost, weather.fog, weather.brightness),
    *(digital.contrast, digital.elastic_transform, digital.pixelate, digital.jpeg_compression),
    *(noise.speckle_noise, blur.gaussian_blur, spatter.spatter, digital.saturate),
):
    CORRUPTIONS.register(_corruption.name, _corruption)
for _noise in (noise.additive_gaussian, noise.additive_uniform, noise.salt_pepper):
    NOISES.register(_noise.name, _noise)

__all__ = [
    "CORRUPTIONS",
    "GROUPS",
    "IMAGENET_MIN_SIZE",
    "NOISES",
    "SEVERITIES",
    "TINY_IMAGENET_MIN_SIZE",
    "Corruption",
    "Level",
    "Noise",
    "additive_noise",
    "apply_corruption",
    "apply_noise",
    "corruption",
    "regime_for",
    "resolve_corruptions",
]
