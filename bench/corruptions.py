"""Throughput of the 19 common corruptions at severity 3: images per second, batched torch on CPU.

Sets: the first 1,000 Fashion-MNIST test images (28 px, grey, CIFAR-10-C tables) and 100
random-ish 224 px RGB images (random crops, flips and gains of matplotlib's sample photograph,
ImageNet-C tables). Each corruption runs once to warm up, then ``--repeats`` times on the whole
set; the table shows the median, ``ExampleRNG`` construction included. Target: no corruption
slower than 1 ms per 28 px image.

Where the ``imagecorruptions`` package (Hendrycks' NumPy code, one image per call) is installed,
its per-image time is measured side by side on ``--reference-count`` images of each set. It
refuses images under 32 px, so Fashion-MNIST goes to it zero-padded to 32 px. Version 1.1.2
imports ``pkg_resources`` (gone from recent setuptools) only for the path of its frost pictures;
the bench then supplies that one function. Corruptions it fails on are marked ``fails[k]``, with
the error listed under the table.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/corruptions.py [--threads 2]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import types
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


def torch_seconds(name: str, images: torch.Tensor, repeats: int) -> float:
    """Median wall time (s) of one batched call on all images, after a warm-up call."""
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        apply_corruption(name, images, SEVERITY, ExampleRNG(run, range(len(images))))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def load_reference() -> tuple[types.ModuleType | None, str]:
    """The ``imagecorruptions`` module, or None with the reason it cannot be used."""
    if importlib.util.find_spec("imagecorruptions") is None:
        return None, "imagecorruptions is not installed (pip install imagecorruptions)"
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: str(Path(sys.modules[package].__file__).parent / name)
        sys.modules["pkg_resources"] = shim
    import imagecorruptions

    return imagecorruptions, ""


def to_uint8_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """(N, C, H, W) in [0, 1] to uint8 (H, W) or (H, W, 3) arrays, padded with zeros to >= 32 px."""
    pad_h = max(0, REFERENCE_MIN_SIZE - images.shape[2])
    pad_w = max(0, REFERENCE_MIN_SIZE - images.shape[3])
    padded = F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    arrays = (padded * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [array[..., 0] if array.shape[-1] == 1 else array for array in arrays]


def reference_seconds(module: types.ModuleType, name: str, arrays: list[np.ndarray]) -> float | str:
    """Mean seconds per image of ``imagecorruptions.corrupt``, or the error it raised."""
    np.random.seed(0)
    start = time.perf_counter()
    try:
        for array in arrays:
            module.corrupt(array, corruption_name=name, severity=SEVERITY)
    except Exception as error:  # noqa: BLE001 - any failure of the reference is reported, not raised
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return (time.perf_counter() - start) / len(arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per corruption (default 3)")
    parser.add_argument("--fmnist-count", type=int, default=1000)
    parser.add_argument("--photo-count", type=int, default=100)
    parser.add_argument("--reference-count", type=int, default=20, help="images per set for imagecorruptions")
    parser.add_argument("--skip-reference", action="store_true", help="do not time imagecorruptions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sets = {"28px": fmnist_images(args.fmnist_count), "224px": photo_images(args.photo_count)}
    module, reason = (None, "skipped (--skip-reference)") if args.skip_reference else load_reference()
    references = {key: to_uint8_arrays(images[: args.reference_count]) for key, images in sets.items()}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), severity {SEVERITY}; "
          f"28px: {len(sets['28px'])} Fashion-MNIST images, 224px: {len(sets['224px'])} RGB images")
    if module is None:
        print(f"imagecorruptions: {reason}")
    else:
        print(f"imagecorruptions {getattr(module, '__version__', '1.1.2')} with numpy {np.__version__}: "
              f"{args.reference_count} images per set, one call each; 28px images padded to 32px")
    header = f"{'corruption':18s} {'28px img/s':>11s} {'ms/img':>7s} {'224px img/s':>12s} {'ms/img':>7s}"
    if module is not None:
        header += f"  {'reference ms/img: 32px':>22s} {'224px':>7s}"
    print(header)
    slowest = ("", 0.0)
    failures: list[str] = []
    for name, entry in CORRUPTIONS.items():
        cells = []
        for key, images in sets.items():
            if entry.colour_only and images.shape[1] == 1:
                cells.append(f"{'(RGB only)':>19s}")
                continue
            per_image_ms = 1000 * torch_seconds(name, images, args.repeats) / len(images)
            if key == "28px" and per_image_ms > slowest[1]:
                slowest = (name, per_image_ms)
            width = 11 if key == "28px" else 12
            cells.append(f"{1000 / per_image_ms:>{width},.0f} {per_image_ms:>7.3f}")
        line = f"{name:18s} " + " ".join(cells)
        if module is not None:
            shown = []
            for key in sets:
                timing = reference_seconds(module, name, references[key])
                if isinstance(timing, float):
                    shown.append(f"{1000 * timing:.3f}")
                    continue
                if timing not in failures:
                    failures.append(timing)
                shown.append(f"fails[{failures.index(timing) + 1}]")
            line += f"  {shown[0]:>22s} {shown[1]:>7s}"
        print(line, flush=True)
    for number, failure in enumerate(failures, start=1):
        print(f"[{number}] imagecorruptions raised {failure}")
    verdict = "meets" if slowest[1] <= TARGET_MS_28PX else "MISSES"
    print(f"slowest at 28 px: {slowest[0]} {slowest[1]:.3f} ms/img -> {verdict} the {TARGET_MS_28PX} ms/img target")


if __name__ == "__main__":
    main()
