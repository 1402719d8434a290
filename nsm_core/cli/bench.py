"""`bench`: measure recording overhead, frame reads, dashboard reruns, memory and payload.

Every measurement compares two runs made side by side in one invocation and reports their
ratio against a goal, with the absolute figures beside it for context.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from nsm_core.bench.common import BenchError, Result
from nsm_core.bench.runner import FULL, MEASUREMENTS, QUICK, describe_machine, run_benchmarks

DEFAULT_THREADS = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure speed and memory against the project's goals")
    parser.add_argument("--quick", action="store_true",
                        help="the same measurements at reduced sizes (under a minute)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object keyed by measurement instead of text")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"torch intra-op threads during the run (default: {DEFAULT_THREADS})")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, metavar="NAME",
                        help=f"run only this measurement; repeat for more ({', '.join(MEASUREMENTS)})")
    parser.add_argument("--scratch-dir", type=Path,
                        help="directory for the temporary recordings, about 1.3 GB at a time (default: the system temp dir)")


def run(args: argparse.Namespace) -> int:
    from nsm_core.cli.main import UsageError
    from nsm_core.cli.record import exit_cleanly_on_sigterm

    if args.threads < 1:
        raise UsageError(f"--threads {args.threads} is invalid; use 1 or more.")
    if args.scratch_dir is not None and not args.scratch_dir.is_dir():
        raise UsageError(f"--scratch-dir {args.scratch_dir} is not a directory; create it or choose another.")
    exit_cleanly_on_sigterm()  # the scratch recordings of up to a few GB must not outlive a kill
    sizes = QUICK if args.quick else FULL
    machine = describe_machine()
    busy = busy_warning(machine)
    if busy:
        print(f"python -m nsm_core bench: warning: {busy}", file=sys.stderr)
    start = time.perf_counter()

    def announce(name: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] measuring {name}", file=sys.stderr, flush=True)

    try:
        results = run_benchmarks(sizes, threads=args.threads, only=args.only,
                                 scratch_parent=args.scratch_dir, progress=announce)
    except BenchError as error:
        print(f"python -m nsm_core bench: error: {error}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start

    if args.json:
        print(json.dumps({name: result.to_dict() for name, result in results.items()}, indent=2, ensure_ascii=False))
    else:
        print(format_report(results, sizes.name, args.threads, machine, elapsed))
    return 0


def busy_warning(machine: dict[str, Any]) -> str | None:
    """Return a warning when other processes keep more CPUs busy than there are, else None."""
    load, cpus = machine["load_average_1min"], machine["logical_cpus"]
    if load is None or cpus is None or load <= cpus:
        return None
    return (
        f"the load average is {load} on {cpus} logical CPUs, so other processes share the CPUs "
        "and timings are slower and noisier than on an idle machine; torch's worker threads "
        "suffer most. Rerun when the machine is idle for figures to compare."
    )


def format_report(results: dict[str, Result], sizes_name: str, threads: int, machine: dict[str, Any],
                  elapsed: float) -> str:
    """Return the text report: machine, one summary row per measurement, then every case's figures."""
    lines = [
        f"NSM Inspector benchmark ({sizes_name} sizes, torch threads {threads}, {elapsed:.0f} s)",
        f"{machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['memory_gb']} GiB RAM, "
        f"load average {machine['load_average_1min']} at start",
        f"{machine['os']}; Python {machine['python']}, torch {machine['torch']}, numpy {machine['numpy']}",
    ]
    busy = busy_warning(machine)
    if busy:
        lines.append(f"warning: {busy}")
    lines += ["", f"{'measurement':<20} {'ratio':>7} {'goal':>6}  met"]
    for name, result in results.items():
        summary = result.to_dict()
        ratio = "—" if summary["ratio"] is None else f"{summary['ratio']:.2f}"
        goal = "—" if summary["goal"] is None else f"{summary['goal']:.2f}"
        met = {True: "yes", False: "NO", None: "—"}[summary["met"]]
        lines.append(f"{name:<20} {ratio:>7} {goal:>6}  {met}")

    for name, result in results.items():
        lines += ["", f"{result.title} ({name}): {result.compares}"]
        if result.note:
            lines.append(f"  {result.note}")
        for case_name, case in result.cases.items():
            ratio = "—" if case.ratio is None else f"{case.ratio:.3f}"
            lines.append(f"  {case_name}: ratio {ratio} (goal {case.goal})")
            lines += [f"    {key}: {value}" for key, value in case.figures.items()]
        settings = ", ".join(f"{key} {value}" for key, value in result.settings.items())
        if settings:
            lines.append(f"  settings: {settings}")
    return "\n".join(lines)
