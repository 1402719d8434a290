"""`record`: run a preset or a checkpoint on an input and write a recording file.

A checkpoint trained on a task (`python -m nsm_core train`) is recorded on one of its task's
samples (`--sample N`, `--split`) or, for recall, on a typed sequence (`--input "3:7 ?3"`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from nsm_core.checkpoint import CheckpointError, load_checkpoint
from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel, TutorialConfig, TutorialDynamics
from nsm_core.recording.runs import record_nsm, record_tutorial
from nsm_core.tasks import RecallTask, Sample, Task
from nsm_core.tasks.checkpoints import task_from_info
from nsm_core.tasks.record import record_sample
from nsm_core.tokenize import byte_labels, encode_bytes

DEFAULT_TEXT = "the cat sat on the mat"
# Config flags: (flag, NSMConfig field, type, help).
CONFIG_FLAGS = (
    ("--states", "num_states", int, "number of state slots S"),
    ("--state-dim", "state_dim", int, "state dimension D"),
    ("--token-dim", "token_dim", int, "token stream width E"),
    ("--layers", "num_layers", int, "number of layers L"),
    ("--heads", "num_heads", int, "attention and routing heads H"),
    ("--gate", "gate", str, "gated update: gru or lstm"),
    ("--temperature", "routing_temperature", float, "routing softmax temperature (lower is sharper)"),
    ("--top-k", "routing_top_k", int, "keep only the k largest routing weights per token"),
    ("--prune-threshold", "prune_threshold", float, "deactivate states with importance below this, in [0, 1]"),
    ("--seed", "seed", int, "seed for weights and, for the tutorial, the noise"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("record", help="record a model's per-layer state to a file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=("nsm", "tutorial"), default="nsm",
                        help="model to record: a randomly initialised NSM, or the 5×10 teaching dynamics")
    source.add_argument("--checkpoint", type=Path, help="a trained checkpoint (.safetensors) to record")
    for flag, field, kind, help_text in CONFIG_FLAGS:
        parser.add_argument(flag, dest=field, type=kind, help=help_text)
    parser.add_argument("--no-token-attention", action="store_true", help="disable local token↔token attention")
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--input", help=f"input text, one token per UTF-8 byte (default: {DEFAULT_TEXT!r})")
    text.add_argument("--input-file", type=Path, help="read the input text from this UTF-8 file")
    parser.add_argument("--sample", type=int,
                        help="for a task checkpoint: index of the task sample to record (default: 0)")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="for a task checkpoint: split that --sample indexes (default: test)")
    parser.add_argument("--steps", type=int, default=1,
                        help="split the input into this many chunks; states carry from chunk to chunk")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="stored float type")
    parser.add_argument("--out", type=Path, required=True, help="recording file to write (.nsm)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def run(args: argparse.Namespace) -> int:
    from nsm_core.cli.main import UsageError

    if args.out.exists() and not args.force:
        raise UsageError(f"--out {args.out} already exists; pass --force to overwrite it or choose another name.")
    if args.out.exists() and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a directory; give a file name such as {args.out / 'run.nsm'}.")
    if args.steps < 1:
        raise UsageError(f"--steps {args.steps} is invalid; use 1 or more.")

    overrides = {field: getattr(args, field) for _, field, _, _ in CONFIG_FLAGS if getattr(args, field) is not None}
    if args.no_token_attention:
        overrides["token_attention"] = False

    exit_cleanly_on_sigterm()
    progress = tqdm(total=args.steps, unit="step", disable=args.steps < 2, file=sys.stderr, delay=0.5)
    update = lambda step: progress.update(1)  # noqa: E731

    if args.preset == "tutorial" and args.checkpoint is None:
        return _record_tutorial(args, overrides, update)

    if args.checkpoint is not None:
        if overrides:
            raise UsageError(f"config flags {sorted(overrides)} cannot change a trained --checkpoint; drop them.")
        model, info = load_checkpoint(args.checkpoint)
        if "task" in info:
            return _record_task_sample(args, model, info)
        if model.config.input_dim is not None:
            raise UsageError(
                f"{args.checkpoint} takes feature vectors of width {model.config.input_dim}, not text, "
                "and names no task whose samples could feed it; record a checkpoint written by "
                "`python -m nsm_core train --task TASK` with --sample N."
            )
    else:
        model = NSMModel(NSMConfig(**overrides)).eval()
    if args.sample is not None:
        raise UsageError("--sample picks a sample of a trained task; pass a --checkpoint written by `train`.")

    text = _read_text(args)

    token_ids = encode_bytes(text)
    if args.steps > max(1, len(token_ids)):
        raise UsageError(
            f"--steps {args.steps} is more than the {len(token_ids)} tokens of the input; "
            f"every step needs at least one token, so use --steps {max(1, len(token_ids))} or fewer."
        )
    record_nsm(
        model, token_ids, args.out, token_labels=byte_labels(text), num_steps=args.steps,
        dtype=args.dtype, extra={"input_text": text}, progress=update,
    )
    progress.close()
    print(f"wrote {args.out}")
    return 0


def _record_task_sample(args: argparse.Namespace, model: NSMModel, info: dict) -> int:
    from nsm_core.cli.main import UsageError

    task = task_from_info(info, args.checkpoint.name)
    try:
        task.check_model(model.config)
    except ValueError as error:
        raise CheckpointError(f"{args.checkpoint.name}: {error}") from None
    if args.steps != 1:
        raise UsageError(f"--steps {args.steps} splits text input; a task sample is recorded as one step, so drop it.")

    sample = _task_sample(args, task)
    record_sample(model, task, sample, args.out, dtype=args.dtype,
                  extra={"checkpoint": args.checkpoint.name, "checkpoint_accuracy": info.get("accuracy")})
    prediction = task.predict(model, sample)
    right = sum(prediction.correct)
    print(f"wrote {args.out}: {task.name}, {sample.split} sample"
          f"{'' if sample.index is None else f' {sample.index}'}, {right}/{len(prediction.correct)} correct")
    return 0


def _task_sample(args: argparse.Namespace, task: Task) -> Sample:
    from nsm_core.cli.main import UsageError

    typed = args.input is not None or args.input_file is not None
    if typed and args.sample is not None:
        raise UsageError("--sample and --input both choose the input; pass only one of them.")
    if typed:
        if not isinstance(task, RecallTask):
            raise UsageError(f"task {task.name!r} takes no typed input; pick one of its samples with --sample N.")
        try:
            return task.parse(_read_text(args))
        except ValueError as error:
            raise UsageError(f"--input: {error}") from None
    try:
        return task.sample(0 if args.sample is None else args.sample, args.split)
    except IndexError as error:
        raise UsageError(f"--sample: {error}") from None


def _record_tutorial(args: argparse.Namespace, overrides: dict, update) -> int:
    from nsm_core.cli.main import UsageError

    allowed = {"num_states", "state_dim", "num_layers", "seed"}
    unsupported = sorted(set(overrides) - allowed)
    if unsupported:
        raise UsageError(f"the tutorial preset only takes --states, --state-dim, --layers and --seed, not {unsupported}.")
    if args.input is not None or args.input_file is not None:
        raise UsageError("the tutorial preset has no input; drop --input/--input-file.")
    try:
        config = TutorialConfig(**overrides)
    except ValueError as error:
        raise UsageError(str(error)) from None
    record_tutorial(TutorialDynamics(config), args.out, num_steps=args.steps, dtype=args.dtype, progress=update)
    print(f"wrote {args.out}")
    return 0


def _read_text(args: argparse.Namespace) -> str:
    from nsm_core.cli.main import UsageError

    if args.input_file is None:
        return DEFAULT_TEXT if args.input is None else args.input
    try:
        return args.input_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"--input-file {args.input_file} is not UTF-8 text (byte {error.start}); convert it to UTF-8."
        ) from None


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit so that the writer's cleanup deletes its temporary file.

    SIGKILL cannot be caught; the temporary file it leaves behind is rejected as unfinished.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    if hasattr(signal, "SIGHUP"):  # a closed terminal; POSIX only
        signal.signal(signal.SIGHUP, handler)
