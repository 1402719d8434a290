"""Analysis of recordings in pure numpy: comparisons, routing health, state drift and projections."""

from nsm_core.analysis.projection import pca_project
from nsm_core.analysis.summary import (
    COLLAPSE_SHARE,
    DEAD_TOLERANCE,
    DUPLICATE_COSINE,
    FLAG_NAMES,
    SUMMARY_COLUMNS,
    count_non_finite,
    dead_states,
    near_duplicate_states,
    routing_collapse,
    routing_entropy,
    state_drift,
    state_load,
    summarize_recording,
)

__all__ = [
    "COLLAPSE_SHARE", "DEAD_TOLERANCE", "DUPLICATE_COSINE", "FLAG_NAMES", "SUMMARY_COLUMNS", "count_non_finite",
    "dead_states", "near_duplicate_states", "pca_project", "routing_collapse", "routing_entropy", "state_drift",
    "state_load", "summarize_recording",
]
