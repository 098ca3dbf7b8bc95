"""Training-split word counts, the weights of the ``random`` replacement."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.text import EOS, UNK, WordVocab
from robustbench_bilateral.wordswap.swap import split_core


@lru_cache(maxsize=4)
def _split_counts(dataset: str, split: str) -> Counter:
    """Counts of the white-space tokens of every line of a split (read once per process)."""
    return Counter(word for line in text_lines(load_source(dataset).split(split)) for word in line.split())


def vocabulary_counts(dataset: str, vocab: WordVocab, split: str = "train") -> dict[str, int]:
    """Each bare word of ``vocab`` with its count in ``split`` of ``dataset``.

    Bare: no punctuation at its edges (a swapped word keeps the punctuation of the word it
    replaces) and not ``<unk>`` / ``<eos>``; words that do not occur in the split are left out.
    """
    counts = _split_counts(dataset, split)
    return {
        word: counts[word]
        for word in vocab.to_list()
        if word not in (UNK, EOS) and split_core(word) == ("", word, "") and counts[word] > 0
    }
