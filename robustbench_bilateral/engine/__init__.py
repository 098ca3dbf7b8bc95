"""Evaluation engine: threats and their registry, cells, and the runner that fills a results store."""

from robustbench_bilateral.engine.cell import Cell, clean_reference_key
from robustbench_bilateral.engine.runner import (
    Engine,
    LanguageOutcome,
    VisionOutcome,
    run_language_cell,
    run_vision_cell,
)
from robustbench_bilateral.engine.threat import THREATS, Clean, Threat, build_threat, register_threat

__all__ = [
    "THREATS",
    "Cell",
    "Clean",
    "Engine",
    "LanguageOutcome",
    "Threat",
    "VisionOutcome",
    "build_threat",
    "clean_reference_key",
    "register_threat",
    "run_language_cell",
    "run_vision_cell",
]
