"""Throughput of the 19 common corruptions at severity 3, batched torch on CPU, side by side
with the reference code.

Sets: the first 1,000 Fashion-MNIST test images (28 px, grey, CIFAR-10-C tables) and 100
random-ish 224 px RGB images (random crops, flips and gains of matplotlib's sample photograph,
ImageNet-C tables). Each corruption runs once to warm up, then ``--repeats`` times on the whole
set; the table shows the median per image, ``ExampleRNG`` construction included.

Reference: ``imagecorruptions`` 1.1.2 (Hendrycks' NumPy code, one image per call), which needs
numpy < 2 and so lives in its own environment (``make reference`` builds ``.venv-reference``).
``bench/reference/time_corruptions.py`` runs there as a subprocess (``--reference-python``) on
the first ``--reference-count`` images of each set, handed over as uint8 arrays in a temporary
.npz file; it refuses images under 32 px, so Fashion-MNIST goes to it zero-padded to 32 px.
Speed-up = reference ms / harness ms per image; corruptions the reference fails on are marked
``fails[k]``, with the error listed under the table.

Targets: no corruption slower than 1 ms per 28 px image; at 224 px every corruption at least as
fast as the reference and the geometric mean of the speed-ups >= 5; at 28/32 px a geometric
mean >= 10 (over the corruptions that run on grey images).

Run: ``make bench-reference``, or ``OMP_NUM_THREADS=2 .venv/bin/python bench/corruptions.py``
(``--skip-reference`` for the harness alone).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_bilateral.corruptions import CORRUPTIONS, apply_corruption
from robustbench_bilateral.data.fmnist import read_idx
from robustbench_bilateral.paths import fmnist_dir
from robustbench_bilateral.rng import ExampleRNG

SEVERITY = 3
TARGET_MS_28PX = 1.0
REFERENCE_MIN_SIZE = 32
ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-reference" / "bin" / "python"
REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference" / "time_corruptions.py"
SET_LABELS = {"28px": "28/32 px", "224px": "224 px"}
TARGET_GEOMEAN = {"28px": 10.0, "224px": 5.0}
EVERY_FASTER_SET = "224px"

Timing = float | str
"""Milliseconds per image, or the error the reference raised."""


def fmnist_images(count: int) -> torch.Tensor:
    """The first ``count`` Fashion-MNIST test images, float (N, 1, 28, 28) in [0, 1]."""
    raw = read_idx(fmnist_dir() / "t10k-images-idx3-ubyte.gz")[:count]
    return torch.from_numpy(raw.copy()).float().div(255.0).unsqueeze(1)


def photo_images(count: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    """``count`` RGB (size x size) crops of matplotlib's sample photograph, each with a random
    crop (60-100 % of the short side), horizontal flip and gain in [0.7, 1.3]."""
    from matplotlib import cbook
    from matplotlib.image import imread

    photo = torch.from_numpy(imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).copy())
    photo = photo.permute(2, 0, 1).float() / 255.0
    generator = torch.Generator().manual_seed(seed)
    crops = []
    for _ in range(count):
        side = int(min(photo.shape[1:]) * (0.6 + 0.4 * torch.rand((), generator=generator).item()))
        top = int(torch.randint(0, photo.shape[1] - side + 1, (), generator=generator))
        left = int(torch.randint(0, photo.shape[2] - side + 1, (), generator=generator))
        crop = photo[:, top : top + side, left : left + side]
        crop = crop.flip(-1) if torch.rand((), generator=generator) < 0.5 else crop
        gain = 0.7 + 0.6 * torch.rand((), generator=generator).item()
        crops.append(F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True)[0] * gain)
    return torch.stack(crops).clamp(0.0, 1.0)


def harness_ms(name: str, images: torch.Tensor, repeats: int) -> float:
    """Median wall time (ms) per image of one batched call on all images, after a warm-up call."""
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        apply_corruption(name, images, SEVERITY, ExampleRNG(run, range(len(images))))
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times[1:]) / len(images)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] to uint8 (N, H, W) grey or (N, H, W, 3) RGB, zero-padded (centred)
    to at least 32 px a side."""
    pad_h = max(0, REFERENCE_MIN_SIZE - images.shape[2])
    pad_w = max(0, REFERENCE_MIN_SIZE - images.shape[3])
    padded = F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    arrays = (padded * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return arrays[..., 0] if arrays.shape[-1] == 1 else arrays


def reference_timings(python: Path, sets: dict[str, np.ndarray], names: list[str]) -> dict[str, dict[str, Timing]] | str:
    """``{set: {corruption: Timing}}`` from ``time_corruptions.py`` run by ``python``, or why not."""
    if not python.is_file():
        return f"reference: {python} not found; build it with `make reference` (or pass --reference-python PATH)"
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "images.npz"
        np.savez(archive, **sets)
        command = [str(python), str(REFERENCE_SCRIPT), str(archive), "--names", ",".join(names), "--severity", str(SEVERITY)]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return f"reference: {REFERENCE_SCRIPT.name} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def speedup(reference: Timing | None, harness: float | None) -> float | None:
    """Reference ms / harness ms, None where either is missing or the reference failed."""
    return reference / harness if isinstance(reference, float) and harness else None


def geometric_mean(values: list[float]) -> float:
    """``exp(mean(log v))``; nan for no values."""
    return math.exp(statistics.fmean(math.log(value) for value in values)) if values else math.nan


def cell(value: float | None, width: int, digits: int) -> str:
    """``value`` right-aligned in ``width`` with ``digits`` decimals, or ``-`` when missing."""
    return f"{'-':>{width}s}" if value is None else f"{value:>{width}.{digits}f}"


def reference_cell(timing: Timing | None, failures: list[str], width: int) -> str:
    """A reference time, ``-`` when missing, or ``fails[k]`` with the error added to ``failures``."""
    if timing is None or isinstance(timing, float):
        return cell(timing, width, 3)
    if timing not in failures:
        failures.append(timing)
    return f"{f'fails[{failures.index(timing) + 1}]':>{width}s}"


def print_table(
    harness: dict[str, dict[str, float]], reference: dict[str, dict[str, Timing]]
) -> dict[str, dict[str, float]]:
    """One line per corruption: harness and reference ms/image and speed-up per set; returns the
    speed-ups ``{set: {corruption: x}}``."""
    header = "".join(f"  {SET_LABELS[key] + ': ours':>14s} {'reference':>10s} {'speed-up':>9s}" for key in harness)
    print(f"{'ms/image':18s}{header}")
    failures: list[str] = []
    speedups: dict[str, dict[str, float]] = {key: {} for key in harness}
    for name in CORRUPTIONS:
        line = f"{name:18s}"
        for key, times in harness.items():
            ours, theirs = times.get(name), reference.get(key, {}).get(name)
            ratio = speedup(theirs, ours)
            if ratio is not None:
                speedups[key][name] = ratio
            shown = f"{'(RGB only)':>14s}" if ours is None else cell(ours, 14, 3)
            line += f"  {shown} {reference_cell(theirs, failures, 10)} {cell(ratio, 8, 1)}{'x' if ratio else ' '}"
        print(line, flush=True)
    for number, failure in enumerate(failures, start=1):
        print(f"[{number}] imagecorruptions raised {failure}")
    return speedups


def print_verdicts(harness: dict[str, dict[str, float]], speedups: dict[str, dict[str, float]]) -> None:
    """The 28 px ms/image target, and where the reference was timed the speed-up targets."""
    slowest = max(harness["28px"].items(), key=lambda item: item[1])
    verdict = "meets" if slowest[1] <= TARGET_MS_28PX else "MISSES"
    print(f"slowest at 28 px: {slowest[0]} {slowest[1]:.3f} ms/img -> {verdict} the {TARGET_MS_28PX} ms/img target")
    for key, ratios in speedups.items():
        if not ratios:
            continue
        mean = geometric_mean(list(ratios.values()))
        verdict = "meets" if mean >= TARGET_GEOMEAN[key] else "MISSES"
        print(f"geometric mean speed-up at {SET_LABELS[key]}: {mean:.1f}x over {len(ratios)} corruptions "
              f"-> {verdict} the {TARGET_GEOMEAN[key]:.0f}x target")
    slower = [name for name, ratio in speedups[EVERY_FASTER_SET].items() if ratio < 1.0]
    if speedups[EVERY_FASTER_SET]:
        verdict = "meets" if not slower else f"MISSES ({', '.join(slower)} slower)"
        print(f"every corruption at {SET_LABELS[EVERY_FASTER_SET]} at least as fast as the reference -> {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per corruption (default 3)")
    parser.add_argument("--fmnist-count", type=int, default=1000)
    parser.add_argument("--photo-count", type=int, default=100)
    parser.add_argument("--reference-count", type=int, default=20, help="images per set for the reference")
    parser.add_argument("--reference-python", type=Path, default=REFERENCE_PYTHON,
                        help="python of the reference environment (default .venv-reference/bin/python)")
    parser.add_argument("--skip-reference", action="store_true", help="do not time the reference")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sets = {"28px": fmnist_images(args.fmnist_count), "224px": photo_images(args.photo_count)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), severity {SEVERITY}; "
          f"28px: {len(sets['28px'])} Fashion-MNIST images, 224px: {len(sets['224px'])} RGB images")
    harness = {key: {name: harness_ms(name, images, args.repeats)
                     for name, entry in CORRUPTIONS.items() if not (entry.colour_only and images.shape[1] == 1)}
               for key, images in sets.items()}
    reference: dict[str, dict[str, Timing]] | str = "reference: skipped (--skip-reference)"
    if not args.skip_reference:
        arrays = {key: to_uint8(images[: args.reference_count]) for key, images in sets.items()}
        reference = reference_timings(args.reference_python, arrays, list(CORRUPTIONS))
    if isinstance(reference, str):
        print(reference)
    else:
        print(f"reference: imagecorruptions 1.1.2 in {args.reference_python}, {args.reference_count} images per set, "
              "one call each; 28 px images zero-padded to 32 px")
    speedups = print_table(harness, {} if isinstance(reference, str) else reference)
    print_verdicts(harness, speedups)


if __name__ == "__main__":
    main()
