"""Word-swap contamination of evaluation text, line by line.

In every non-empty line of ``w`` words (white-space separated tokens), ``k = max(1, int(rate * w))``
words are replaced (none when ``rate == 0``), chosen uniformly without replacement among the
line's candidate words: tokens whose letters-and-apostrophes core is not one of scikit-learn's
318 English stop words. A line with fewer than ``k`` candidates has all of them replaced.
Replacements:

- ``aaa``: the whole token becomes the literal word ``AAA`` (the setting of the paper's
  WikiText-103 experiment; punctuation is part of a token in this vocabulary, so ``lord,`` becomes
  ``AAA``, which language-model vocabularies reserve as a word of its own);
Punctuation around a word stays for the other three; only its core is replaced by:

- ``random``: a word of the training vocabulary drawn with probability proportional to its count;
- ``synonym``: a WordNet synonym in the part of speech of the word's most frequent sense, among
  the vocabulary's words when a vocabulary is given (a synonym the model cannot read would be
  scored as ``<unk>``); a word without one is left as it is and counted in ``skipped``;
- ``typo``: one character edit (substitute, delete, insert or swap two neighbours) at a random place.

Line ``i`` draws from ``random.Random(example_seed(seed, i))``, so a line's contamination does
not depend on the others.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from itertools import accumulate

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from robustbench_bilateral.errors import InputError
from robustbench_bilateral.rng import example_seed
from robustbench_bilateral.text.vocab import AAA
from robustbench_bilateral.wordswap.wordnet import synonyms

EDGE = string.punctuation.replace("'", "") + "\u2018\u2019\u201c\u201d"


class Replacement(str, Enum):
    """What a swapped word becomes."""

    AAA = "aaa"
    RANDOM = "random"
    SYNONYM = "synonym"
    TYPO = "typo"


@dataclass
class SwapResult:
    """Contaminated lines, the swapped token positions of each line, and synonym skips."""

    lines: list[str]
    positions: list[list[int]] = field(default_factory=list)
    skipped: int = 0


def parse_replacement(text: str) -> Replacement:
    """The ``Replacement`` named ``text``; an unknown name is an ``InputError`` listing the valid ones."""
    try:
        return Replacement(text)
    except ValueError:
        valid = ", ".join(r.value for r in Replacement)
        raise InputError(f"unknown word-swap replacement '{text}': choose one of {valid}") from None


def check_rate(rate: float) -> None:
    """Raise an ``InputError`` unless ``0 <= rate <= 1``."""
    if not 0 <= rate <= 1:
        raise InputError(f"word-swap rate must be in [0, 1], got {rate}")


def swap_count(words: int, rate: float) -> int:
    """``max(1, int(rate * words))`` for a line with words and a positive rate, else 0."""
    return max(1, int(rate * words)) if rate > 0 and words > 0 else 0


def split_core(token: str) -> tuple[str, str, str]:
    """``(leading punctuation, core, trailing punctuation)`` of a token."""
    core = token.strip(EDGE)
    start = token.find(core) if core else len(token)
    return token[:start], core, token[start + len(core) :]


def is_candidate(token: str) -> bool:
    """True when the token's core has a letter and is not an English stop word."""
    core = split_core(token)[1]
    return any(ch.isalpha() for ch in core) and core.lower() not in ENGLISH_STOP_WORDS


def typo(word: str, rng: random.Random) -> str:
    """``word`` with one character edit that changes it."""
    letters = string.ascii_lowercase
    while True:
        position = rng.randrange(len(word))
        operation = rng.choice(("substitute", "delete", "insert", "transpose"))
        if operation == "substitute":
            edited = word[:position] + rng.choice(letters) + word[position + 1 :]
        elif operation == "delete" and len(word) > 1:
            edited = word[:position] + word[position + 1 :]
        elif operation == "insert":
            edited = word[:position] + rng.choice(letters) + word[position:]
        elif operation == "transpose" and position + 1 < len(word):
            edited = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
        else:
            continue
        if edited != word:
            return edited


class WordSwapper:
    """Contaminates lines with one replacement kind at one rate.

    ``vocabulary`` (word -> training count) feeds ``random`` (required) and restricts ``synonym``.
    """

    def __init__(self, replacement: str, rate: float, vocabulary: Mapping[str, int] | None = None) -> None:
        self.replacement = parse_replacement(replacement)
        check_rate(rate)
        if self.replacement is Replacement.RANDOM and not vocabulary:
            raise InputError("word swap 'random' needs the training vocabulary with its counts")
        self.rate = rate
        words = sorted(vocabulary or {})
        self._words = words
        self._vocabulary = frozenset(words)
        self._cumulative = list(accumulate(vocabulary[w] for w in words)) if vocabulary else []

    def _replace(self, token: str, rng: random.Random) -> str | None:
        """The token that replaces ``token``, or None for a word without a synonym."""
        if self.replacement is Replacement.AAA:
            return AAA
        before, core, after = split_core(token)
        new: str | None
        if self.replacement is Replacement.RANDOM:
            new = rng.choices(self._words, cum_weights=self._cumulative)[0]
        elif self.replacement is Replacement.TYPO:
            new = typo(core, rng)
        else:
            options = [word for word in synonyms(core) if not self._vocabulary or word in self._vocabulary]
            new = rng.choice(options) if options else None
        return None if new is None else before + new + after

    def contaminate(self, lines: list[str], seed: int) -> SwapResult:
        """Swap words in every line; tokens are re-joined with single spaces."""
        result = SwapResult(lines=[])
        for index, line in enumerate(lines):
            rng = random.Random(example_seed(seed, index))
            tokens = line.split()
            candidates = [j for j, token in enumerate(tokens) if is_candidate(token)]
            chosen = sorted(rng.sample(candidates, min(swap_count(len(tokens), self.rate), len(candidates))))
            swapped = []
            for j in chosen:
                new = self._replace(tokens[j], rng)
                if new is None:
                    result.skipped += 1
                    continue
                tokens[j] = new
                swapped.append(j)
            result.lines.append(" ".join(tokens) if chosen else line)
            result.positions.append(swapped)
        return result
