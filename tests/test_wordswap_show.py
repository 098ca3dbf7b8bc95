"""``bilat-eval wordswap --show N``: the swapped lines the evaluation scored, beside their originals."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.tables import swapped_line_texts
from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.training import train
from robustbench_bilateral.wordswap import WordSwapper
from robustbench_bilateral.wordswap.threat import SwappedLine

TOKEN = re.compile(r"\[(\S+) -> (\S+)\]|\S+")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A Shakespeare language model trained for seconds (``smoke`` preset)."""
    return str(train("shakespeare", "softmax", "smoke", tmp_path_factory.mktemp("lm")).checkpoint)


def wordswap(out, checkpoint: str, *options: str):
    args = ["--out", str(out), "wordswap", checkpoint, "--n-examples", "200", "--rates", "0.2", *options]
    return CliRunner().invoke(cli, args)


def test_show_prints_the_scored_lines_with_the_swaps_marked(checkpoint, tmp_path):
    result = wordswap(tmp_path, checkpoint, "--replacement", "aaa", "--show", "3")
    assert result.exit_code == 0, result.output
    output = result.output.splitlines()
    originals = [line.removeprefix("    - ") for line in output if line.startswith("    - ")]
    marked = [line.removeprefix("    + ") for line in output if line.startswith("    + ")]
    assert len(originals) == len(marked) == 3
    swapped = []
    for original, line in zip(originals, marked):
        tokens = list(TOKEN.finditer(line))
        highlighted = [j for j, token in enumerate(tokens) if token[1]]
        new_tokens = [token[2] or token[0] for token in tokens]
        old_tokens = original.split()
        assert highlighted and len(new_tokens) == len(old_tokens)
        assert [j for j, (old, new) in enumerate(zip(old_tokens, new_tokens)) if old != new] == highlighted
        assert all(tokens[j][1] == old_tokens[j] and new_tokens[j] == "AAA" for j in highlighted)
        swapped.append(" ".join(new_tokens))
    lines = text_lines(load_source("shakespeare").split("test"))[:50]
    expected = WordSwapper("aaa", 0.2).contaminate(lines, seed=0)
    assert all(expected.positions[:3]) and originals == lines[:3]
    assert swapped == expected.lines[:3]


def test_show_zero_prints_nothing_more_and_a_negative_count_is_refused(checkpoint, tmp_path):
    plain = wordswap(tmp_path, checkpoint)
    assert plain.exit_code == 0, plain.output
    assert wordswap(tmp_path, checkpoint, "--show", "0").output == plain.output
    assert "at rate" not in plain.output and "    - " not in plain.output
    refused = wordswap(tmp_path, checkpoint, "--show", "-2")
    assert refused.exit_code != 0 and "--show" in refused.output and len(refused.output.strip().splitlines()) == 1


def test_colour_strikes_the_original_word_and_bolds_its_replacement():
    line = SwappedLine(4, "the lord, of all", "the AAA of all", (1,))
    original, swapped = swapped_line_texts(line, colour=True)
    assert (original.plain, swapped.plain) == (line.original, line.swapped)
    assert [(original.plain[span.start:span.end], str(span.style)) for span in original.spans] == [("lord,", "strike red")]
    assert [(swapped.plain[span.start:span.end], str(span.style)) for span in swapped.spans] == [("AAA", "bold green")]
    assert swapped_line_texts(line, colour=False)[1].plain == "the [lord, -> AAA] of all"
