"""Results as data: typed rows, a SQLite store per run, statistics, sanity flags and exports (CSV, Markdown, JSON)."""

from robustbench_bilateral.results.export import export_all
from robustbench_bilateral.results.row import ResultRow, canonical_json, format_value
from robustbench_bilateral.results.stats import bootstrap_perplexity_interval, perplexity, wilson_interval
from robustbench_bilateral.results.store import ResultStore, StoreError
from robustbench_bilateral.versions import versions

__all__ = [
    "ResultRow",
    "ResultStore",
    "StoreError",
    "bootstrap_perplexity_interval",
    "canonical_json",
    "export_all",
    "format_value",
    "perplexity",
    "versions",
    "wilson_interval",
]
