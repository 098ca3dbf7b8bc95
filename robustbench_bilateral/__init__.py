"""bilat-eval: measure how robust bilateral and boosted attention variants of transformers are."""

__version__ = "0.1.0"
