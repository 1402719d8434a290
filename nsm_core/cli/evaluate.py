"""`evaluate`: measure a task checkpoint's accuracy on its held-out test split."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nsm_core.cli.train import DEFAULT_THREADS
from nsm_core.tasks.checkpoints import load_task_checkpoint


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="print a checkpoint's task and test accuracy")
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by `train` (.safetensors)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test sequences")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"CPU threads for PyTorch (default: {DEFAULT_THREADS})")


def run(args: argparse.Namespace) -> int:
    from nsm_core.cli.main import UsageError

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit} is invalid; use 1 or more, or leave it out for the whole split.")
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads} is invalid; use 1 or more.")
    torch.set_num_threads(args.threads)

    model, task, info = load_task_checkpoint(args.checkpoint)
    test_size = task.split_size("test")
    evaluated = test_size if args.limit is None else min(args.limit, test_size)
    started = time.perf_counter()
    accuracy = task.accuracy(model, "test", limit=evaluated)
    summary = {
        "checkpoint": str(args.checkpoint),
        "task": task.name,
        "description": task.description,
        "task_params": task.params(),
        "test_size": test_size,
        "evaluated": evaluated,
        "accuracy": accuracy,
        "saved_accuracy": info.get("accuracy"),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0

    print(f"{args.checkpoint}: task {task.name} ({task.description})")
    print(f"  test split: {test_size} sequences" + (f", first {evaluated} evaluated" if evaluated < test_size else ""))
    print(f"  accuracy: {100 * accuracy:.2f}%")
    saved = info.get("accuracy")
    if isinstance(saved, (int, float)) and evaluated == test_size:
        print(f"  accuracy saved at training time: {100 * saved:.2f}%")
    return 0
