"""Word-swap contamination of evaluation text (``aaa``, ``random``, ``synonym``, ``typo``)."""

from robustbench_bilateral.wordswap.swap import Replacement, SwapResult, WordSwapper, is_candidate, swap_count

__all__ = ["Replacement", "SwapResult", "WordSwapper", "is_candidate", "swap_count"]
