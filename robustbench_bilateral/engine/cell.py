"""Cells: one checkpoint, one data split, one threat, one seed, ``n`` examples."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from robustbench_bilateral.engine.threat import Threat
from robustbench_bilateral.results.row import canonical_json


def _digest(payload: dict) -> str:
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()


def clean_reference_key(checkpoint_sha256: str, dataset: str, split: str, n_examples: int) -> str:
    """Key of the clean predictions of a checkpoint on the first ``n_examples`` of a split."""
    return _digest(
        {"reference": "clean", "checkpoint_sha256": checkpoint_sha256, "dataset": dataset, "split": split, "n": n_examples}
    )


@dataclass(frozen=True)
class Cell:
    """One unit of evaluation; its ``key`` names its result in the store.

    The key is the SHA-256 of the canonical JSON of the checkpoint's content hash, dataset,
    split, threat name and parameters (with ``context`` and ``stride`` for a language cell, see
    ``params``), seed and ``n_examples``: it does not depend on the checkpoint's path, the batch
    size or the device. ``context`` and ``stride`` (the sliding window of a language model,
    ``text.windows``) are ``None`` for an image classifier.
    """

    checkpoint_path: str
    checkpoint_sha256: str
    dataset: str
    split: str
    threat: Threat
    seed: int
    n_examples: int
    context: int | None = None
    stride: int | None = None

    @property
    def params(self) -> dict:
        """The parameters its rows carry: the threat's, plus ``context`` and ``stride`` for a language cell."""
        if self.context is None:
            return self.threat.params
        return {**self.threat.params, "context": self.context, "stride": self.stride}

    @property
    def key(self) -> str:
        return _digest(
            {
                "checkpoint_sha256": self.checkpoint_sha256,
                "dataset": self.dataset,
                "split": self.split,
                "threat": self.threat.name,
                "params": self.params,
                "seed": self.seed,
                "n": self.n_examples,
            }
        )

    @property
    def clean_key(self) -> str:
        """Key of the clean predictions this cell's success rate is measured against."""
        return clean_reference_key(self.checkpoint_sha256, self.dataset, self.split, self.n_examples)
