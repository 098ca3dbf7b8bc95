"""``report --html``: one offline page, rendered by a real headless Chromium with every figure loaded."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from PIL import Image
from report_rows import PGD, row, store_rows

from cli.main import cli

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make system installs it)")
def test_html_report_renders_offline_with_every_figure_loaded(tmp_path):
    rows = [row(f"{key}{variant}", variant, threat, params, value + shift)
            for variant, shift in (("softmax", 0.0), ("bilateral", -0.05))
            for key, threat, params, value in (("c", "clean", {}, 0.9), ("p", "pgd", PGD, 0.6),
                                               ("q", "pgd", {**PGD, "eps": 8 / 255}, 0.4))]
    run = store_rows(tmp_path / "run", rows)
    result = CliRunner().invoke(cli, ["report", "--html", str(run)], terminal_width=100)
    assert result.exit_code == 0, result.output
    page = run / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and 'src="data:image/png;base64,' in text
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()).stdout
    loaded = re.search(r'id="images-loaded" data-loaded="(\d+)" data-total="(\d+)"', dom)
    assert loaded is not None and loaded.group(1) == loaded.group(2) == "1"
    assert "<table" in dom and "mcnemar" in dom and "Provenance" in dom
    screenshot = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,2000", page.as_uri())
    with Image.open(screenshot) as image:
        assert image.size == (1200, 2000)
        colours = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 20  # text, tables and a figure, not a blank page
