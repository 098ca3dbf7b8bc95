"""One result row: everything needed to read, compare and reproduce one measured number."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from robustbench_bilateral.enums import ThreatFamily


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys and ASCII only: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _json_value(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists); raises ``TypeError`` if not JSON-safe."""
    return json.loads(canonical_json(value))


DIGITS = {"perplexity": 2, "mce": 3}
"""Decimals of a metric's value as text; every other metric (a proportion) gets 4."""


def format_value(value: float, metric: str, *, percent: bool = False, signed: bool = False) -> str:
    """A value of ``metric`` as text: ``DIGITS[metric]`` decimals (perplexity 2, mCE 3, a proportion
    such as accuracy 4) or, with ``percent``, ``100 * value`` to 1 decimal; ``signed`` writes ``+``
    for positive numbers (deltas); NaN (a value that cannot be computed) is ``n/a``."""
    if math.isnan(value):
        return "n/a"
    sign = "+" if signed else ""
    if percent:
        return f"{100 * value:{sign}.1f}"
    return f"{value:{sign}.{DIGITS.get(metric, 4)}f}"


@dataclass(frozen=True)
class ResultRow:
    """One metric of one evaluated cell.

    ``value`` is the metric: ``accuracy`` = ``n_correct / n``; ``success_rate`` = share of the
    ``n`` originally-correct examples that the threat made wrong, i.e. ``(n - n_correct) / n``
    with ``n_correct`` those still correct; ``perplexity`` = per-word perplexity over ``n``
    scored words, from ``windows`` sliding windows (``n_correct`` is ``None``; ``windows`` is
    ``None`` on vision rows). ``ci_low``/``ci_high`` bound a 95 % interval.
    ``wall_s`` is the cell's computing time in seconds. ``params`` and ``versions`` are JSON
    objects; they and ``flags`` are normalised on construction so a stored row reads back equal.
    """

    run: str
    checkpoint: str
    checkpoint_sha256: str
    variant: str
    task: str
    dataset: str
    split: str
    threat_family: ThreatFamily
    threat: str
    params: dict
    n: int
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n_correct: int | None
    seed: int
    device: str
    flags: tuple[str, ...]
    wall_s: float
    versions: dict
    cell_key: str
    windows: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "threat_family", ThreatFamily(self.threat_family))
        object.__setattr__(self, "params", _json_value(dict(self.params)))
        object.__setattr__(self, "versions", _json_value(dict(self.versions)))
        object.__setattr__(self, "flags", tuple(str(flag) for flag in self.flags))

    @property
    def threat_label(self) -> str:
        """The threat name followed by its parameters in key order, e.g. ``pgd eps=0.0157 steps=20``."""
        parts = [self.threat] + [f"{key}={canonical_json(value)}" for key, value in sorted(self.params.items())]
        return " ".join(parts)

    def interval_text(self, percent: bool = False) -> str:
        """The 95 % interval as ``[low, high]``, each bound written by ``format_value``."""
        low, high = (format_value(bound, self.metric, percent=percent) for bound in (self.ci_low, self.ci_high))
        return f"[{low}, {high}]"

    def value_text(self, percent: bool = False) -> str:
        """The value with its interval, e.g. ``0.8125 [0.7841, 0.8377]`` or, ``percent``, ``81.2 [78.4, 83.8]``."""
        return f"{format_value(self.value, self.metric, percent=percent)} {self.interval_text(percent)}"

    def to_record(self) -> dict[str, Any]:
        """Flat form for tables and SQLite: enum as its value, params/flags/versions as canonical JSON."""
        record = {field.name: getattr(self, field.name) for field in fields(self)}
        record["threat_family"] = self.threat_family.value
        record["params"] = canonical_json(self.params)
        record["flags"] = canonical_json(list(self.flags))
        record["versions"] = canonical_json(self.versions)
        return record

    def to_json(self) -> dict[str, Any]:
        """Nested JSON-safe form: params/versions as objects, flags as a list, non-finite floats as ``None``."""
        out = {field.name: getattr(self, field.name) for field in fields(self)}
        out["threat_family"] = self.threat_family.value
        out["flags"] = list(self.flags)
        for name in ("value", "ci_low", "ci_high", "wall_s"):
            if not math.isfinite(out[name]):
                out[name] = None
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResultRow:
        """Inverse of ``to_record``; SQL NULL floats (how SQLite keeps NaN) read back as NaN."""
        values = {field.name: record[field.name] for field in fields(cls)}
        for name in ("params", "flags", "versions"):
            values[name] = json.loads(values[name])
        for name in ("value", "ci_low", "ci_high", "wall_s"):
            values[name] = math.nan if values[name] is None else float(values[name])
        return cls(**values)


ROW_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(ResultRow))
