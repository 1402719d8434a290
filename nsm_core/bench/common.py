"""What every measurement shares: sizes, results, interleaved timing and scratch space.

Timing rule: after warm-up runs, candidates are timed in alternating order, round after
round. A ratio is the median of the per-round ratios, so slow drift of the machine (another
process starting, the CPU clocking down) affects both sides of each round alike.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsm_core.config import NSMConfig
from nsm_core.recording.schema import FIELDS, field_shape

logger = logging.getLogger(__name__)

# Room left on the scratch disk beyond what a measurement writes, so that the benchmark
# never fills a disk that other programs are using.
DISK_MARGIN_BYTES = 512 * 1024 * 1024


class BenchError(RuntimeError):
    """A measurement cannot run on this machine as configured (for example, too little disk)."""


@dataclass(frozen=True)
class ModelSize:
    """One NSM model and input size: L layers, S states, D = E dims, T tokens per step, H heads."""

    layers: int
    states: int
    dim: int
    tokens: int
    heads: int = 4

    def label(self) -> str:
        return f"{self.layers} layers × {self.states} states × {self.dim} dims × {self.tokens} tokens"

    def to_dict(self) -> dict[str, int]:
        return {"layers": self.layers, "states": self.states, "dim": self.dim,
                "tokens": self.tokens, "heads": self.heads}


@dataclass(frozen=True)
class BenchSizes:
    """Sizes and repeat counts of one benchmark run (the full run, --quick, or a test's)."""

    name: str
    overhead_sizes: dict[str, ModelSize]  # case name -> model size
    overhead_steps: dict[str, int]  # case name -> P steps recorded per timed run
    overhead_repeats: int
    frame_size: ModelSize  # per-step shape of both frame-read recordings
    frame_file_bytes: dict[str, int]  # "small"/"large" -> target file size
    frame_reads: int
    memory_size: ModelSize
    memory_steps: dict[str, int]  # "short"/"long" -> P steps
    dashboard_size: ModelSize  # the large synthetic recording of the dashboard measurements
    dashboard_steps: int
    dashboard_moves: int  # timed slider moves per dashboard case
    warmups: int = 1


@dataclass
class Case:
    """One compared pair: `ratio` = measured / reference, judged against `goal`."""

    ratio: float | None
    goal: float | None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.goal is None:
            return None
        return self.ratio <= self.goal

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": _round(self.ratio), "goal": self.goal, "met": self.met, "figures": self.figures}


@dataclass
class Result:
    """One measurement: its cases, the settings it ran with, and a note when it did not run.

    The headline `ratio` and `goal` are those of the case furthest from its goal.
    """

    title: str
    compares: str  # what the ratio divides by what
    cases: dict[str, Case] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def headline(self) -> Case | None:
        judged = [case for case in self.cases.values() if case.ratio is not None and case.goal]
        if not judged:
            return None
        return max(judged, key=lambda case: case.ratio / case.goal)

    def to_dict(self) -> dict[str, Any]:
        headline = self.headline()
        return {
            "title": self.title,
            "compares": self.compares,
            "ratio": _round(headline.ratio) if headline else None,
            "goal": headline.goal if headline else None,
            "met": headline.met if headline else None,
            "cases": {name: case.to_dict() for name, case in self.cases.items()},
            "settings": self.settings,
            "note": self.note,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def time_interleaved(
    candidates: dict[str, Callable[[], object]],
    repeats: int,
    warmups: int = 1,
    before_each: Callable[[str], object] | None = None,
) -> dict[str, list[float]]:
    """Time each candidate `repeats` times in alternating order; return name -> seconds per run.

    Every candidate first runs `warmups` times untimed. Round r runs the candidates in
    order when r is even and in reverse when r is odd. `before_each(name)` (for example,
    deleting the previous run's file) runs untimed before every call of candidate `name`.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be at least 1.")
    names = list(candidates)
    for _ in range(warmups):
        for name in names:
            if before_each is not None:
                before_each(name)
            candidates[name]()

    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            if before_each is not None:
                before_each(name)
            start = time.perf_counter()
            candidates[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def paired_ratio(seconds: dict[str, list[float]], measured: str, reference: str) -> float:
    """Median over rounds of measured[r] / reference[r]."""
    return statistics.median(a / b for a, b in zip(seconds[measured], seconds[reference]))


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def scratch_dir(required_bytes: int, parent: Path | None = None, purpose: str = "") -> Iterator[Path]:
    """Yield a fresh temporary directory with room for `required_bytes`; delete it afterwards.

    Raises BenchError before anything is written when the disk under `parent` (the system
    temporary directory by default) has less than required_bytes + DISK_MARGIN_BYTES free.
    """
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    if not parent.is_dir():
        raise BenchError(f"scratch directory {str(parent)!r} does not exist; create it or pass another --scratch-dir.")
    free = shutil.disk_usage(parent).free
    needed = required_bytes + DISK_MARGIN_BYTES
    if free < needed:
        raise BenchError(
            f"{purpose or 'the benchmark'} needs {needed / 1e9:.2f} GB free in {parent} "
            f"({required_bytes / 1e9:.2f} GB of files and {DISK_MARGIN_BYTES / 1e9:.2f} GB to spare), "
            f"but only {free / 1e9:.2f} GB are free. Free some space, pass --scratch-dir on a "
            "larger disk, or run with --quick."
        )
    directory = Path(tempfile.mkdtemp(prefix="nsm-bench-", dir=parent))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def remove_if_present(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def nsm_config(size: ModelSize) -> NSMConfig:
    """Config of the benchmark model at `size` (token width E equal to the state dim D)."""
    return NSMConfig(num_states=size.states, state_dim=size.dim, token_dim=size.dim,
                     num_layers=size.layers, num_heads=size.heads, seed=0)


def nsm_dims(size: ModelSize, steps: int) -> dict[str, int]:
    """Dims of a recording of the NSM model at `size` over `steps` steps (GRU gates, no head)."""
    return {"P": steps, "L": size.layers, "S": size.states, "D": size.dim, "T": size.tokens,
            "H": size.heads, "G": 2, "C": 0}


# Fields of an NSM recording without a classification head.
NSM_FIELDS = [name for name in FIELDS if name != "sequence_logits"]


def recording_data_bytes(dims: dict[str, int], fields: list[str] = NSM_FIELDS) -> int:
    """Bytes of the tensors of a float32 recording with these dims (the header excluded)."""
    total = 0
    for name in fields:
        itemsize = 1 if FIELDS[name].kind == "mask" else 4
        total += math.prod(field_shape(name, dims)) * itemsize
    return total
