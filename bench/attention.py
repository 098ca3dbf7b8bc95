"""Time forward + backward of one attention layer per variant, side by side, at several lengths.

Usage: python bench/attention.py [--lengths 65,197,512,2048] [--repeats N] [--dim 384] [--heads 6]
                                 [--tokens 4096] [--pos-dim 8]

Each length T runs a batch of max(1, tokens // T) sequences, so every row processes about the
same number of tokens. Bilateral layers get 1-D sinusoidal position vectors (T, pos_dim). Each
repeat times every variant once, in turn, and the table reports the median time per variant and
its ratio to softmax (the fused scaled_dot_product_attention kernel); the next column is the cost
of boosting on the bilateral kernel, bilateral+boost / bilateral. Targets from length 197 up:
bilateral <= 1.10x softmax, boost (K = 1) <= 1.9x its unboosted kernel.

The two floor columns are the limits of the fast form, measured in the same repeats: the fused
kernel (``scaled_dot_product_attention`` forward + backward on random q, k, v) alone at head dim
d and at the bilateral layer's augmented width D (d + P + 1 rounded up to ``HEAD_ALIGN``) gives

    bilateral floor = (softmax + core(D) - core(d)) / softmax

(the softmax layer with its kernel at width D, nothing else added), and

    boost floor = (bilateral + core(D)) / bilateral

(one more kernel pass on the same q~, k~: the fused kernel cannot reuse the attention matrix of
the first). A layer at its floor spends nothing beyond the kernel's own cost of the wider head.

The last column, the FLOP bound, is the bilateral floor in arithmetic,
``layer_flops(D) / layer_flops(d)`` with

    layer_flops(w) = 8 C^2 + 4 T w H     per token, forward (backward is about twice both terms)

(the projections qkv and proj, C x 3C and C x C, and per head the products q k^T and A v of
width w): the cost of the wider head alone for a layer whose time followed its arithmetic.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F

from robustbench_bilateral.attention import build_attention, parse_variant
from robustbench_bilateral.attention.bilateral import HEAD_ALIGN
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


def core_seconds(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    """Wall time of the fused kernel alone, forward + backward."""
    start = time.perf_counter()
    F.scaled_dot_product_attention(q, k, v).sum().backward()
    return time.perf_counter() - start


def augmented_width(head_dim: int, pos_dim: int) -> int:
    """The bilateral fast form's head width: d + P + 1 rounded up to a multiple of ``HEAD_ALIGN``."""
    return -(-(head_dim + pos_dim + 1) // HEAD_ALIGN) * HEAD_ALIGN


def layer_flops(dim: int, heads: int, length: int, width: int) -> int:
    """Forward multiply-adds x 2 per token of one layer: projections 8 C^2, attention 4 T w H."""
    return 8 * dim * dim + 4 * length * width * heads


def time_length(length: int, args: argparse.Namespace) -> tuple[int, dict[str, float]]:
    """(batch size, median seconds per variant and of the kernel alone at widths d and D) at length ``length``."""
    batch = max(1, args.tokens // length)
    torch.manual_seed(0)
    layers = {name: build_attention(args.dim, args.heads, parse_variant(name)) for name in VARIANTS}
    x = torch.randn(batch, length, args.dim, requires_grad=True)
    positions = sinusoidal_positions((length,), args.pos_dim, base=length)
    head_dim = args.dim // args.heads
    cores = {f"core {width}": [torch.randn(batch, args.heads, length, width, requires_grad=True) for _ in range(3)]
             for width in (head_dim, augmented_width(head_dim, args.pos_dim))}
    work = {name: partial(step_seconds, layer, x, positions) for name, layer in layers.items()}
    work.update({name: partial(core_seconds, *tensors) for name, tensors in cores.items()})
    times: dict[str, list[float]] = {name: [] for name in work}
    for run in work.values():
        run()
    for _ in range(args.repeats):
        for name, run in work.items():
            times[name].append(run())
    return batch, {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    args = parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    print(
        f"one attention layer, forward + backward, float32, dim {args.dim}, {args.heads} heads "
        f"(head dim {args.dim // args.heads}), position width {args.pos_dim}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    head_dim = args.dim // args.heads
    wide = augmented_width(head_dim, args.pos_dim)
    print(f"bilateral head width D = {wide} (d + P + 1 = {head_dim + args.pos_dim + 1} rounded up to {HEAD_ALIGN})")
    header = (f"{'T':>6} {'batch':>5} " + " ".join(f"{name:>22}" for name in VARIANTS)
              + f" {'b+boost / bilateral':>20} {'bilateral floor':>16} {'boost floor':>12} {'FLOP bound':>11}")
    print(header)
    print("-" * len(header))
    for length in lengths:
        batch, medians = time_length(length, args)
        base = medians["softmax"]
        cells = " ".join(f"{medians[n] * 1e3:9.1f} ms ({medians[n] / base:4.2f}x)" for n in VARIANTS)
        boost_cost = medians["bilateral+boost"] / medians["bilateral"]
        wider = medians[f"core {wide}"] - medians[f"core {head_dim}"]
        bilateral_floor = (base + wider) / base
        boost_floor = (medians["bilateral"] + medians[f"core {wide}"]) / medians["bilateral"]
        flop_bound = layer_flops(args.dim, args.heads, length, wide) / layer_flops(args.dim, args.heads, length, head_dim)
        print(f"{length:>6} {batch:>5} {cells} {boost_cost:19.2f}x {bilateral_floor:15.2f}x {boost_floor:11.2f}x "
              f"{flop_bound:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
