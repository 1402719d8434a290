"""Numerical analyses of recordings (pure numpy): comparisons and summaries."""
