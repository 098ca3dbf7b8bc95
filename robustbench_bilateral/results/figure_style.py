"""The one style of every figure: sizes, fonts, a fixed colour and marker per variant, and byte-stable files.

The four main variants have fixed colours (Okabe-Ito, readable in colour-blind vision and in grey)
and markers; any other name gets a colour and marker chosen by the first bytes of SHA-256 of the
name, so a variant looks the same in every figure and run. Files are written as PNG (``DPI``),
PDF and SVG without dates or software names and with a fixed SVG hash salt: the same figure gives
the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from robustbench_bilateral.atomic import write_atomic  # noqa: E402

DPI = 200
FORMATS = ("png", "pdf", "svg")
PANEL_SIZE = (3.4, 2.8)
"""Width and height of one panel in inches."""

VARIANT_STYLES: dict[str, tuple[str, str]] = {
    "softmax": ("#0072B2", "o"),
    "bilateral": ("#D55E00", "s"),
    "softmax+boost": ("#009E73", "^"),
    "bilateral+boost": ("#CC79A7", "D"),
}
FALLBACK_COLOURS = ("#E69F00", "#56B4E9", "#000000", "#999933", "#882255", "#44AA99", "#117733", "#332288")
FALLBACK_MARKERS = ("v", "P", "X", "*", "h", "<", ">", "p")
LINESTYLES = ("-", "--", ":", "-.")

RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "svg.hashsalt": "bilat-eval",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}
METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
    "svg": {"Creator": None, "Date": None, "Format": None, "Type": None},
}


def variant_style(variant: str) -> tuple[str, str]:
    """``(colour, marker)`` of a variant: ``VARIANT_STYLES``, else picked by SHA-256 of its name."""
    if variant in VARIANT_STYLES:
        return VARIANT_STYLES[variant]
    digest = hashlib.sha256(variant.encode()).digest()
    return FALLBACK_COLOURS[digest[0] % len(FALLBACK_COLOURS)], FALLBACK_MARKERS[digest[1] % len(FALLBACK_MARKERS)]


@contextmanager
def figure_style() -> Iterator[None]:
    """Matplotlib settings of every figure (``RC``) for the duration of the block."""
    with plt.rc_context(cast(Any, RC)):
        yield


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """``stem`` + ``.png`` (``DPI``), ``.pdf`` and ``.svg``, each written atomically; closes the figure."""
    written = []
    for extension in FORMATS:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=extension, dpi=DPI, metadata=METADATA[extension], bbox_inches="tight")
        written.append(write_atomic(stem.with_suffix(f".{extension}"), buffer.getvalue()))
    plt.close(figure)
    return written
