"""Golden files for ``tests/test_corruption_reference.py``: the reference corruptions on fixed photos.

Run in the reference environment (``make golden``, which builds ``.venv-reference`` with
``make reference``)::

    .venv-reference/bin/python bench/reference/make_corruption_golden.py --hendrycks PATH

Inputs: four square crops of scikit-learn's two sample photographs (``china.jpg`` and
``flower.jpg``, two crops each), resized with Pillow's Lanczos filter to 224 px and to 32 px
and stored as uint8 in the golden file, so the test needs neither scikit-learn nor a resize.

References:

- 224 px: ``imagecorruptions`` 1.1.2 (``corrupt``, ImageNet-C constants), the package the
  harness follows at ImageNet size.
- 32 px: the functions of Hendrycks' ``make_cifar_c.py`` (CIFAR-10-C constants), read from a
  local checkout of https://github.com/hendrycks/robustness given as ``--hendrycks PATH``
  (nothing of it is committed). ``imagecorruptions`` has only the ImageNet-C constants, and
  substituting the CIFAR ones would mean rewriting each of its functions here; running the
  original script's functions keeps the reference the reference. The script's module body loads
  CIFAR-10 from the authors' cluster, so only its function definitions are executed, in a
  namespace with the modules they use. Its motion blur and snow call ImageMagick through Wand,
  which needs a system ImageMagick; ``MotionImage`` is supplied instead by ``imagecorruptions``'
  NumPy port of ImageMagick's motion blur (``_motion_blur``, the kernel and angle convention
  1.1.2 uses at 224 px too). Its frost reads ``./frost*.png`` and runs in the package's frost
  folder (the same six photos). Both references call ``skimage.filters.gaussian(...,
  multichannel=True)``, which scikit-image 0.20 (the oldest with Python 3.11 wheels here)
  spells ``channel_axis=-1``; ``skimage_compat.gaussian`` translates, for both.

Outputs, in ``tests/data/corruptions_golden/golden.npz`` (uint8 images, float32 statistics):

- ``inputs_<size>``: (4, size, size, 3) uint8 photos.
- ``output_<size>_<name>``: deterministic corruptions, (5 severities, 4, ...) uint8 outputs as
  the reference saves them (``np.uint8``, truncating); at 224 px only the pixels on the
  ``sample_224`` grid (56 rows and columns from 0 to 223, borders included) to keep the file small.
- ``stats_<size>_<name>``: random corruptions, (5, 4 images, draws, 3) float32 per-output
  change statistics on the 8-bit values d = (out - in) / 255: mean |d|, std of d and the
  fraction of values with d != 0, from ``DRAWS`` outputs per image (``MORE_DRAWS`` for frost,
  snow and spatter, whose draws vary most), a different seed for every output.
- ``meta``: a JSON string with the versions used and the seed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import scipy.ndimage
import skimage as sk
import sklearn.datasets
from imagecorruptions import corrupt
from imagecorruptions import corruptions as ic
from skimage_compat import gaussian, install

SEED = 20240
SIZES = (32, 224)
DRAWS = 8
# Frost's photo choice (five photos, mean values 123 to 207), snow's sparse flakes and spatter's rare drops vary most between draws.
MORE_DRAWS = {"frost": 96, "snow": 32, "spatter": 32}
SAMPLE_224 = np.linspace(0, 223, 56).round().astype(np.int64)
DETERMINISTIC = ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression", "gaussian_blur", "saturate")
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow", "frost", "fog",
          "elastic_transform", "speckle_noise", "spatter")
CROPS = (("china.jpg", 0.0), ("china.jpg", 1.0), ("flower.jpg", 0.0), ("flower.jpg", 1.0))
OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "corruptions_golden" / "golden.npz"


def photos(size: int) -> np.ndarray:
    """(4, size, size, 3) uint8: square crops (left/top and right/bottom end) of the sample photos."""
    images = dict(zip(sklearn.datasets.load_sample_images().filenames, sklearn.datasets.load_sample_images().images))
    crops = []
    for name, where in CROPS:
        image = next(pixels for path, pixels in images.items() if Path(path).name == name)
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = round(where * (height - side)), round(where * (width - side))
        square = PIL.Image.fromarray(image[top:top + side, left:left + side])
        crops.append(np.asarray(square.resize((size, size), PIL.Image.LANCZOS)))
    return np.stack(crops)


class NumpyMotionImage:
    """Stand-in for ``make_cifar_c.py``'s Wand ``MotionImage``: PNG blob in, PNG blob out."""

    def __init__(self, blob: bytes) -> None:
        self.pixels = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)

    def motion_blur(self, radius: float = 0.0, sigma: float = 0.0, angle: float = 0.0) -> None:
        blurred = ic._motion_blur(self.pixels, radius=radius, sigma=sigma, angle=angle)
        self.pixels = np.clip(blurred, 0, 255).round().astype(np.uint8)

    def make_blob(self) -> bytes:
        return cv2.imencode(".png", self.pixels)[1].tobytes()


def cifar_functions(checkout: Path) -> dict:
    """The corruption functions of ``make_cifar_c.py``, executed without its module body."""
    source = (checkout / "ImageNet-C" / "create_c" / "make_cifar_c.py").read_text()
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace: dict = {"np": np, "sk": sk, "gaussian": gaussian, "BytesIO": io.BytesIO, "cv2": cv2,
                       "PILImage": PIL.Image, "Image": PIL.Image, "scizoom": scipy.ndimage.zoom,
                       "map_coordinates": scipy.ndimage.map_coordinates, "MotionImage": NumpyMotionImage}
    exec(compile(tree, str(checkout / "make_cifar_c.py"), "exec"), namespace)
    return namespace


def frost_folder() -> Path:
    return Path(str(importlib.metadata.distribution("imagecorruptions").locate_file("imagecorruptions/frost")))


def run(size: int, name: str, image: np.ndarray, severity: int, functions: dict | None) -> np.ndarray:
    """The reference output, uint8 (H, W, 3), as the reference saves it."""
    if size == 224:
        return np.asarray(corrupt(image, corruption_name=name, severity=severity))
    assert functions is not None
    with contextlib.chdir(frost_folder()):
        out = functions[name](PIL.Image.fromarray(image), severity)
    return np.uint8(out)


def change_statistics(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(mean |d|, std of d, fraction of d != 0) for d = (out - in) / 255."""
    change = (out.astype(np.float64) - image.astype(np.float64)) / 255.0
    return np.array([np.abs(change).mean(), change.std(), (change != 0).mean()], dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hendrycks", type=Path, required=True, help="local checkout of hendrycks/robustness")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", help="comma-separated corruptions to recompute in an existing --out file, the rest kept")
    args = parser.parse_args()
    install()
    functions = cifar_functions(args.hendrycks)
    arrays: dict[str, np.ndarray] = {"sample_224": SAMPLE_224}
    only = set(args.only.split(",")) if args.only else None
    if only is not None:
        with np.load(args.out) as previous:
            arrays.update({key: previous[key] for key in previous.files})
    for size in SIZES:
        images = photos(size)
        arrays[f"inputs_{size}"] = images
        for name in DETERMINISTIC:
            if only is not None and name not in only:
                continue
            outputs = np.stack([np.stack([run(size, name, image, s, functions) for image in images]) for s in range(1, 6)])
            if size == 224:
                outputs = outputs[:, :, SAMPLE_224][:, :, :, SAMPLE_224]
            arrays[f"output_{size}_{name}"] = outputs
            print(size, name, "done", flush=True)
        for name in RANDOM:
            if only is not None and name not in only:
                continue
            draws = MORE_DRAWS.get(name, DRAWS)
            stats = np.zeros((5, len(images), draws, 3), dtype=np.float32)
            for s in range(1, 6):
                for i, image in enumerate(images):
                    for draw in range(draws):
                        np.random.seed(SEED + 100_000 * s + 1000 * i + draw)
                        stats[s - 1, i, draw] = change_statistics(run(size, name, image, s, functions), image)
            arrays[f"stats_{size}_{name}"] = stats
            print(size, name, "done", flush=True)
    versions = {package: importlib.metadata.version(package)
                for package in ("imagecorruptions", "numpy", "scipy", "scikit-image", "opencv-python-headless", "Pillow")}
    arrays["meta"] = np.array(json.dumps({"seed": SEED, "versions": versions, "draws": DRAWS, "more_draws": MORE_DRAWS}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
