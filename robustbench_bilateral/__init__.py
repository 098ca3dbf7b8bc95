"""bilat-eval: measure how robust bilateral and boosted attention variants of transformers are.

``robustbench_bilateral.evaluate(model, data, threats, ...)`` evaluates a model or checkpoint and
returns the result rows as a DataFrame (see ``help(robustbench_bilateral.evaluate)``). Importing
the package is light: ``evaluate`` and its dependencies (torch) load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    """Load ``evaluate`` from ``robustbench_bilateral.api`` when first asked for (PEP 562)."""
    if name == "evaluate":
        from robustbench_bilateral.api import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
