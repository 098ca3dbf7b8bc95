"""Tidy exports: typed parameter columns, Parquet, renamed sanity flags, readable wide headers, and the
README's column glossary checked against the real export columns."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
from report_rows import FGSM, PGD, perplexity_row, row, store_rows

from robustbench_bilateral.attacks.language import EmbeddingAttack
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.models.lm import create_lm
from robustbench_bilateral.report import build_report, comparison_frame, write_report
from robustbench_bilateral.results.export import tidy_frame
from robustbench_bilateral.threats import THREATS

README = Path(__file__).resolve().parent.parent / "README.md"


def glossary() -> dict[str, str]:
    """The README's column glossary: column -> unit."""
    section = README.read_text(encoding="utf-8").split("Columns of the exports", 1)[1]
    table = section.split("\n\n", 2)[1]
    entries = re.findall(r"^\| ([a-z_0-9]+) \| ([^|]+) \| [^|]+ \|$", table, flags=re.M)
    return {name: unit.strip() for name, unit in entries[1:]}  # the first is the header


def every_threat_rows() -> list:
    """One row per registered threat with every declared parameter set, a pre-rendered corruption row and a language row with context."""
    rows = []
    for index, name in enumerate(THREATS):
        cls = THREATS.get(name)
        required = {param.name: next(iter(param.choices)) if param.choices else param.type(param.minimum or 1)
                    for param in cls.parameters if param.required}
        threat = cls(**required)
        params = threat.params
        if isinstance(threat, EmbeddingAttack):  # the absolute radii its rows get from the model
            params = {**params, **threat.absolute(create_lm(vocab_size=10, context_length=8, embed_dim=8, depth=1, num_heads=2))}
        rows.append(row(f"t{index}", "softmax", name, params, 0.5, threat_family=threat.family))
    rows.append(row("pre", "softmax", "corruption", {"corruption": "fog", "severity": 1, "rendered": "npy:C"}, 0.5,
                    threat_family=ThreatFamily.CORRUPTION))
    rows.append(replace(perplexity_row("lm", "softmax", "clean", {"context": 64, "stride": 1}, 80.0), windows=12))
    return rows


def test_every_export_column_is_in_the_readme_glossary(tmp_path):
    documented = glossary()
    rows = every_threat_rows()
    run = store_rows(tmp_path / "run", [row("c", "softmax", "clean", {}, 0.9), row("d", "bilateral", "clean", {}, 0.8)])
    columns = set(tidy_frame(rows).columns) | set(comparison_frame(build_report([run]).comparisons).columns)
    assert "batch_size" in columns  # an attack with random parts is keyed by it
    assert sorted(columns - set(documented)) == []
    assert sorted(set(documented) - columns) == []


def test_parameters_are_typed_columns_and_parquet_keeps_them(tmp_path):
    rows = [row("c", "softmax", "clean", {}, 0.9), row("f", "softmax", "fgsm", FGSM, 0.7, flags=("pgd>fgsm",)),
            row("p", "softmax", "pgd", PGD, 0.6), row("q", "softmax", "pgd", {**PGD, "steps": 10}, 0.65)]
    run = store_rows(tmp_path / "run", rows)
    write_report(build_report([run]), tmp_path / "out", formats=("csv", "parquet", "json", "md"))
    tidy = pd.read_csv(tmp_path / "out" / "results.csv")
    parquet = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(parquet.columns) == list(tidy.columns) and "flags" not in tidy.columns
    assert str(parquet["eps"].dtype) == "Float64" and str(parquet["steps"].dtype) == "Int64"
    assert str(parquet["space"].dtype) == "string" and str(parquet["random_start"].dtype) == "boolean"
    assert str(parquet["n_correct"].dtype) == "Int64"
    pgd = parquet[parquet.threat == "pgd"].set_index("steps")["value"]
    assert pgd.to_dict() == {10: 0.65, 20: 0.6}  # pivot by a parameter without json.loads
    assert parquet["steps"].isna().sum() == 2 and tidy.loc[tidy.threat == "fgsm", "sanity_flags"].item() == '["pgd>fgsm"]'
    assert '"sanity_flags"' in (tmp_path / "out" / "results.json").read_text()
    wide = (tmp_path / "out" / "results_wide.csv").read_text().splitlines()[0].split(",")
    assert wide[7:] == ["clean", "fgsm eps=4/255", "pgd eps=4/255 steps=10", "pgd eps=4/255 steps=20"]
    again = tmp_path / "again"
    write_report(build_report([run]), again, formats=("csv", "parquet"))
    assert (again / "results.parquet").read_bytes() == (tmp_path / "out" / "results.parquet").read_bytes()


def test_report_figures_are_png_pdf_svg_and_byte_stable(tmp_path):
    rows = [replace(item, cell_key=f"{item.cell_key}{variant}", variant=variant,
                    checkpoint_sha256=variant.ljust(64, "0")[:64], checkpoint=f"ck/{variant}-seed0/m.safetensors")
            for variant in ("softmax", "bilateral")
            for item in (row("c", "softmax", "clean", {}, 0.9), row("p", "softmax", "pgd", PGD, 0.6))]
    run = store_rows(tmp_path / "run", rows)
    first = write_report(build_report([run]), tmp_path / "a", plots=True)
    second = write_report(build_report([run]), tmp_path / "b", plots=True)
    figures = sorted(path.name for path in first if path.name.startswith("plot_"))
    assert figures == ["plot_pgd.pdf", "plot_pgd.png", "plot_pgd.svg"]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
    from PIL import Image

    with Image.open(tmp_path / "a" / "plot_pgd.png") as image:
        assert image.info["dpi"][0] >= 199
