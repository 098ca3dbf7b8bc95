"""Results as data: typed rows, a SQLite store per run, statistics and views (CSV, Markdown, JSON, terminal)."""

from robustbench_bilateral.results.export import export_all
from robustbench_bilateral.results.row import ResultRow, ThreatFamily, canonical_json
from robustbench_bilateral.results.stats import bootstrap_perplexity_interval, perplexity, wilson_interval
from robustbench_bilateral.results.store import ResultStore, StoreError
from robustbench_bilateral.results.views import rows_table
from robustbench_bilateral.versions import versions

__all__ = [
    "ResultRow",
    "ResultStore",
    "StoreError",
    "ThreatFamily",
    "bootstrap_perplexity_interval",
    "canonical_json",
    "export_all",
    "perplexity",
    "rows_table",
    "versions",
    "wilson_interval",
]
