"""``report.html``: one self-contained page of a report that opens offline.

The page holds the provenance (stores, checkpoints with their SHA-256, package versions), the
warnings of replicates not pooled, the sanity flags and their meanings, every figure as an
embedded PNG (``data:`` URI), the verdict table and the comparison table; it loads nothing from the network. A small
inline script writes how many images have loaded into ``#images-loaded`` (``data-loaded`` of
``data-total``), so a headless browser can check the figures. The same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from robustbench_bilateral.results.export import threat_labels
from robustbench_bilateral.results.row import canonical_json
from robustbench_bilateral.results.sanity import FLAG_MEANINGS

if TYPE_CHECKING:
    from robustbench_bilateral.report import Report

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.8em; margin-bottom: 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
.warning { color: #9a5b00; }
"""
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var loaded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  var marker = document.getElementById("images-loaded");
  marker.setAttribute("data-loaded", String(loaded));
  marker.textContent = loaded + " of " + images.length + " figures loaded";
});
"""


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def _list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>" if items else "<p>none</p>"


def _provenance(report: Report) -> str:
    checkpoints = pd.DataFrame(
        sorted({(row.variant, row.checkpoint, row.checkpoint_sha256[:12], row.task) for row in report.rows}),
        columns=["variant", "checkpoint", "sha256 (first 12)", "task"])
    versions = sorted({canonical_json(row.versions) for row in report.rows})
    return (f"<p>stores: {html.escape(', '.join(report.runs))}; {len(report.rows)} rows; baseline "
            f"<b>{html.escape(report.baseline)}</b></p>" + checkpoints.to_html(index=False)
            + "<p>versions:</p>" + _list(versions))


def _flags(report: Report) -> str:
    labels = threat_labels(report.rows)
    flagged = [f"{row.variant} ({row.checkpoint}), {labels[row.cell_key]}, {row.metric}: {', '.join(row.flags)}"
               for row in report.rows if row.flags]
    seen = sorted({flag for row in report.rows for flag in row.flags})
    meanings = [f"{flag}: {FLAG_MEANINGS.get(flag, 'see results.sanity')}" for flag in seen]
    return _list(flagged) + ("<p>meanings:</p>" + _list(meanings) if meanings else "")


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.stem)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
            f"<figcaption>{name} (also as {name}.pdf and {name}.svg)</figcaption></figure>")


def _cell(value: Any) -> Any:
    """A table cell as shown: floats with 4 decimals, a missing value empty."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else value


def report_html(report: Report, comparisons: pd.DataFrame, figures: Sequence[Path], verdicts: pd.DataFrame) -> str:
    """The page of ``report``: ``verdicts`` (``verdicts.csv``) and ``comparisons`` (``comparison.csv``)
    as its tables, ``figures`` (PNGs) embedded."""
    warnings = "".join(f'<p class="warning">warning: {html.escape(line)}</p>' for line in report.warnings)
    body = [
        "<h1>bilat-eval report</h1>",
        _section("Provenance", _provenance(report)),
        _section("Warnings", warnings or "<p>none</p>"),
        _section("Sanity flags", _flags(report)),
        _section("Figures", '<p id="images-loaded" data-loaded="0" data-total="%d"></p>' % len(figures)
                 + "".join(_figure(path) for path in figures)),
        _section("Verdicts over training seeds (verdicts.csv)",
                 verdicts.map(_cell).to_html(index=False) if len(verdicts) else "<p>none: no variant has several seeds</p>"),
        _section("Comparisons (comparison.csv)", comparisons.map(_cell).to_html(index=False)),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bilat-eval report</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n" + "\n".join(body) + "</body></html>\n")
