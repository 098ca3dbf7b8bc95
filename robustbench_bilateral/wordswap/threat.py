"""The ``wordswap`` engine threat: word-swap contamination of a language model's evaluation text.

Only the evaluated split is contaminated (the model was trained on clean text). The threat
rewrites the split's lines with ``WordSwapper(replacement, rate)``, line ``i`` seeded by
``(seed, i)``; the engine then tokenises them with the checkpoint's vocabulary, where ``AAA`` is a word of its
own that the training text never contains (``text.vocab``). ``rate = 0`` leaves the text, hence the
perplexity, exactly as the clean threat has it. ``random`` draws words of the model's vocabulary
in proportion to their training counts; ``synonym`` picks among the synonyms in that vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_bilateral.engine.language import TextSplit, TextThreat, WordCounts
from robustbench_bilateral.engine.threat import Param
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.wordswap.swap import Replacement, SwapResult, WordSwapper


class WordSwap(TextThreat):
    """Per line, ``max(1, int(rate * words))`` random non-stop-words become ``replacement`` (none at rate 0)."""

    name = "wordswap"
    family = ThreatFamily.WORDSWAP
    summary = "Word swaps in the evaluation text: per line, max(1, int(rate * words)) non-stop-words replaced."
    parameters = (
        Param("rate", float, 0.015, "share of a line's words swapped", minimum=0.0, maximum=1.0),
        Param("replacement", str, Replacement.AAA.value, "what a swapped word becomes",
              choices=tuple(replacement.value for replacement in Replacement)),
    )

    def contaminate(self, lines: list[str], seed: int, word_counts: WordCounts) -> SwapResult:
        """The swapped lines with the swapped token positions of each (``WordSwapper.contaminate``)."""
        replacement = Replacement(self.params["replacement"])
        vocabulary = word_counts() if replacement in (Replacement.RANDOM, Replacement.SYNONYM) else None
        return WordSwapper(replacement.value, self.params["rate"], vocabulary).contaminate(lines, seed)

    def apply_text(self, lines: list[str], seed: int, word_counts: WordCounts) -> list[str]:
        return self.contaminate(lines, seed, word_counts).lines


@dataclass(frozen=True)
class SwappedLine:
    """A line of the evaluated split as it is and as the threat rewrote it.

    ``index`` is the line's 0-based number in the split; ``positions`` are the indices, in
    ``original.split()`` and ``swapped.split()`` alike, of the swapped tokens.
    """

    index: int
    original: str
    swapped: str
    positions: tuple[int, ...]


def swapped_lines(split: TextSplit, threat: WordSwap, seed: int, n: int) -> list[SwappedLine]:
    """The first ``n`` lines of ``split`` in which ``threat`` swapped at least one word, as the cell
    of seed ``seed`` scores them (fewer when the split holds fewer).

    Line ``i`` depends only on ``(seed, i)``, so a prefix of the split is contaminated, doubling
    its length until it holds ``n`` swapped lines.
    """
    limit = max(n, 1)
    while True:
        lines = list(split.lines[:limit])
        result = threat.contaminate(lines, seed, split.word_counts)
        shown = [SwappedLine(i, original, swapped, tuple(positions))
                 for i, (original, swapped, positions) in enumerate(zip(lines, result.lines, result.positions))
                 if positions]
        if len(shown) >= n or limit >= len(split.lines):
            return shown[:n]
        limit *= 2
