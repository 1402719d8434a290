"""Run the six measurements with fixed sizes and a fixed torch thread count."""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from nsm_core.bench.apptest import dashboard_available
from nsm_core.bench.common import BenchSizes, ModelSize, Result
from nsm_core.bench.dashboard_rerun import measure_dashboard_rerun
from nsm_core.bench.frame_read import measure_frame_read
from nsm_core.bench.live_rerun import measure_live_rerun
from nsm_core.bench.memory import measure_memory
from nsm_core.bench.overhead import measure_overhead
from nsm_core.bench.payload import measure_payload
from nsm_core.config import NSMConfig

logger = logging.getLogger(__name__)

# The CLI's default input, "the cat sat on the mat", is 22 byte tokens.
DEFAULT_TOKENS = 22
_DEFAULTS = NSMConfig()
DEFAULT_SIZE = ModelSize(_DEFAULTS.num_layers, _DEFAULTS.num_states, _DEFAULTS.state_dim, DEFAULT_TOKENS,
                         _DEFAULTS.num_heads)
LARGE_SIZE = ModelSize(layers=32, states=256, dim=256, tokens=512, heads=4)
# One frame of this size is about 40 KB (160 KB a step), so the 1 MB file has 6 steps and the 1 GB file 6,300.
FRAME_SIZE = ModelSize(layers=4, states=16, dim=32, tokens=32, heads=4)
# About 0.6 MB per step: recording 1,000 steps would add 0.6 GB if steps piled up in memory.
MEMORY_SIZE = ModelSize(layers=4, states=32, dim=64, tokens=64, heads=4)

FULL = BenchSizes(
    name="full",
    overhead_sizes={"default": DEFAULT_SIZE, "large": LARGE_SIZE},
    overhead_steps={"default": 64, "large": 4},
    overhead_repeats=5,
    frame_size=FRAME_SIZE,
    frame_file_bytes={"small": 1_000_000, "large": 1_000_000_000},
    frame_reads=300,
    memory_size=MEMORY_SIZE,
    memory_steps={"short": 10, "long": 1000},
    dashboard_size=LARGE_SIZE,
    dashboard_steps=2,
    dashboard_moves=10,
)
QUICK = BenchSizes(
    name="quick",
    overhead_sizes={"default": DEFAULT_SIZE, "large": ModelSize(layers=8, states=64, dim=64, tokens=128, heads=4)},
    overhead_steps={"default": 32, "large": 2},
    overhead_repeats=3,
    frame_size=FRAME_SIZE,
    frame_file_bytes={"small": 1_000_000, "large": 64_000_000},
    frame_reads=200,
    memory_size=MEMORY_SIZE,
    memory_steps={"short": 10, "long": 100},
    dashboard_size=ModelSize(layers=8, states=64, dim=64, tokens=128, heads=4),
    dashboard_steps=1,
    dashboard_moves=3,
)

MEASUREMENTS = ("recording_overhead", "frame_read", "dashboard_rerun", "live_rerun", "memory", "payload")
DASHBOARD_MEASUREMENTS = {
    "dashboard_rerun": ("Dashboard rerun",
                        "dashboard rerun after moving the layer slider ÷ a bare script drawing the same heatmap"),
    "live_rerun": ("Live re-run", "seconds to re-run the live model after a parameter slider moves ÷ 0.5 s"),
    "payload": ("Payload", "bytes of the largest figure sent to the browser ÷ the per-figure cap"),
}


def run_benchmarks(
    sizes: BenchSizes,
    *,
    threads: int,
    only: list[str] | None = None,
    scratch_parent: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Result]:
    """Run the measurements named in `only` (all by default), in MEASUREMENTS order.

    torch runs with `threads` intra-op threads during the run; the previous setting is
    restored afterwards. Raises BenchError when a measurement cannot run here.
    """
    if threads < 1:
        raise ValueError(f"threads={threads} must be at least 1.")
    selected = [name for name in MEASUREMENTS if only is None or name in only]
    unknown = sorted(set(only or ()) - set(MEASUREMENTS))
    if unknown:
        raise ValueError(f"unknown measurement(s) {unknown}; choose from {list(MEASUREMENTS)}.")

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    results: dict[str, Result] = {}
    try:
        for name in selected:
            if progress is not None:
                progress(name)
            load_before = _load_average()
            start = time.perf_counter()
            results[name] = _measure(name, sizes, threads, scratch_parent)
            results[name].settings["torch_threads"] = threads
            results[name].settings["load_average_1min_before"] = load_before
            results[name].settings["elapsed_seconds"] = round(time.perf_counter() - start, 1)
    finally:
        torch.set_num_threads(previous_threads)
    return results


def _measure(name: str, sizes: BenchSizes, threads: int, scratch_parent: Path | None) -> Result:
    if name == "recording_overhead":
        return measure_overhead(sizes, scratch_parent)
    if name == "frame_read":
        return measure_frame_read(sizes, scratch_parent)
    if name == "memory":
        return measure_memory(sizes, threads, scratch_parent)
    if not dashboard_available():
        title, compares = DASHBOARD_MEASUREMENTS[name]
        return Result(title=title, compares=compares,
                      note="not measured: this checkout has no dashboard (app/streamlit_app.py)")
    if name == "dashboard_rerun":
        return measure_dashboard_rerun(sizes, scratch_parent)
    if name == "live_rerun":
        return measure_live_rerun(sizes)
    return measure_payload(sizes, scratch_parent)


def describe_machine() -> dict[str, Any]:
    """CPU, memory, load and library versions of this machine, for the report's header."""
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1min": _load_average(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def _load_average() -> float | None:
    """Runnable processes averaged over the last minute; above the CPU count, timings are shared."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
