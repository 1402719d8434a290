"""Memory: peak resident memory while recording many steps against recording few.

Each configuration runs in a child process of its own (`python -m nsm_core.bench.memory`),
so the two runs share no heap and each peak is that of one recording. After importing torch,
building the model and running it once, the child restarts its peak resident set size
(Linux) and notes its current size. The report thus gives the peak while recording, and the
growth that recording caused apart from the interpreter's own footprint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

import nsm_core
from nsm_core.bench.common import (
    BenchError,
    BenchSizes,
    Case,
    ModelSize,
    Result,
    nsm_dims,
    recording_data_bytes,
    scratch_dir,
)

logger = logging.getLogger(__name__)

GOAL = 1.5
CLEAR_REFS = "/proc/self/clear_refs"
PROC_STATUS = "/proc/self/status"
# A child that runs longer than this is stuck; the full-size run takes well under a minute.
CHILD_TIMEOUT_SECONDS = 600


def measure_memory(sizes: BenchSizes, threads: int, scratch_parent: Path | None = None) -> Result:
    """Record sizes.memory_steps["short"] and ["long"] steps, each in a fresh child process."""
    size = sizes.memory_size
    steps = sizes.memory_steps
    required = sum(recording_data_bytes(nsm_dims(size, count)) for count in steps.values())

    reports: dict[str, dict[str, Any]] = {}
    with scratch_dir(required, scratch_parent, "the memory measurement") as directory:
        for name, count in steps.items():
            logger.info("recording %d steps in a child process (%s)", count, name)
            reports[name] = run_child(size, count, threads, directory / f"{name}.nsm")

    short, long = reports["short"], reports["long"]
    case = Case(
        ratio=long["peak_rss_bytes"] / short["peak_rss_bytes"],
        goal=GOAL,
        figures={
            "size": size.to_dict(),
            "short_steps": steps["short"],
            "long_steps": steps["long"],
            "short_peak_rss_mb": _megabytes(short["peak_rss_bytes"]),
            "long_peak_rss_mb": _megabytes(long["peak_rss_bytes"]),
            "short_growth_mb": _megabytes(short["peak_rss_bytes"] - short["baseline_rss_bytes"]),
            "long_growth_mb": _megabytes(long["peak_rss_bytes"] - long["baseline_rss_bytes"]),
            "short_file_mb": _megabytes(short["file_bytes"]),
            "long_file_mb": _megabytes(long["file_bytes"]),
        },
    )
    return Result(
        title="Memory",
        compares=f"peak resident memory recording {steps['long']} steps ÷ recording {steps['short']} steps",
        cases={"long_vs_short": case},
        settings={"process": "one child process per configuration", "peak_since": short["peak_since"]},
    )


def run_child(size: ModelSize, steps: int, threads: int, path: Path) -> dict[str, Any]:
    """Record `steps` steps at `size` to `path` in a child process; return its report."""
    command = [
        sys.executable, "-m", "nsm_core.bench.memory",
        "--layers", str(size.layers), "--states", str(size.states), "--dim", str(size.dim),
        "--tokens", str(size.tokens), "--heads", str(size.heads),
        "--steps", str(steps), "--threads", str(threads), "--out", str(path),
    ]
    # The child must import this very nsm_core, also when it is not the installed one.
    package_root = str(Path(nsm_core.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the memory child recording {steps} steps timed out after {CHILD_TIMEOUT_SECONDS} s.") from None
    if completed.returncode != 0:
        raise BenchError(
            f"the memory child recording {steps} steps failed with exit code {completed.returncode}: "
            f"{completed.stderr.strip()[-2000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def reset_peak_rss() -> bool:
    """Restart the peak resident set size (VmHWM) from the current size; False where Linux's
    /proc/self/clear_refs is missing, in which case the peak counts from process start."""
    try:
        with open(CLEAR_REFS, "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")  # 5 resets the peak RSS (Linux 4.0 and later, proc(5))
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak resident set size: VmHWM on Linux, else ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        with open(PROC_STATUS, encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    import resource  # POSIX only, so imported where needed

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def _megabytes(count: int) -> float:
    return round(count / 1e6, 1)


def _child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record synthetic input and report peak memory as JSON.")
    for flag in ("--layers", "--states", "--dim", "--tokens", "--heads", "--steps", "--threads"):
        parser.add_argument(flag, type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from nsm_core.bench.common import nsm_config
    from nsm_core.modules import NSMModel
    from nsm_core.recording.runs import record_nsm

    torch.set_num_threads(args.threads)
    size = ModelSize(args.layers, args.states, args.dim, args.tokens, args.heads)
    model = NSMModel(nsm_config(size)).eval()
    token_ids = torch.randint(0, 256, (args.steps * size.tokens,), generator=torch.Generator().manual_seed(0))
    labels = [f"t{index}" for index in range(len(token_ids))]
    with torch.inference_mode():
        model(token_ids[None, : size.tokens])  # let torch allocate its working buffers first
    peak_from_start = reset_peak_rss()
    baseline = current_rss_bytes()

    record_nsm(model, token_ids, args.out, token_labels=labels, num_steps=args.steps)
    report = {
        "peak_rss_bytes": peak_rss_bytes(),
        "baseline_rss_bytes": baseline,
        "peak_since": "recording start" if peak_from_start else "process start",
        "file_bytes": args.out.stat().st_size,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())
