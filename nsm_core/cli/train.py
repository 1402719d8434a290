"""`train`: train an NSM on a task and save the checkpoint with its test accuracy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from nsm_core.checkpoint import save_checkpoint
from nsm_core.tasks import TASKS, build_task
from nsm_core.tasks.record import record_training
from nsm_core.training import TrainSettings, train

# The budgets in the README are measured with this many threads (a 2-core machine).
DEFAULT_THREADS = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train an NSM on a task and save a checkpoint")
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="task to train on")
    parser.add_argument("--out", type=Path,
                        help="checkpoint to write (.safetensors); default: TASK.safetensors here")
    parser.add_argument("--force", action="store_true", help="overwrite --out and --record-training if they exist")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the batch order")
    parser.add_argument("--epochs", type=int, help="passes over the training split (default: the task's)")
    parser.add_argument("--batch-size", type=int, help="sequences per optimiser step (default: the task's)")
    parser.add_argument("--learning-rate", type=float, help="peak AdamW learning rate (default: the task's)")
    parser.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: the task's)")
    parser.add_argument("--checkpoints", type=int,
                        help="training checkpoints at which the test accuracy and weights are kept")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"CPU threads for PyTorch (default: {DEFAULT_THREADS})")
    parser.add_argument("--record-training", type=Path, metavar="FILE",
                        help="also write a recording (.nsm) of --probe-sample at every training checkpoint")
    parser.add_argument("--probe-sample", type=int, default=0,
                        help="index of the test sample recorded by --record-training (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from nsm_core.cli.main import UsageError

    out = args.out if args.out is not None else Path(f"{args.task}.safetensors")
    for flag, path in (("--out", out), ("--record-training", args.record_training)):
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{flag} {path} is a directory; give a file name inside it.")
        if path.exists() and not args.force:
            raise UsageError(f"{flag} {path} already exists; pass --force to overwrite it or choose another name.")
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads} is invalid; use 1 or more.")

    task = build_task(args.task)
    try:
        settings = TrainSettings.for_task(
            task, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, weight_decay=args.weight_decay,
            checkpoints=args.checkpoints, max_steps=args.max_steps,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    probe = None
    if args.record_training is not None:
        try:
            probe = task.sample(args.probe_sample, "test")
        except IndexError as error:
            raise UsageError(f"--probe-sample: {error}") from None

    torch.set_num_threads(args.threads)
    result = train(task, settings, progress=not args.quiet)
    save_checkpoint(result.model, out, info=result.info(task))
    print(
        f"{task.name}: test accuracy {100 * result.accuracy:.2f}% on {task.split_size('test')} "
        f"test sequences after {result.steps} steps in {result.seconds:.1f} s "
        f"({result.cpu_seconds:.1f} s of CPU time); wrote {out}"
    )
    if probe is not None:
        record_training(task, result.snapshots, probe, args.record_training, config=result.model.config)
        print(f"wrote {args.record_training} ({len(result.snapshots)} training checkpoints)")
    if args.verbose:
        print(json.dumps(result.history(), indent=1), file=sys.stderr)
    return 0
