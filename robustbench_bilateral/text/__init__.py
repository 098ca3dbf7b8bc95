"""Word-level text: vocabulary and sliding-window negative log-likelihood."""

from .vocab import AAA, EOS, UNK, WordVocab
from .windows import sliding_window_nll, window_plan

__all__ = ["AAA", "EOS", "UNK", "WordVocab", "sliding_window_nll", "window_plan"]
