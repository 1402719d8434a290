"""Recording overhead: P steps recorded to a file against the same P steps unrecorded.

The recorded run is `record_nsm` end to end: hooks, copies, step assembly, writing every
step and committing the file (sync and rename). A third run, capture only, keeps the hooks
and the step assembly but writes nothing; it shows how much of the overhead is the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nsm_core.bench.common import (
    BenchSizes,
    Case,
    ModelSize,
    Result,
    median,
    nsm_config,
    nsm_dims,
    paired_ratio,
    recording_data_bytes,
    remove_if_present,
    scratch_dir,
    time_interleaved,
)
from nsm_core.modules import NSMModel
from nsm_core.recording import Recorder, Recording
from nsm_core.recording.recorder import step_arrays
from nsm_core.recording.runs import record_nsm
from nsm_core.tokenize import split_steps

logger = logging.getLogger(__name__)

GOAL = 1.10


def measure_overhead(sizes: BenchSizes, scratch_parent: Path | None = None) -> Result:
    """Measure every size in sizes.overhead_sizes; one Case per size."""
    result = Result(
        title="Recording overhead",
        compares="time to record P steps to a file ÷ time to run the same P steps unrecorded",
        settings={"repeats": sizes.overhead_repeats, "warmups": sizes.warmups},
    )
    for name, size in sizes.overhead_sizes.items():
        steps = sizes.overhead_steps[name]
        logger.info("recording overhead at %s, %d steps", size.label(), steps)
        result.cases[name] = _measure_size(size, steps, sizes, scratch_parent)
    return result


def _measure_size(size: ModelSize, steps: int, sizes: BenchSizes, scratch_parent: Path | None) -> Case:
    model = NSMModel(nsm_config(size)).eval()
    generator = torch.Generator().manual_seed(0)
    token_ids = torch.randint(0, 256, (steps * size.tokens,), generator=generator)
    labels = [f"t{index}" for index in range(len(token_ids))]
    file_bytes = recording_data_bytes(nsm_dims(size, steps))
    final_states: dict[str, np.ndarray] = {}

    def unrecorded() -> None:
        final_states["unrecorded"] = _run_steps(model, token_ids, steps, lambda: None)

    def capture_only() -> None:
        with Recorder(model) as recorder:
            _run_steps(model, token_ids, steps, lambda: step_arrays(recorder.pop_step(), size.tokens))

    with scratch_dir(file_bytes, scratch_parent, "the recording-overhead measurement") as directory:
        path = directory / "overhead.nsm"

        def recorded() -> None:
            record_nsm(model, token_ids, path, token_labels=labels, num_steps=steps)

        def delete_previous_file(name: str) -> None:
            if name == "recorded":
                remove_if_present(path)

        seconds = time_interleaved(
            {"unrecorded": unrecorded, "capture_only": capture_only, "recorded": recorded},
            repeats=sizes.overhead_repeats,
            warmups=sizes.warmups,
            before_each=delete_previous_file,
        )
        # The last recorded run's file is still there: its final states must equal the
        # unrecorded run's bit for bit, since the hooks only copy.
        recorded_final = np.array(Recording.open(path).array("states")[-1, -1])
        file_bytes = path.stat().st_size

    unrecorded_seconds = median(seconds["unrecorded"])
    recorded_seconds = median(seconds["recorded"])
    return Case(
        ratio=paired_ratio(seconds, "recorded", "unrecorded"),
        goal=GOAL,
        figures={
            "size": size.to_dict(),
            "steps": steps,
            "unrecorded_seconds": round(unrecorded_seconds, 4),
            "recorded_seconds": round(recorded_seconds, 4),
            "capture_only_seconds": round(median(seconds["capture_only"]), 4),
            "capture_only_ratio": round(paired_ratio(seconds, "capture_only", "unrecorded"), 3),
            "overhead_ms_per_step": round((recorded_seconds - unrecorded_seconds) / steps * 1000, 2),
            "file_bytes": file_bytes,
            "final_states_bit_exact": bool(np.array_equal(recorded_final, final_states["unrecorded"])),
        },
    )


def _run_steps(model: NSMModel, token_ids: torch.Tensor, steps: int, after_step: Callable[[], object]) -> np.ndarray:
    """Run the model over token_ids in `steps` chunks the way record_nsm does; return final states [S, D]."""
    output = None
    with torch.inference_mode():
        for chunk in split_steps(len(token_ids), steps):
            state = output.state if output is not None else None
            output = model(token_ids[chunk].unsqueeze(0), state=state, position_offset=chunk.start)
            after_step()
    return output.state.h[0].numpy().copy()
