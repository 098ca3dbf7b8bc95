"""Our corruptions against the reference code (``imagecorruptions`` 1.1.2 at 224 px, Hendrycks'
``make_cifar_c.py`` at 32 px) on four photographs, from the golden file that
``bench/reference/make_corruption_golden.py`` writes (``make golden``).

Deterministic corruptions: PSNR of our output, truncated to 8 bits as the reference saves it,
against the reference output, all images and pixels (at 224 px the stored sample grid), one
value per severity, at least ``PSNR_FLOOR`` = 35 dB. Random corruptions: per-output change
statistics on the 8-bit values (mean |d|, std of d, fraction of values changed), averaged over
images and draws (a seed per severity), within ``STAT_TOLERANCE`` = 10 % of the reference's
(plus ``STAT_SLACK`` for values near 0). ``python tests/test_corruption_reference.py`` prints the whole table.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_bilateral.corruptions import SEVERITIES, apply_corruption
from robustbench_bilateral.corruptions.photos import FROST_INSTALL, frost_photo_paths
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.rng import ExampleRNG

GOLDEN = Path(__file__).parent / "data" / "corruptions_golden" / "golden.npz"
PSNR_FLOOR = 35.0
STAT_TOLERANCE, STAT_SLACK = 0.10, 1e-3
STATISTICS = ("mean abs d", "std d", "changed")
SIZES = (32, 224)
SEED = 7
# An 8-bit value k comes out of float32 arithmetic as k - 1e-5 at worst; truncating that would drop it by one.
TRUNCATION_SLACK = 1e-4


@lru_cache(maxsize=1)
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {key: data[key] for key in data.files}


def names(kind: str) -> list[str]:
    prefix = f"{kind}_32_"
    return sorted(key.removeprefix(prefix) for key in golden() if key.startswith(prefix))


def inputs(size: int) -> torch.Tensor:
    """The stored photos as a float (N, 3, size, size) batch in [0, 1]."""
    return torch.from_numpy(golden()[f"inputs_{size}"]).permute(0, 3, 1, 2).double().div(255.0).float()


def truncated(images: torch.Tensor) -> np.ndarray:
    """Float (N, 3, H, W) images as the reference saves them: ``np.uint8(255 x)``, (N, H, W, 3)."""
    return (images.double() * 255.0 + TRUNCATION_SLACK).floor().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def psnr(ours: np.ndarray, reference: np.ndarray) -> float:
    """``10 log10(255^2 / MSE)`` dB over every value; inf when equal."""
    mse = np.mean((ours.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@lru_cache(maxsize=None)
def deterministic_psnrs(name: str, size: int) -> tuple[float, ...]:
    """PSNR (dB) of ours against the reference, one per severity."""
    images, reference = inputs(size), golden()[f"output_{size}_{name}"]
    values = []
    for severity in SEVERITIES:
        ours = truncated(apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images)))))
        if size == 224:
            grid = golden()["sample_224"]
            ours = ours[:, grid][:, :, grid]
        values.append(psnr(ours, reference[severity - 1]))
    return tuple(values)


def change_statistics(out: np.ndarray, images: np.ndarray) -> np.ndarray:
    """(M, 3): mean |d|, std of d and the fraction of d != 0 per output, d = (out - in) / 255."""
    change = (out.astype(np.float64) - images.astype(np.float64)).reshape(len(out), -1) / 255.0
    return np.stack([np.abs(change).mean(axis=1), change.std(axis=1), (change != 0).mean(axis=1)], axis=1)


@lru_cache(maxsize=None)
def random_statistics(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ours, reference), each (5 severities, 3 statistics), averaged over images and draws."""
    reference = golden()[f"stats_{size}_{name}"]
    draws = reference.shape[2]
    images = inputs(size).repeat_interleave(draws, dim=0)
    stored = golden()[f"inputs_{size}"].repeat(draws, axis=0)
    ours = []
    for severity in SEVERITIES:
        out = apply_corruption(name, images, severity, ExampleRNG(SEED + severity, range(len(images))))
        ours.append(change_statistics(truncated(out), stored).mean(axis=0))
    return np.stack(ours), reference.mean(axis=(1, 2))


SLOW_224 = {"frost", "glass_blur", "shot_noise", "snow", "spatter"}


def _random_cases() -> list:
    cases = []
    for name in names("stats"):
        for size in SIZES:
            marks = [pytest.mark.slow] if size == 224 and name in SLOW_224 else []
            cases.append(pytest.param(name, size, marks=marks, id=f"{name}-{size}"))
    return cases


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", names("output"))
def test_deterministic_corruption_matches_the_reference(name, size):
    values = deterministic_psnrs(name, size)
    assert min(values) >= PSNR_FLOOR, f"{name} at {size} px: PSNR by severity {[round(v, 1) for v in values]} dB"


@pytest.mark.parametrize("name, size", _random_cases())
def test_random_corruption_changes_images_as_the_reference_does(name, size):
    ours, reference = random_statistics(name, size)
    off = np.abs(ours - reference) > STAT_TOLERANCE * np.abs(reference) + STAT_SLACK
    assert not off.any(), f"{name} at {size} px: ours {ours.round(4).tolist()} vs reference {reference.round(4).tolist()}"


def test_golden_file_covers_every_corruption_and_stays_small():
    from robustbench_bilateral.corruptions import CORRUPTIONS

    assert sorted(names("output") + names("stats")) == sorted(CORRUPTIONS)
    assert GOLDEN.stat().st_size < 5_000_000


def test_missing_frost_photos_name_the_install_command():
    with pytest.raises(InputError) as error:
        frost_photo_paths("imagecorruptions-not-installed")
    assert FROST_INSTALL in str(error.value) and "\n" not in str(error.value)


def table() -> str:
    """The whole comparison as Markdown: PSNR per severity, or ours / reference per statistic."""
    lines = ["| corruption | size | severity | measure | ours | reference | verdict |", "|---|---|---|---|---|---|---|"]
    for name in names("output"):
        for size in SIZES:
            for severity, value in zip(SEVERITIES, deterministic_psnrs(name, size)):
                verdict = "pass" if value >= PSNR_FLOOR else "FAIL"
                lines.append(f"| {name} | {size} | {severity} | PSNR dB | {value:.1f} | - | {verdict} |")
    for name in names("stats"):
        for size in SIZES:
            ours, reference = random_statistics(name, size)
            for severity in SEVERITIES:
                for k, statistic in enumerate(STATISTICS):
                    mine, theirs = ours[severity - 1, k], reference[severity - 1, k]
                    ok = abs(mine - theirs) <= STAT_TOLERANCE * abs(theirs) + STAT_SLACK
                    lines.append(f"| {name} | {size} | {severity} | {statistic} | {mine:.4f} | {theirs:.4f} | {'pass' if ok else 'FAIL'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
