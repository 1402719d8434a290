"""Record other inputs of a bundled task model: another test sample, or a typed recall sequence.

A task recording made by `python -m nsm_core record --checkpoint` names its checkpoint in
extra["checkpoint"]. When that checkpoint is bundled in assets/checkpoints, the dashboard can
run the model on any test sample, or on a recall sequence the user types, and play the new
recording back. Models are loaded once per process and recordings cached per input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from nsm_core.modules import NSMModel
from nsm_core.tasks import RecallTask, Task
from nsm_core.tasks.checkpoints import load_task_checkpoint
from nsm_core.tasks.record import record_sample_bytes

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"
# Recordings of picked samples kept in memory; each is a few tens of kB.
MAX_CACHED_SAMPLES = 64


def bundled_checkpoint(extra: dict[str, Any]) -> str | None:
    """Return the name of the bundled checkpoint behind a task recording, or None if there is none."""
    name = extra.get("checkpoint")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
        return None
    return name if (CHECKPOINTS_DIR / name).is_file() else None


@st.cache_resource(max_entries=8, show_spinner="Loading the trained model…")
def load_model(checkpoint: str) -> tuple[NSMModel, Task, dict[str, Any]]:
    """Return (model, task, info) of a bundled checkpoint; raise CheckpointError if it is unusable."""
    return load_task_checkpoint(CHECKPOINTS_DIR / checkpoint)


def sample_count(checkpoint: str) -> int:
    """Return the number of test samples of the checkpoint's task."""
    _, task, _ = load_model(checkpoint)
    return task.split_size("test")


def accepts_typed_input(checkpoint: str) -> bool:
    """Return True when the checkpoint's task reads typed sequences (recall)."""
    _, task, _ = load_model(checkpoint)
    return isinstance(task, RecallTask)


@st.cache_data(max_entries=MAX_CACHED_SAMPLES, show_spinner="Recording the sample…")
def record_test_sample(checkpoint: str, index: int) -> bytes:
    """Return a recording of test sample `index`; raise IndexError for an index outside the split."""
    model, task, info = load_model(checkpoint)
    sample = task.sample(index, "test")
    return record_sample_bytes(model, task, sample, extra=_checkpoint_extra(checkpoint, info))


@st.cache_data(max_entries=MAX_CACHED_SAMPLES, show_spinner="Recording the sequence…")
def record_typed_sequence(checkpoint: str, text: str) -> bytes:
    """Return a recording of a typed recall sequence such as "3:7 12:5 ?12".

    Raises ValueError naming the invalid item, or when the task takes no typed input.
    """
    model, task, info = load_model(checkpoint)
    if not isinstance(task, RecallTask):
        raise ValueError(f"task {task.name!r} takes no typed input; pick one of its test samples instead.")
    sample = task.parse(text)
    return record_sample_bytes(model, task, sample, extra=_checkpoint_extra(checkpoint, info))


def _checkpoint_extra(checkpoint: str, info: dict[str, Any]) -> dict[str, Any]:
    return {"checkpoint": checkpoint, "checkpoint_accuracy": info.get("accuracy")}
