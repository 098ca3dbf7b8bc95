"""Word-level vocabulary (WikiText-style): whitespace tokens, case and punctuation kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

UNK = "<unk>"
EOS = "<eos>"
AAA = "AAA"


class WordVocab:
    """Words <-> ids. Id 0 is ``<unk>`` (every word outside the vocabulary), id 1 is ``<eos>``.

    A line's tokens are ``line.split()`` (whitespace only: no lower-casing, punctuation stays
    attached) followed by ``<eos>``; a blank line is the single token ``<eos>``.
    """

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[:2]) != (UNK, EOS):
            raise ValueError(f"a vocabulary starts with {UNK!r}, {EOS!r}")
        if len(set(words)) != len(words):
            raise ValueError("vocabulary words must be unique")
        self._words = list(words)
        self._ids = {word: i for i, word in enumerate(self._words)}

    unk_id = 0
    eos_id = 1

    @classmethod
    def build(cls, lines: Iterable[str], min_count: int = 2, max_size: int | None = None) -> WordVocab:
        """Vocabulary of the words seen at least ``min_count`` times in ``lines``, after ``AAA``.

        Id 2 is always ``AAA``, the stand-in word of the word-swap protocol (a word of its own in
        WikiText-103's vocabulary too), so a swapped word is scored as a rare word, not as the
        frequent ``<unk>``. The other words follow by decreasing count, ties by the word;
        ``max_size`` caps the total size including ``<unk>``, ``<eos>`` and ``AAA``. Literal ``<unk>`` / ``<eos>`` tokens in the text map to the specials.
        """
        if max_size is not None and max_size < 3:
            raise ValueError(f"max_size must leave room for {UNK}, {EOS} and {AAA}, got {max_size}")
        counts = Counter(word for line in lines for word in line.split())
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in (UNK, EOS, AAA)),
            key=lambda w: (-counts[w], w),
        )
        words = [UNK, EOS, AAA, *kept]
        return cls(words if max_size is None else words[:max_size])

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def index(self, word: str) -> int:
        """Id of ``word`` (``unk_id`` if unknown)."""
        return self._ids.get(word, self.unk_id)

    def encode_line(self, line: str) -> list[int]:
        """Ids of ``line.split()`` followed by ``<eos>``."""
        return [self.index(w) for w in line.split()] + [self.eos_id]

    def encode_lines(self, lines: Iterable[str]) -> Tensor:
        """All lines' ids concatenated, one ``<eos>`` after each line: LongTensor (L,)."""
        return torch.tensor([i for line in lines for i in self.encode_line(line)], dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` joined by single spaces."""
        return " ".join(self._words[int(i)] for i in ids)

    def to_list(self) -> list[str]:
        """The words in id order (JSON-safe, for checkpoint metadata)."""
        return list(self._words)

    @classmethod
    def from_list(cls, words: Sequence[str]) -> WordVocab:
        """Inverse of ``to_list``."""
        return cls(list(words))
