"""Word-level text: the vocabulary and sliding-window perplexity."""

from robustbench_bilateral.text.vocab import EOS, UNK, WordVocab
from robustbench_bilateral.text.windows import sliding_window_nll, window_plan

__all__ = ["EOS", "UNK", "WordVocab", "sliding_window_nll", "window_plan"]
