"""Per-image time of the reference corruptions (``imagecorruptions`` 1.1.2, one image per call).

Run by ``bench/corruptions.py`` in the reference environment (``make reference`` builds
``.venv-reference``), which cannot share a process with the harness (it needs numpy < 2)::

    .venv-reference/bin/python bench/reference/time_corruptions.py IMAGES.npz --names a,b --severity 3

``IMAGES.npz`` holds one uint8 array per image set, (N, H, W) grey or (N, H, W, 3) RGB, at
least 32 px a side. Every corruption runs once untimed on a set's first image (imports, the
frost photos), then once on each image, with ``np.random.seed(0)`` before the timed loop;
``skimage_compat`` lets its Gaussian blurs run on scikit-image 0.20. Prints
one JSON object on stdout: ``{set: {corruption: ms per image, or "ErrorType: message"}}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from imagecorruptions import corrupt
from skimage_compat import install


def milliseconds_per_image(name: str, images: np.ndarray, severity: int) -> float | str:
    """Mean wall time (ms) of ``corrupt`` per image after one warm-up call, or the error it raised."""
    try:
        corrupt(images[0], corruption_name=name, severity=severity)
        np.random.seed(0)
        start = time.perf_counter()
        for image in images:
            corrupt(image, corruption_name=name, severity=severity)
    except Exception as error:  # noqa: BLE001 - any failure of the reference is reported, not raised
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return 1000.0 * (time.perf_counter() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help=".npz file with one uint8 image array per set")
    parser.add_argument("--names", required=True, help="comma-separated corruption names")
    parser.add_argument("--severity", type=int, default=3)
    args = parser.parse_args()
    install()
    with np.load(args.images) as data:
        sets = {key: data[key] for key in data.files}
    timings = {key: {name: milliseconds_per_image(name, images, args.severity) for name in args.names.split(",")}
               for key, images in sets.items()}
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
