"""Word-level vocabulary: white-space tokens as they are (punctuation stays attached, case kept).

Ids: ``<unk>`` = 0, ``<eos>`` = 1 (closes every line), then the training words seen at least
``min_count`` times, most frequent first (ties alphabetical). Perplexity per token is therefore
perplexity per word, ``<eos>`` counted as a word, as in the WikiText-103 setup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch

UNK, EOS = "<unk>", "<eos>"


class WordVocab:
    """Maps words to ids and back; stored in a checkpoint as its word list."""

    def __init__(self, words: list[str]) -> None:
        if words[:2] != [UNK, EOS]:
            raise ValueError("a vocabulary starts with <unk>, <eos>")
        self.words = words
        self.index = {word: i for i, word in enumerate(words)}

    @classmethod
    def build(cls, lines: Iterable[str], min_count: int = 2, max_size: int | None = None) -> WordVocab:
        """The vocabulary of ``lines``: words with count >= ``min_count``, at most ``max_size`` entries."""
        counts = Counter(word for line in lines for word in line.split())
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        limit = None if max_size is None else max_size - 2
        return cls([UNK, EOS, *ranked[:limit]])

    def __len__(self) -> int:
        return len(self.words)

    def encode_lines(self, lines: Iterable[str]) -> torch.Tensor:
        """One int64 stream: each line's word ids followed by ``<eos>``."""
        ids: list[int] = []
        for line in lines:
            ids.extend(self.index.get(word, 0) for word in line.split())
            ids.append(1)
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]

    def to_list(self) -> list[str]:
        return list(self.words)

    @classmethod
    def from_list(cls, words: list[str]) -> WordVocab:
        return cls(list(words))
