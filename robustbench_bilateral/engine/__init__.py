"""Evaluation engine: the threat base class and its parameters, cells, and the runner that fills a results store."""

from robustbench_bilateral.engine.cell import Cell, clean_reference_key
from robustbench_bilateral.engine.runner import (
    Engine,
    LanguageOutcome,
    VisionOutcome,
    run_language_cell,
    run_vision_cell,
)
from robustbench_bilateral.engine.threat import REQUIRED, Clean, Param, Threat

__all__ = [
    "REQUIRED",
    "Cell",
    "Clean",
    "Engine",
    "LanguageOutcome",
    "Param",
    "Threat",
    "VisionOutcome",
    "clean_reference_key",
    "run_language_cell",
    "run_vision_cell",
]
