"""Sidebar widgets that swap a bundled task recording for another input of the same model.

Under a bundled recording of a trained task model (digits, recall), the user can pick another
test sample by index or, for recall, type a sequence such as "3:7 12:5 ?12 ?3". The model
runs on it and the new recording replaces the bundled one in every view.
"""

from __future__ import annotations

import logging

import streamlit as st

from app import task_samples
from app.sources import LoadedRecording
from nsm_core.checkpoint import CheckpointError
from nsm_core.recording import Recording

logger = logging.getLogger(__name__)

TYPED_HELP = (
    "Pairs as key:value, then queries as ?key, separated by spaces; keys are distinct and every "
    "query names a key of a pair. The model was trained on 8 pairs."
)


def sample_key(checkpoint: str) -> str:
    return f"task_sample:{checkpoint}"


def typed_key(checkpoint: str) -> str:
    return f"task_typed:{checkpoint}"


@st.cache_resource(max_entries=task_samples.MAX_CACHED_SAMPLES, show_spinner=False)
def _open_test_sample(checkpoint: str, index: int) -> tuple[Recording, bytes]:
    data = task_samples.record_test_sample(checkpoint, index)
    return Recording.from_bytes(data, f"{checkpoint} test sample {index}"), data


@st.cache_resource(max_entries=task_samples.MAX_CACHED_SAMPLES, show_spinner=False)
def _open_typed(checkpoint: str, text: str) -> tuple[Recording, bytes]:
    data = task_samples.record_typed_sequence(checkpoint, text)
    return Recording.from_bytes(data, f"{checkpoint} typed sequence"), data


def task_sample_picker(loaded: LoadedRecording) -> LoadedRecording:
    """Draw the sample picker under a bundled task recording; return the recording to show.

    Returns `loaded` itself when it is not a task recording with a bundled checkpoint, when it
    records training checkpoints, or while the user keeps its own sample.
    """
    extra = loaded.recording.extra
    checkpoint = task_samples.bundled_checkpoint(extra)
    if checkpoint is None or extra.get("kind") == "training":
        return loaded
    try:
        count = task_samples.sample_count(checkpoint)
        typed_allowed = task_samples.accepts_typed_input(checkpoint)
    except CheckpointError as error:
        logger.warning("bundled checkpoint %s is unusable: %s", checkpoint, error)
        st.warning(f"Cannot run {checkpoint} on other inputs: {error}")
        return loaded

    bundled_index = extra.get("sample_index")
    if sample_key(checkpoint) not in st.session_state:
        st.session_state[sample_key(checkpoint)] = bundled_index if isinstance(bundled_index, int) else 0
    index = st.number_input(
        f"Test sample (0–{count - 1})", min_value=0, max_value=count - 1, step=1, key=sample_key(checkpoint),
        help="Run the trained model on another held-out test sample.",
    )
    text = ""
    if typed_allowed:
        text = st.text_input("Or type a sequence", key=typed_key(checkpoint), placeholder="3:7 12:5 9:0 ?12 ?3",
                             help=TYPED_HELP).strip()

    if text:
        try:
            recording, data = _open_typed(checkpoint, text)
        except ValueError as error:
            st.error(f"Invalid sequence: {error}")
        else:
            return LoadedRecording(f"task:{checkpoint}:typed:{text}", recording, "typed sequence", data)
    if index == bundled_index:
        return loaded
    recording, data = _open_test_sample(checkpoint, int(index))
    return LoadedRecording(f"task:{checkpoint}:{index}", recording, f"test sample {index}", data)
