"""NSM Inspector engine: Neural State Machine models and per-layer recordings of their state."""

__version__ = "0.1.0"
