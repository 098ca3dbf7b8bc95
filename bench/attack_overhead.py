"""Throughput of the harness under PGD against a bare torchattacks loop: images per second.

Both sides attack the same model: ``--checkpoint``, by default the quick Fashion-MNIST softmax ViT
of ``make demo`` when it exists (``QUICK_CHECKPOINT``), else a smoke-size ViT trained for seconds
on mnist5k (an attack so cheap that fixed costs weigh more), on the first ``--n`` test images of
the checkpoint's dataset, with L-inf PGD at eps 4/255, ``--steps`` steps
of 0.15 eps from a random start, ``--batch-size`` images per batch, on the CPU.

- harness: ``run_cells`` on a fresh store, i.e. everything a user pays for: loading the
  checkpoint and the split, clean predictions, the model sanity checks, PGD, predictions, the
  rows and outcomes written to SQLite, and the CSV / Markdown / JSON exports;
- bare: a loop over batches of the data already in memory that computes what the harness
  reports (robust accuracy, and success rate over the clean-correct examples): the model's clean
  prediction, ``torchattacks.PGD``, and the prediction on its output.

The two run alternately, ``--repeats`` times each after one warm-up pair. Each is timed by wall
clock and by the CPU time of this process (all its threads: the work done, which other processes
on a shared machine do not inflate); the table shows median throughputs (images per wall second
and per CPU second) and the median per-pair ratios harness / bare. Target: >= 0.95.

The wall time spent inside ``torchattacks.PGD.forward`` is clocked too, so the table also shows
each side's seconds outside the attack (what the harness adds) and the ratio
``(A + outside_bare) / (A + outside_harness)`` with ``A`` the median attack time of all runs: the
overhead without the drift of a shared machine's speed between runs.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/attack_overhead.py [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchattacks

from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.threats import build_threat

QUICK_CHECKPOINT = Path("results/checkpoints/fmnist/quick/softmax-seed0/model.safetensors")
EPS = 4 / 255
TARGET_RATIO = 0.95


class AttackClock:
    """Accumulates the wall seconds spent in ``torchattacks.PGD.forward`` while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._forward = torchattacks.PGD.forward

    def __enter__(self) -> AttackClock:
        clock, forward = self, self._forward

        def clocked(attack, *args, **kwargs):
            start = time.perf_counter()
            try:
                return forward(attack, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start

        torchattacks.PGD.forward = clocked
        return self

    def __exit__(self, *exc) -> None:
        torchattacks.PGD.forward = self._forward


def timed(work: Callable[[], tuple[int, int]]) -> tuple[float, float, float, tuple[int, int]]:
    """``(wall seconds, CPU seconds of this process, wall seconds inside PGD, result)`` of ``work()``."""
    with AttackClock() as clock:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        return time.perf_counter() - wall, time.process_time() - cpu, clock.seconds, result


def harness_counts(checkpoint: str, n: int, steps: int, batch_size: int, out: Path) -> tuple[int, int]:
    """``run_cells`` with one PGD cell on a fresh store; its counts: correct after the attack, and
    correct both before and after it."""
    info = describe_checkpoint(checkpoint)
    cells = plan_cells([info], [build_threat("pgd", eps=EPS, steps=steps, batch_size=batch_size)], n_examples=n)
    rows = run_cells(cells, out=out, run="bench", batch_size=batch_size, fresh=True)
    counts = {row.metric: row.n_correct for row in rows}
    return counts["accuracy"], counts["success_rate"]


def bare_counts(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
                batch_size: int) -> tuple[int, int]:
    """Clean prediction, torchattacks.PGD and prediction over the batches; the counts of ``harness_counts``."""
    attack = torchattacks.PGD(model, eps=EPS, alpha=0.15 * EPS, steps=steps, random_start=True)
    correct, still = 0, 0
    for start in range(0, len(labels), batch_size):
        batch, truth = images[start:start + batch_size], labels[start:start + batch_size]
        with torch.no_grad():
            clean = model(batch).argmax(-1) == truth
        adversarial = attack(batch, truth)
        with torch.no_grad():
            robust = model(adversarial).argmax(-1) == truth
        correct, still = correct + int(robust.sum()), still + int((robust & clean).sum())
    return correct, still


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(QUICK_CHECKPOINT) if QUICK_CHECKPOINT.exists() else None,
                        help="A .safetensors image checkpoint [default: the quick demo one, else train a smoke one].")
    parser.add_argument("--n", type=int, default=1000, help="Images attacked per measurement.")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from robustbench_bilateral.training import train

            checkpoint = str(train("mnist5k", "softmax", "smoke", Path(scratch) / "smoke").checkpoint)
        loaded = load_checkpoint(checkpoint)
        model = loaded.model.eval()
        dataset = loaded.meta["dataset"]
        images, labels = load_split(dataset, "test", args.n, loaded.meta)

        sides = {
            "harness": lambda: harness_counts(checkpoint, args.n, args.steps, args.batch_size, Path(scratch) / "out"),
            "bare": lambda: bare_counts(model, images, labels, args.steps, args.batch_size),
        }
        measured: dict[str, list[tuple[float, float, float, tuple[int, int]]]] = {name: [] for name in sides}
        for repeat in range(args.repeats + 1):
            for name, work in sides.items():
                result = timed(work)
                if repeat:
                    measured[name].append(result)
        print(f"PGD L-inf eps 4/255, {args.steps} steps, {args.n} {dataset} images, batch {args.batch_size}, "
              f"{args.threads} threads, {args.repeats} alternating repeats (medians)")
        print(f"{'':10} {'images/s wall':>14} {'images/s CPU':>13} {'s outside attack':>17} {'correct':>8} {'still correct':>14}")
        outside = {}
        for name, results in measured.items():
            wall = statistics.median(args.n / result[0] for result in results)
            cpu = statistics.median(args.n / result[1] for result in results)
            outside[name] = statistics.median(result[0] - result[2] for result in results)
            counts = results[-1][3]
            print(f"{name:10} {wall:14.1f} {cpu:13.1f} {outside[name]:17.3f} {counts[0]:8d} {counts[1]:14d}")
        for clock, index in (("wall", 0), ("CPU", 1)):
            ratios = [bare[index] / harness[index] for harness, bare in zip(measured["harness"], measured["bare"])]
            ratio = statistics.median(ratios)
            verdict = "meets" if ratio >= TARGET_RATIO else "misses"
            print(f"ratio harness / bare ({clock}): {ratio:.3f} (per repeat: {', '.join(f'{r:.3f}' for r in ratios)}; "
                  f"{verdict} the target {TARGET_RATIO})")
        attack = statistics.median(result[2] for results in measured.values() for result in results)
        steady = (attack + outside["bare"]) / (attack + outside["harness"])
        print(f"ratio at the median attack time {attack:.2f} s (no drift between runs): {steady:.3f}")


if __name__ == "__main__":
    main()
