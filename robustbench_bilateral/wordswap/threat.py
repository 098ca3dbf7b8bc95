"""The ``wordswap`` engine threat: word-swap contamination of a language model's evaluation text.

Only the evaluated split is contaminated (the model was trained on clean text). The threat
rewrites the split's lines with ``WordSwapper(replacement, rate)``, line ``i`` seeded by
``(seed, i)``; the engine then tokenises them with the checkpoint's vocabulary, where ``AAA`` is a word of its
own that the training text never contains (``text.vocab``). ``rate = 0`` leaves the text, hence the
perplexity, exactly as the clean threat has it. ``random`` draws words of the model's vocabulary
in proportion to their training counts; ``synonym`` picks among the synonyms in that vocabulary.
"""

from __future__ import annotations

from robustbench_bilateral.engine.language import TextThreat, WordCounts
from robustbench_bilateral.engine.threat import Param
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.wordswap.swap import Replacement, WordSwapper


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

    def apply_text(self, lines: list[str], seed: int, word_counts: WordCounts) -> list[str]:
        replacement = Replacement(self.params["replacement"])
        vocabulary = word_counts() if replacement in (Replacement.RANDOM, Replacement.SYNONYM) else None
        return WordSwapper(replacement.value, self.params["rate"], vocabulary).contaminate(lines, seed).lines
