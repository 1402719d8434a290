"""Benchmark of the engine and dashboard: `python -m nsm_core bench [--quick] [--json]`.

One module per measurement; runner.py fixes the sizes and runs them in order.
"""

from nsm_core.bench.common import BenchError, BenchSizes, Case, ModelSize, Result
from nsm_core.bench.runner import FULL, MEASUREMENTS, QUICK, run_benchmarks

__all__ = ["BenchError", "BenchSizes", "Case", "FULL", "MEASUREMENTS", "ModelSize", "QUICK", "Result", "run_benchmarks"]
