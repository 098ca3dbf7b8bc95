"""Wall time of the command line's fast paths, each in a fresh process, against the 1.5 s target.

Usage: python bench/startup.py [--repeats N] [--target S]

Runs ``bilat-eval --help``, ``bilat-eval --version`` and ``bilat-eval list variants`` N times each
(default 7), every run a new ``python -m cli`` process, and ``python -c pass`` beside them as the
floor of any Python start. Prints per command the median and minimum wall time in seconds and the
ratio median / target. On a loaded machine the minimum is the better estimate of the unloaded time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "bilat-eval --help": [sys.executable, "-m", "cli", "--help"],
    "bilat-eval --version": [sys.executable, "-m", "cli", "--version"],
    "bilat-eval list variants": [sys.executable, "-m", "cli", "list", "variants"],
}


def wall_times(command: list[str], repeats: int) -> list[float]:
    """Seconds each of ``repeats`` runs of ``command`` took, start to exit; a failed run stops the bench."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command")
    parser.add_argument("--target", type=float, default=1.5, help="target wall time in seconds")
    args = parser.parse_args()
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'median/target':>14}")
    for name, command in COMMANDS.items():
        times = wall_times(command, args.repeats)
        median = statistics.median(times)
        print(f"{name:<26} {median:>9.3f} {min(times):>7.3f} {median / args.target:>14.2f}")


if __name__ == "__main__":
    main()
