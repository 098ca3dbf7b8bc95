"""Time forward + backward of one attention layer per variant, side by side, at several lengths.

Usage: python bench/attention.py [--lengths 65,197,512,2048] [--repeats N] [--dim 384] [--heads 6]
                                 [--tokens 4096] [--pos-dim 8]

Each length T runs a batch of max(1, tokens // T) sequences, so every row processes about the
same number of tokens. Bilateral layers get 1-D sinusoidal position vectors (T, pos_dim). Each
repeat times every variant once, in turn, and the table reports the median time per variant and
its ratio to softmax (the fused scaled_dot_product_attention kernel); the last column is the cost
of boosting on the bilateral kernel, bilateral+boost / bilateral. Targets from length 197 up:
bilateral <= 1.25x softmax, boost (K = 1) <= 2.1x its unboosted kernel.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from robustbench_bilateral.attention import build_attention, parse_variant
from robustbench_bilateral.attention.positions import sinusoidal_positions

VARIANTS = ("softmax", "bilateral", "softmax+boost", "bilateral+boost")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="65,197,512,2048", help="comma-separated sequence lengths")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=4096, help="batch size = max(1, tokens // length)")
    parser.add_argument("--pos-dim", type=int, default=8)
    return parser.parse_args()


def step_seconds(layer: torch.nn.Module, x: torch.Tensor, positions: torch.Tensor) -> float:
    """Wall time of one forward + backward pass."""
    start = time.perf_counter()
    layer(x, positions).sum().backward()
    return time.perf_counter() - start


def time_length(length: int, args: argparse.Namespace) -> tuple[int, dict[str, float]]:
    """(batch size, median seconds per variant) at sequence length ``length``."""
    batch = max(1, args.tokens // length)
    torch.manual_seed(0)
    layers = {name: build_attention(args.dim, args.heads, parse_variant(name)) for name in VARIANTS}
    x = torch.randn(batch, length, args.dim, requires_grad=True)
    positions = sinusoidal_positions((length,), args.pos_dim, base=length)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for name, layer in layers.items():
        step_seconds(layer, x, positions)
    for _ in range(args.repeats):
        for name, layer in layers.items():
            times[name].append(step_seconds(layer, x, positions))
    return batch, {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    args = parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    print(
        f"one attention layer, forward + backward, float32, dim {args.dim}, {args.heads} heads "
        f"(head dim {args.dim // args.heads}), position width {args.pos_dim}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    header = f"{'T':>6} {'batch':>5} " + " ".join(f"{name:>22}" for name in VARIANTS) + f" {'b+boost / bilateral':>20}"
    print(header)
    print("-" * len(header))
    for length in lengths:
        batch, medians = time_length(length, args)
        base = medians["softmax"]
        cells = " ".join(f"{medians[n] * 1e3:9.1f} ms ({medians[n] / base:4.2f}x)" for n in VARIANTS)
        boost_cost = medians["bilateral+boost"] / medians["bilateral"]
        print(f"{length:>6} {batch:>5} {cells} {boost_cost:19.2f}x", flush=True)


if __name__ == "__main__":
    main()
