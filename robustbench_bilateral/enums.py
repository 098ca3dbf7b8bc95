"""Enumerations shared by every layer: what a task evaluates and what kind of perturbation a threat applies."""

from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    """The two kinds of evaluation the harness runs."""

    IMAGE_CLASSIFICATION = "image-classification"
    LANGUAGE_MODELING = "language-modeling"


class ThreatFamily(str, Enum):
    """What kind of perturbation a threat applies."""

    CLEAN = "clean"
    NOISE = "noise"
    CORRUPTION = "corruption"
    WORDSWAP = "wordswap"
    ADVERSARIAL = "adversarial"
