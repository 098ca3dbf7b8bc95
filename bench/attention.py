"""Forward+backward time of one attention layer per variant, side by side, as ratios to softmax.

Usage: python bench/attention.py [--lengths 65,197,512,2048] [--repeats 5] [--threads 2]
Each variant runs the full layer (qkv projection, kernel, boosting, output projection) on the
same input; softmax uses PyTorch's fused scaled_dot_product_attention, and so does the
augmented (fast) form of bilateral attention. Times are the fastest of ``--repeats`` rounds (after two
warm-up runs); each round runs every variant once, in turn.
"""

from __future__ import annotations

import argparse
import time

import torch

from robustbench_bilateral.attention import build_attention, parse_variant
from robustbench_bilateral.attention.positions import sinusoidal_1d

VARIANTS = ("softmax", "bilateral", "softmax+boost", "bilateral+boost")


def layer_step(variant: str, batch: int, length: int, dim: int, heads: int):
    """A function running forward + backward of one freshly built layer of ``variant``."""
    torch.manual_seed(0)
    config = parse_variant(variant)
    layer = build_attention(dim, heads, config)
    x = torch.randn(batch, length, dim, requires_grad=True)
    positions = sinusoidal_1d(length, config.pos_dim)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x, positions=positions).sum().backward()

    return step


def time_variants(batch: int, length: int, dim: int, heads: int, repeats: int) -> dict[str, float]:
    """Fastest of the rounds per variant (noise only adds time); variants alternate within each round."""
    steps = {variant: layer_step(variant, batch, length, dim, heads) for variant in VARIANTS}
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(repeats):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            times[variant].append(time.perf_counter() - start)
    return {variant: min(values) for variant, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="65,197,512,2048")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--heads", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    print(f"one attention layer, dim {args.dim}, {args.heads} heads (head dim {args.dim // args.heads}), "
          f"batch 8 (2 at length >= 2048), forward+backward, fastest of {args.repeats}, {args.threads} threads")
    print(f"{'length':>7} " + " ".join(f"{v:>16}" for v in VARIANTS) + "   ratios to softmax")
    for length in lengths:
        batch = 2 if length >= 2048 else 8
        seconds = time_variants(batch, length, args.dim, args.heads, args.repeats)
        ratios = " ".join(f"{v} {seconds[v] / seconds['softmax']:.2f}x" for v in VARIANTS[1:])
        print(f"{length:>7} " + " ".join(f"{seconds[v] * 1e3:>14.1f}ms" for v in VARIANTS) + f"   {ratios}")


if __name__ == "__main__":
    main()
