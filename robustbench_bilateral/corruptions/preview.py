"""Preview grids: one row per corruption, columns clean and severities 1..5, for one image.

Each corrupted cell is what an evaluation with ``seed`` produces for example index 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from robustbench_bilateral.corruptions.registry import apply_corruption
from robustbench_bilateral.corruptions.severity import SEVERITIES
from robustbench_bilateral.rng import ExampleRNG

PADDING = 2
COLUMNS = len(SEVERITIES) + 1
MIN_CELL = 96
LABEL_WIDTH = 140
HEADER_HEIGHT = 24
DPI = 100


def preview_grid(image: torch.Tensor, names: list[str], seed: int) -> torch.Tensor:
    """RGB grid (3, R (H + 2) + 2, 6 (W + 2) + 2) for a (C, H, W) image in [0, 1]: row r holds
    ``names[r]`` as clean, severity 1, ..., severity 5, cells separated by 2 px of white."""
    batch = image.unsqueeze(0)
    cells = []
    for name in names:
        cells.append(batch)
        cells.extend(apply_corruption(name, batch, severity, ExampleRNG(seed, [0])) for severity in SEVERITIES)
    return make_grid(torch.cat(cells), nrow=COLUMNS, padding=PADDING, pad_value=1.0)


def cell_scale(size: int) -> int:
    """Integer magnification so a cell's short side ``size`` px shows at >= 96 px."""
    return max(1, math.ceil(MIN_CELL / size))


def save_preview_png(path: str | Path, image: torch.Tensor, names: list[str], seed: int) -> tuple[int, int]:
    """Write ``preview_grid`` as a labelled PNG and return its (height, width) in px.

    The grid is magnified by ``cell_scale(min(H, W))`` (nearest neighbour) and framed by a
    ``LABEL_WIDTH`` = 140 px column of corruption names on the left and a ``HEADER_HEIGHT`` =
    24 px row of column titles on top. A bare ``Figure`` (no pyplot) renders with Agg, so no
    display or global backend is touched.
    """
    from matplotlib.figure import Figure

    scale = cell_scale(min(image.shape[-2:]))
    grid = preview_grid(image, names, seed).repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    grid_height, grid_width = grid.shape[1:]
    height, width = grid_height + HEADER_HEIGHT, grid_width + LABEL_WIDTH
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    figure.figimage(grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy(), xo=LABEL_WIDTH, yo=0, origin="upper")
    cell_height, cell_width = grid_height / len(names), grid_width / COLUMNS
    for column, title in enumerate(["clean", *(f"severity {s}" for s in SEVERITIES)]):
        x = LABEL_WIDTH + (column + 0.5) * cell_width
        figure.text(x / width, 1 - HEADER_HEIGHT / 2 / height, title, ha="center", va="center", fontsize=9)
    for row, name in enumerate(names):
        y = grid_height - (row + 0.5) * cell_height
        figure.text(4 / width, y / height, name, ha="left", va="center", fontsize=9)
    figure.savefig(path, dpi=DPI)
    return height, width
