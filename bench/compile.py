"""Whether ``--compile`` (torch.compile) pays: the real ``attack`` command with and without it.

Runs ``bilat-eval --out TMP [--compile] attack --pgd --eps 4/255 --schedule S --n-examples N CHECKPOINT``
in child processes (PGD-20, batches of 256) for each ``--schedules`` S and ``--sizes`` N, eager
and compiled in turn, and prints their wall times (process start and imports included) and the
ratio eager / compiled (> 1: compiling is faster). A compiled model runs its batches one after the
other (``engine.runner``), so under ``early-exit`` it gives up the parallel batches of an eager model.
The gap between the compiled run's times at two sizes, against the eager one's, shows the compile's
fixed cost and its speed per image. The checkpoint is ``--checkpoint``, by default the quick
Fashion-MNIST softmax ViT of ``make demo``.

Run: ``.venv/bin/python bench/compile.py [--checkpoint PATH] [--sizes 200,2000]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK_CHECKPOINT = Path("results/checkpoints/fmnist/quick/softmax-seed0/model.safetensors")


def attack_seconds(checkpoint: str, schedule: str, n: int, compiled: bool) -> float:
    """Wall seconds of one ``bilat-eval attack --pgd`` child process on a fresh output folder."""
    command = [str(Path(sys.executable).parent / "bilat-eval"), "--quiet", "--out", tempfile.mkdtemp(),
               *(["--compile"] if compiled else []), "attack", "--pgd", "--eps", "4/255", "--schedule", schedule,
               "--n-examples", str(n), checkpoint]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(QUICK_CHECKPOINT))
    parser.add_argument("--sizes", default="200,2000", help="Images per run, comma-separated.")
    parser.add_argument("--schedules", default="early-exit", help="Schedules, comma-separated (early-exit, full).")
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        sys.exit(f"error: no checkpoint {args.checkpoint}: run `make demo` or pass --checkpoint PATH")
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"bilat-eval attack --pgd --eps 4/255 (PGD-20, batch 256) on {args.checkpoint}: wall seconds per command")
    print(f"{'schedule':11} {'images':>7} {'eager':>8} {'--compile':>10} {'eager / compiled':>17}")
    for schedule in args.schedules.split(","):
        for n in sizes:
            eager = attack_seconds(args.checkpoint, schedule, n, compiled=False)
            compiled = attack_seconds(args.checkpoint, schedule, n, compiled=True)
            print(f"{schedule:11} {n:7d} {eager:8.1f} {compiled:10.1f} {eager / compiled:17.2f}", flush=True)


if __name__ == "__main__":
    main()
