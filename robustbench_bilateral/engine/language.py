"""Language cells: the evaluated text of a split and the interface of threats that rewrite text.

A language threat acts on the text before it is tokenised. It subclasses ``TextThreat`` and
implements ``apply_text(lines, seed, word_counts) -> lines``: one output line per input line,
line ``i`` drawing its randomness only from ``(seed, i)``, so the text of a line does not depend
on how many lines are evaluated nor on the batch size. ``word_counts()`` returns the model's
vocabulary words (specials excluded) with their counts in its training split, computed on the
first call only, for threats that draw replacement words.

The evaluated token stream of a cell is ``vocab.encode_lines(threatened lines)[:n_words]``
(every word, and the ``<eos>`` after each line, is one token), scored by the sliding window
(``text.windows``). An ``EmbeddingThreat`` (the attacks of ``attacks.language``) reads the clean
text and acts on the input embeddings of each window instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from robustbench_bilateral.engine.threat import Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import BilatError
from robustbench_bilateral.models.lm import CausalLM
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.text import WordVocab
from robustbench_bilateral.text.windows import Perturb

WordCounts = Callable[[], Mapping[str, int]]


class TextThreat(Threat):
    """Base of threats on text: ``apply_text`` rewrites lines; the image interface ``apply`` is refused."""

    def apply_text(self, lines: list[str], seed: int, word_counts: WordCounts) -> list[str]:
        """The threatened lines, as many as ``lines``; ``lines`` itself is left unchanged."""
        raise NotImplementedError

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        raise BilatError(f"threat {self.name} acts on text, not on images: use it with a language checkpoint")


class EmbeddingThreat(Threat):
    """Base of threats on the token embeddings of each window: ``perturbation`` perturbs them, the text stays clean."""

    def perturbation(self, model: CausalLM, seed: int) -> Perturb:
        """The ``perturb`` of ``text.windows.sliding_window_nll`` on ``model``, drawing from ``(seed, window index)``."""
        raise NotImplementedError

    def absolute(self, model: CausalLM) -> dict[str, float]:
        """Entries the rows add to ``params`` for ``model`` (e.g. the absolute radius of a relative one)."""
        return {}

    def apply(self, images: Tensor, labels: Tensor, model: nn.Module, rng: ExampleRNG) -> Tensor:
        raise BilatError(f"threat {self.name} attacks token embeddings, not images: use it with a language checkpoint")


@dataclass(frozen=True)
class TextSplit:
    """The lines of a split that hold its first ``n_words`` tokens, and the checkpoint's vocabulary.

    ``n_words = 0`` means every token of ``lines``. ``word_counts`` feeds ``TextThreat.apply_text``.
    """

    lines: tuple[str, ...]
    vocab: WordVocab
    n_words: int
    word_counts: WordCounts

    @classmethod
    def first_words(cls, lines: Sequence[str], vocab: WordVocab, n_words: int, word_counts: WordCounts) -> TextSplit:
        """The shortest prefix of ``lines`` with at least ``n_words`` tokens (``len(line.split()) + 1`` each);
        all of them when ``n_words`` is 0 or more than the split holds."""
        kept, tokens = [], 0
        for line in lines:
            if n_words and tokens >= n_words:
                break
            kept.append(line)
            tokens += len(line.split()) + 1
        return cls(tuple(kept), vocab, n_words, word_counts)

    def evaluated_lines(self, threat: Threat, seed: int) -> list[str]:
        """The lines the model reads under ``threat``: as they are for ``clean`` and embedding attacks,
        else ``threat.apply_text``."""
        if reads_clean_text(threat):
            return list(self.lines)
        if isinstance(threat, TextThreat):
            return threat.apply_text(list(self.lines), seed, self.word_counts)
        raise BilatError(f"threat {threat.name} does not act on text: use a text threat (e.g. wordswap) for a language checkpoint")

    def ids(self, threat: Threat, seed: int) -> Tensor:
        """The evaluated token stream ``(L,)``: the threatened lines encoded, cut to ``n_words`` tokens."""
        return self.vocab.encode_lines(self.evaluated_lines(threat, seed))[: self.n_words or None]


def evaluated_ids(data: TextSplit | Tensor, threat: Threat, seed: int) -> Tensor:
    """Token ids a language cell scores: from a ``TextSplit``, or a pre-tokenised stream ``(L,)`` (clean only)."""
    if isinstance(data, TextSplit):
        return data.ids(threat, seed)
    if not reads_clean_text(threat):
        raise BilatError(f"threat {threat.name} needs the text of the split, not token ids: load the split as a TextSplit")
    return data


def reads_clean_text(threat: Threat) -> bool:
    """Whether ``threat`` leaves the text as it is: ``clean``, and the embedding attacks."""
    return threat.family is ThreatFamily.CLEAN or isinstance(threat, EmbeddingThreat)
