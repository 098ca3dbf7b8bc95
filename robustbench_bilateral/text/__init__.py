"""Word-level text: vocabulary and sliding-window perplexity."""

from .vocab import AAA, EOS, UNK, WordVocab
from .windows import perplexity, sliding_window_nll, window_plan

__all__ = ["AAA", "EOS", "UNK", "WordVocab", "perplexity", "sliding_window_nll", "window_plan"]
