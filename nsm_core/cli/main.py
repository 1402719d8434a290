"""Entry point of `python -m nsm_core`.

Exit codes: 0 success, 1 a file could not be read or written, 2 invalid usage (a bad flag
or flag value), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from nsm_core.checkpoint import CheckpointError
from nsm_core.config import ConfigError
from nsm_core.recording.errors import RecordingError

# Subcommand modules; each defines add_parser(subparsers) and run(args) -> int.
COMMANDS = ("record", "inspect", "train", "evaluate", "bench")

EXIT_FILE_ERROR = 1
EXIT_USAGE = 2


class UsageError(ValueError):
    """A flag value that is invalid; reported with exit code 2."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="python -m nsm_core",
        description="Run Neural State Machine models and record their per-layer state.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {}
    for name in COMMANDS:
        module = importlib.import_module(f"nsm_core.cli.{name}")
        module.add_parser(subparsers)
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return modules[args.command].run(args)
    except (UsageError, ConfigError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (RecordingError, CheckpointError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FILE_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
