"""`inspect`: summarise a recording file: shapes, config, labels, value ranges, NaN/Inf counts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nsm_core.recording import Recording, SCHEMA_VERSION
from nsm_core.recording.stats import non_finite_warnings, recording_stats

# Token labels printed per step in the text summary; --json lists them all.
LABELS_SHOWN = 24


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="summarise a recording file")
    parser.add_argument("file", type=Path, help="recording file (.nsm)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def summarise(recording: Recording) -> dict[str, Any]:
    """Return the summary that `inspect --json` prints."""
    dims = recording.dims
    stats = recording_stats(recording)
    return {
        "file": recording.source,
        "size_bytes": recording.size_bytes,
        "schema_version": recording.manifest["schema_version"],
        "reader_schema_version": SCHEMA_VERSION,
        "steps": dims["P"],
        "layers": dims["L"],
        "frames": dims["P"] * (dims["L"] + 1),
        "states": dims["S"],
        "state_dim": dims["D"],
        "tokens": dims.get("T", 0),
        "heads": dims.get("H", 0),
        "dims": dims,
        "fields": recording.fields,
        "dtype": recording.manifest["dtype"],
        "model": recording.model_info,
        "gate_names": recording.gate_names,
        "step_labels": recording.step_labels,
        "token_labels": [recording.token_labels(step) for step in range(dims["P"])],
        "value_ranges": {name: field.to_dict() for name, field in stats.items()},
        "warnings": non_finite_warnings(recording, stats),
        "versions": recording.manifest["versions"],
        "created": recording.manifest["created"],
        "extra": recording.extra,
    }


def run(args: argparse.Namespace) -> int:
    recording = Recording.open(args.file)
    summary = summarise(recording)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0

    print(f"{summary['file']}: {summary['size_bytes']:,} bytes, schema version {summary['schema_version']}")
    print(
        f"  {summary['steps']} steps × {summary['layers']} layers ({summary['frames']} frames), "
        f"{summary['states']} states × {summary['state_dim']} dims, {summary['tokens']} tokens, "
        f"{summary['heads']} heads, stored as {summary['dtype']}"
    )
    print(f"  model: {json.dumps(summary['model'], sort_keys=True)}")
    for step, labels in enumerate(summary["token_labels"][:5]):
        shown = " ".join(repr(label) for label in labels[:LABELS_SHOWN])
        more = f" … (+{len(labels) - LABELS_SHOWN})" if len(labels) > LABELS_SHOWN else ""
        print(f"  step {step} ({summary['step_labels'][step]}): {shown}{more}")
    print("  field            min         max        NaN   +Inf   -Inf")
    for name, stats in summary["value_ranges"].items():
        low = "—" if stats["min"] is None else f"{stats['min']:.4g}"
        high = "—" if stats["max"] is None else f"{stats['max']:.4g}"
        print(f"  {name:<15} {low:>10} {high:>11} {stats['nan']:>8} {stats['posinf']:>6} {stats['neginf']:>6}")
    for warning in summary["warnings"]:
        print(f"  warning: {warning}")
    return 0
