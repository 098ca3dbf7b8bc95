"""Peak resident memory of PGD-20 on the whole Fashion-MNIST test split (10,000 images): target <= 2 GB.

Runs the real command in a child process,
``bilat-eval --out TMP attack --pgd --eps 4/255 --n-examples 0 CHECKPOINT`` (PGD-20, the
default steps, batches of 256), and reads the child's peak resident set size from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (kilobytes on Linux). The checkpoint is
``--checkpoint``, by default the quick Fashion-MNIST softmax ViT of ``make demo``
(``QUICK_CHECKPOINT``). Printed: the wall time, the peak RSS in GB and whether it meets the target.

Run: ``.venv/bin/python bench/memory.py [--checkpoint PATH]``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK_CHECKPOINT = Path("results/checkpoints/fmnist/quick/softmax-seed0/model.safetensors")
TARGET_GB = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(QUICK_CHECKPOINT))
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        sys.exit(f"error: no checkpoint {args.checkpoint}: run `make demo` or pass --checkpoint PATH")
    command = [str(Path(sys.executable).parent / "bilat-eval"), "--quiet", "--out", tempfile.mkdtemp(), "attack", "--pgd",
               "--eps", "4/255", "--n-examples", "0", args.checkpoint]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    verdict = "meets" if peak_gb <= TARGET_GB else "misses"
    print(f"PGD-20 eps 4/255 on 10,000 Fashion-MNIST test images: {wall:.1f} s, peak RSS {peak_gb:.2f} GB "
          f"({verdict} the {TARGET_GB:g} GB target)")


if __name__ == "__main__":
    main()
