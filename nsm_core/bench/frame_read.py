"""Frame read: one frame from a large recording against one frame from a small recording.

Both recordings have the same per-step shape and differ only in their number of steps P,
so a reader that costs what the frame costs reads both at the same speed. Both files are
read once before timing, so that they sit in the page cache and the disk is not measured.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np

from nsm_core.bench.common import (
    BenchSizes,
    Case,
    ModelSize,
    Result,
    median,
    nsm_dims,
    paired_ratio,
    recording_data_bytes,
    scratch_dir,
    time_interleaved,
)
from nsm_core.recording import Recording, RecordingWriter
from nsm_core.recording.recorder import build_manifest
from nsm_core.recording.schema import FIELDS, step_shape

logger = logging.getLogger(__name__)

GOAL = 2.0
# Upper bound of the header (manifest with its token labels) per step, for the disk check.
HEADER_BYTES_PER_STEP = 1024
READ_CHUNK_BYTES = 8 * 1024 * 1024


def measure_frame_read(sizes: BenchSizes, scratch_parent: Path | None = None) -> Result:
    """Write a small and a large synthetic recording, then time random frame reads from both."""
    size = sizes.frame_size
    step_bytes = recording_data_bytes(nsm_dims(size, 1))
    steps = {name: max(1, round(target / step_bytes)) for name, target in sizes.frame_file_bytes.items()}
    required = sum(count * (step_bytes + HEADER_BYTES_PER_STEP) for count in steps.values())

    with scratch_dir(required, scratch_parent, "the frame-read measurement") as directory:
        recordings, figures = {}, {}
        for name, count in steps.items():
            logger.info("writing a %d-step synthetic recording (%s)", count, name)
            path = write_synthetic_recording(directory / f"{name}.nsm", size, count)
            _read_through(path)
            start = time.perf_counter()
            recordings[name] = Recording.open(path)
            figures[f"{name}_open_seconds"] = round(time.perf_counter() - start, 4)
            figures[f"{name}_file_bytes"] = path.stat().st_size
            figures[f"{name}_steps"] = count

        candidates = {name: _random_frame_reader(recording) for name, recording in recordings.items()}
        seconds = time_interleaved(candidates, repeats=sizes.frame_reads, warmups=sizes.warmups)
        recordings.clear()  # release the memory maps before the directory is removed

    case = Case(
        ratio=paired_ratio(seconds, "large", "small"),
        goal=GOAL,
        figures={
            "size": size.to_dict(),
            "frame_bytes": step_bytes // size.layers,
            "small_frame_ms": round(median(seconds["small"]) * 1000, 4),
            "large_frame_ms": round(median(seconds["large"]) * 1000, 4),
            **figures,
        },
    )
    return Result(
        title="Frame read",
        compares="time to read one frame from the large recording ÷ from the small one",
        cases={"large_vs_small": case},
        settings={"reads": sizes.frame_reads, "warmups": sizes.warmups, "page_cache": "warm"},
    )


def _random_frame_reader(recording: Recording):
    """Return a function that reads a different random (step, layer) frame on every call."""
    chooser = random.Random(0)

    def read() -> None:
        recording.frame(chooser.randrange(recording.num_steps), chooser.randint(1, recording.num_layers))

    return read


def _read_through(path: Path) -> None:
    with open(path, "rb") as file:
        while file.read(READ_CHUNK_BYTES):
            pass


def write_synthetic_recording(path: Path, size: ModelSize, num_steps: int) -> Path:
    """Write a recording of random values with the NSM model's fields at `size` over num_steps.

    Routing and attention rows are random, not normalised: the reader does not care, and
    one set of arrays reused for every step (with the step number in the states) keeps
    writing fast.
    """
    dims = nsm_dims(size, num_steps)
    fields = [name for name in FIELDS if name != "sequence_logits"]
    rng = np.random.default_rng(0)
    arrays = {
        name: (np.ones(step_shape(name, dims), np.uint8) if FIELDS[name].kind == "mask"
               else rng.random(step_shape(name, dims), dtype=np.float32))
        for name in fields
    }
    labels = [f"t{index}" for index in range(size.tokens)]
    manifest = build_manifest(
        model_info={"kind": "synthetic", "size": size.to_dict()},
        token_labels=[labels] * num_steps,
        step_labels=[f"step {step}" for step in range(num_steps)],
        gate_names=["update", "reset"],
    )
    with RecordingWriter(path, dims, fields, manifest) as writer:
        for step in range(num_steps):
            arrays["states"][:, 0, 0] = step
            writer.write_step(step, arrays)
    return path
