"""Throughput of the harness under PGD against a bare torchattacks loop, over the default eps grid.

All sides attack the same model: ``--checkpoint``, by default the quick Fashion-MNIST softmax ViT
of ``make demo`` when it exists (``QUICK_CHECKPOINT``), else a smoke-size ViT trained for seconds
on mnist5k, on the first ``--n`` test images of the checkpoint's dataset, with L-inf PGD at each
eps of ``bilat-eval attack``'s default grid (1/255, ..., 6/255), ``--steps`` steps of 0.15 eps
from a random start, ``--batch-size`` images per batch, on the CPU.

- harness: ``run_cells`` of what ``bilat-eval attack --pgd`` plans (the clean cell and one PGD cell
  per eps) on a fresh store, i.e. everything a user pays for: loading the checkpoint and the
  split, clean predictions, the model sanity checks, PGD, predictions, the rows and outcomes
  written to SQLite and the exports; once with the default ``early-exit`` schedule, once with
  ``schedule=full``;
- bare: for each eps a loop over batches of the data already in memory: ``torchattacks.PGD`` and
  the prediction on its output (robust accuracy only; the harness also has clean predictions and
  success rates). Each batch seeds torch's generator as the harness does (``example_seed`` of the
  run's seed 0 and the batch's first example), so the bare loop draws the harness's random starts
  and its counts equal the ``full`` schedule's: the accuracies compare attacks, not random starts.

The three run in turn, ``--repeats`` times each, after one warm-up round on 64 images. Each is
timed by wall clock and by the CPU time of this process (all its threads); the table shows the
median throughput (attacked images x eps per wall second) and the median per-round ratios to the
bare loop, and robust accuracy per eps. Targets: early-exit >= 1.5x the bare loop's throughput
with a robust accuracy <= the bare loop's at every eps; full >= 0.95x (the harness's overhead).

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

from cli.attack_cmd import PAPER_EPS, parse_eps
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.rng import example_seed
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.threats import build_threat

QUICK_CHECKPOINT = Path("results/checkpoints/fmnist/quick/softmax-seed0/model.safetensors")
EARLY_EXIT_TARGET = 1.5
FULL_TARGET = 0.95
WARM_UP_IMAGES = 64
SEED = 0
"""The harness's default seed, which ``run_cells`` cells carry."""

Counts = dict[float, int]
"""Correct predictions after the attack, by eps."""


def timed(work: Callable[[], Counts]) -> tuple[float, float, Counts]:
    """``(wall seconds, CPU seconds of this process, result)`` of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def harness_counts(checkpoint: str, n: int, grid: list[float], steps: int, batch_size: int, schedule: str,
                   out: Path) -> Counts:
    """``run_cells`` of the clean cell and one PGD cell per eps on a fresh store; correct counts by eps."""
    info = describe_checkpoint(checkpoint)
    threats = [build_threat("clean")] + [build_threat("pgd", eps=eps, steps=steps, schedule=schedule,
                                                      batch_size=batch_size) for eps in grid]
    rows = run_cells(plan_cells([info], threats, n_examples=n), out=out, run="bench", batch_size=batch_size, fresh=True)
    return {row.params["eps"]: row.n_correct for row in rows if row.metric == "accuracy" and row.threat == "pgd"}


def bare_counts(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, grid: list[float], steps: int,
                batch_size: int) -> Counts:
    """For each eps: ``torchattacks.PGD`` and the prediction on its output over the batches; correct counts."""
    counts = {}
    for eps in grid:
        attack = torchattacks.PGD(model, eps=eps, alpha=0.15 * eps, steps=steps, random_start=True)
        correct = 0
        for start in range(0, len(labels), batch_size):
            batch, truth = images[start:start + batch_size], labels[start:start + batch_size]
            torch.manual_seed(example_seed(SEED, start))
            adversarial = attack(batch, truth)
            with torch.no_grad():
                correct += int((model(adversarial).argmax(-1) == truth).sum())
        counts[eps] = correct
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(QUICK_CHECKPOINT) if QUICK_CHECKPOINT.exists() else None,
                        help="A .safetensors image checkpoint [default: the quick demo one, else train a smoke one].")
    parser.add_argument("--n", type=int, default=1000, help="Images attacked at each eps.")
    parser.add_argument("--eps", default=PAPER_EPS, help="The eps grid [default: bilat-eval attack's].")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    grid = [value for _, value in parse_eps(args.eps)]

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from robustbench_bilateral.training import train

            checkpoint = str(train("mnist5k", "softmax", "smoke", Path(scratch) / "smoke").checkpoint)
        loaded = load_checkpoint(checkpoint)
        model = loaded.model.eval()
        dataset = loaded.meta["dataset"]
        images, labels = load_split(dataset, "test", args.n, loaded.meta)

        def sides(n: int) -> dict[str, Callable[[], Counts]]:
            out = Path(scratch) / "out"
            return {
                "early-exit": lambda: harness_counts(checkpoint, n, grid, args.steps, args.batch_size, "early-exit", out),
                "full": lambda: harness_counts(checkpoint, n, grid, args.steps, args.batch_size, "full", out),
                "bare": lambda: bare_counts(model, images[:n], labels[:n], grid, args.steps, args.batch_size),
            }

        for work in sides(WARM_UP_IMAGES).values():
            work()
        measured: dict[str, list[tuple[float, float, Counts]]] = {name: [] for name in sides(args.n)}
        for _ in range(args.repeats):
            for name, work in sides(args.n).items():
                measured[name].append(timed(work))

    attacked = args.n * len(grid)
    print(f"PGD L-inf, {args.steps} steps, eps {args.eps}, {args.n} {dataset} images, batch {args.batch_size}, "
          f"{args.threads} threads, {args.repeats} rounds (medians)")
    print(f"{'':11} {'images/s wall':>14} {'images/s CPU':>13} {'vs bare (wall)':>15} {'vs bare (CPU)':>14}  "
          + " ".join(f"{'acc@' + label:>9}" for label, _ in parse_eps(args.eps)))
    for name, results in measured.items():
        wall = statistics.median(attacked / result[0] for result in results)
        cpu = statistics.median(attacked / result[1] for result in results)
        ratios = [statistics.median(bare[index] / mine[index] for mine, bare in zip(results, measured["bare"]))
                  for index in (0, 1)]
        accuracy = " ".join(f"{results[-1][2][eps] / args.n:9.3f}" for eps in grid)
        print(f"{name:11} {wall:14.1f} {cpu:13.1f} {ratios[0]:15.3f} {ratios[1]:14.3f}  {accuracy}")
    for name, target in (("early-exit", EARLY_EXIT_TARGET), ("full", FULL_TARGET)):
        ratio = statistics.median(bare[0] / mine[0] for mine, bare in zip(measured[name], measured["bare"]))
        print(f"{name}: {ratio:.2f}x the bare loop's throughput: {'meets' if ratio >= target else 'MISSES'} the target {target}x")
    bare, fast = measured["bare"][-1][2], measured["early-exit"][-1][2]
    above = [f"{eps * 255:g}/255" for eps in grid if fast[eps] > bare[eps]]
    print("early-exit robust accuracy <= the bare loop's at every eps" if not above
          else f"early-exit robust accuracy ABOVE the bare loop's at eps {', '.join(above)}")


if __name__ == "__main__":
    main()
