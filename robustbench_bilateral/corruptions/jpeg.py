"""Baseline JPEG encode-decode as tensor ops: 8x8 block DCT, table quantisation, inverse DCT.

Per image, in 8-bit units (x * 255): RGB goes to full-range YCbCr (JFIF, BT.601 weights), the
chroma planes are averaged over 2x2 blocks (4:2:0, as Pillow does by default) and the planes are
padded by edge repetition to whole 8x8 blocks. Every block is level-shifted by -128,
transformed by the orthonormal 2-D DCT-II ``F = D B D^T``, quantised ``round(F / Q) Q`` with the
Annex K luminance (Y) or chrominance (Cb, Cr) table ``Q`` scaled by ``quality`` (IJG rule below),
and transformed back. Chroma is upsampled by bilinear interpolation (libjpeg's "fancy"
upsampling). Grey images are coded as one luminance plane. There is no entropy coding, which is
lossless, and no rounding of the decoded values to 8 bits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLOCK = 8
LUMINANCE_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMINANCE_CORNER = ((17, 18, 24, 47), (18, 21, 26, 66), (24, 26, 56, 99), (47, 66, 99, 99))
CHROMINANCE_FILL = 99
CHROMINANCE_TABLE = tuple(
    tuple(CHROMINANCE_CORNER[row][col] if max(row, col) < len(CHROMINANCE_CORNER) else CHROMINANCE_FILL for col in range(BLOCK))
    for row in range(BLOCK)
)
"""Annex K chrominance table: ``CHROMINANCE_CORNER`` in the top-left 4x4 entries, 99 elsewhere."""
RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
YCBCR_TO_RGB = (
    (1.0, 0.0, 1.402),
    (1.0, -0.344136, -0.714136),
    (1.0, 1.772, 0.0),
)
CHROMA_OFFSET = 128.0


def quantisation_table(base: tuple[tuple[int, ...], ...], quality: int) -> torch.Tensor:
    """IJG scaling: ``Q = clip(floor((base * f + 50) / 100), 1, 255)`` with ``f = 5000 / quality``
    below quality 50 and ``f = 200 - 2 quality`` from 50 on."""
    factor = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    table = torch.tensor(base, dtype=torch.float64)
    return torch.floor((table * factor + 50.0) / 100.0).clamp(1.0, 255.0)


def dct_matrix() -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D[k, n] = c_k cos((2n + 1) k pi / 16)``, c_0 = sqrt(1/8),
    c_k = sqrt(2/8)."""
    k = torch.arange(BLOCK, dtype=torch.float64).view(-1, 1)
    n = torch.arange(BLOCK, dtype=torch.float64).view(1, -1)
    matrix = torch.cos((2 * n + 1) * k * math.pi / (2 * BLOCK)) * math.sqrt(2.0 / BLOCK)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def left_multiply(matrix: torch.Tensor, columns: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """``matrix @ B`` for every 8x8 block B of (..., H/8, 8, W) planes (the block rows on dim -2),
    written into ``out`` (``scratch`` of the same shape holds one product at a time):
    ``out_k = sum_n matrix[k, n] B_n``, the products rounded one by one and added in order of n,
    which is what the batched 8x8 matrix product computes, here on the planes as they lie."""
    torch.mul(matrix[:, 0].view(BLOCK, 1), columns[..., 0:1, :], out=out)
    for n in range(1, BLOCK):
        torch.mul(matrix[:, n].view(BLOCK, 1), columns[..., n : n + 1, :], out=scratch)
        out.add_(scratch)
    return out


def code_planes(planes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Quantise the DCT of every 8x8 block of (..., H, W) planes (H, W multiples of 8):
    ``D^T round(D (B - 128) D^T / Q) Q D + 128`` per block B. The planes keep their layout: the
    products with D from the left act down each block's rows (``left_multiply``), those from the
    right on the 8 columns of each block (one (H W / 8, 8) @ (8, 8) product). Three plane-sized
    buffers hold every step (fresh memory costs about as much as the arithmetic on it)."""
    *lead, height, width = planes.shape
    dct = dct_matrix().to(planes)
    table = table.to(planes).view(BLOCK, 1, BLOCK)
    rows = (planes - 128.0).contiguous().view(*lead, height // BLOCK, BLOCK, width)
    products, scratch = torch.empty_like(rows), torch.empty_like(rows)
    blocks = (*lead, height // BLOCK, BLOCK, width // BLOCK, BLOCK)
    coefficients = torch.matmul(left_multiply(dct, rows, products, scratch).view(blocks), dct.T, out=rows.view(blocks))
    coefficients.div_(table).round_().mul_(table)
    decoded = torch.matmul(left_multiply(dct.T, rows, products, scratch).view(blocks), dct, out=rows.view(blocks))
    return decoded.add_(128.0).view(*lead, height, width)


def _pad_to(images: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images


def _mix(images: torch.Tensor, matrix: tuple[tuple[float, ...], ...], out: torch.Tensor | None = None) -> torch.Tensor:
    """``out_k = sum_c matrix[k][c] images_c`` per pixel, one (3, 3) @ (3, H W) product per image,
    into a fresh tensor or ``out`` (contiguous, shaped like ``images``, not overlapping it)."""
    weights = torch.tensor(matrix, dtype=images.dtype, device=images.device)
    target = torch.empty(images.shape, dtype=images.dtype, device=images.device) if out is None else out
    torch.matmul(weights, images.flatten(2), out=target.flatten(2))
    return target


def _to_unit(coded: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Decoded 8-bit-unit images cropped to ``height`` x ``width``, scaled to [0, 1] and clipped."""
    return coded[..., :height, :width].contiguous().div_(255.0).clamp_(0.0, 1.0)


def jpeg_round_trip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """The images after JPEG coding at ``quality`` (1..100), clipped to [0, 1]."""
    height, width = images.shape[-2:]
    luma_table = quantisation_table(LUMINANCE_TABLE, quality)
    if images.shape[1] == 1:
        return _to_unit(code_planes(_pad_to(images * 255.0, BLOCK), luma_table), height, width)
    scaled = _pad_to(images * 255.0, 2 * BLOCK)
    ycbcr = _mix(scaled, RGB_TO_YCBCR)
    luma = code_planes(ycbcr[:, :1], luma_table)
    chroma = ycbcr[:, 1:].add_(CHROMA_OFFSET)
    chroma = (chroma[..., 0::2, 0::2] + chroma[..., 0::2, 1::2]).add_(chroma[..., 1::2, 0::2]).add_(chroma[..., 1::2, 1::2]).div_(4)
    chroma = code_planes(chroma, quantisation_table(CHROMINANCE_TABLE, quality)).sub_(CHROMA_OFFSET)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    decoded = torch.cat([luma, chroma], dim=1, out=scaled)
    return _to_unit(_mix(decoded, YCBCR_TO_RGB, out=ycbcr), height, width)
