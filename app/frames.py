"""Arrays the views draw, read from a recording and cached as data (st.cache_data).

Every function takes the open recording as `_recording`, which Streamlit does not hash, and
the recording's content key (LoadedRecording.key), which it does. Shapes use the letters of
nsm_core/recording/schema.py; all arrays are float32 copies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nsm_core.analysis import summarize_recording
from nsm_core.recording import Recording, stats

# Derived frames cached per session and recording; enough for a few recordings' worth of slider moves.
MAX_CACHED_FRAMES = 512


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def states_by_layer(_recording: Recording, key: str, step: int) -> np.ndarray:
    """Return the states [L+1, S, D] of `step`: the initial states, then after each layer."""
    return _recording.states_through_layers(step)


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def per_state_by_layer(_recording: Recording, key: str, step: int, name: str) -> np.ndarray | None:
    """Return `importance` or `active` [L+1, S] of `step`, or None if the recording lacks it.

    Both are captured once per step and repeated over the layers, so layer 0 (the initial
    states) takes the value of layer 1.
    """
    if not _recording.has(name):
        return None
    values = np.array(_recording.array(name)[step], dtype=np.float32)  # [L, S]
    values = np.concatenate([values[:1], values])
    return values.astype(bool) if name == "active" else values


@st.cache_data(max_entries=8, show_spinner="Scanning the recording's value range…")
def states_range(_recording: Recording, key: str, difference: bool = False) -> tuple[float, float] | None:
    """Return the finite (min, max) of the states over all steps and layers, or None if none is finite.

    With `difference`, the range of the change from each layer to the next instead, for
    the difference view.
    """
    low, high = np.inf, -np.inf
    for step in range(_recording.num_steps):
        values = _recording.states_through_layers(step)  # one step at a time bounds memory
        if difference:
            values = np.diff(values, axis=0)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return None if low > high else (low, high)


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def head_matrix(_recording: Recording, key: str, name: str, step: int, layer: int, head: int | None) -> np.ndarray | None:
    """Return one head of a headed field at a frame, or for head None the mean over heads.

    `routing` and `readout` give [T, S] over the step's real tokens, `state_attention`
    [S, S], `token_attention` [T, T]. Returns None at layer 0 or if the field is missing.
    """
    frame = _recording.frame(step, layer)
    values = getattr(frame, name)  # [H, ...]
    if values is None:
        return None
    # Frame() has cut the padding tokens off, so a NaN here is a NaN the model produced.
    return values.mean(axis=0) if head is None else values[head]


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def gates_by_layer(_recording: Recording, key: str, step: int) -> np.ndarray | None:
    """Return the gate activations [L, S, G] of `step`, or None if the recording has no gates."""
    if not _recording.has("gates"):
        return None
    return np.array(_recording.array("gates")[step], dtype=np.float32)


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def values_over_steps(_recording: Recording, key: str, layer: int, dim: int | None) -> np.ndarray:
    """Return one dimension of every state at `layer` for each step [P, S], or for dim None the L2 norm."""
    rows = []
    for step in range(_recording.num_steps):
        states = _recording.states_through_layers(step)[layer]  # [S, D]
        rows.append(np.linalg.norm(states, axis=1) if dim is None else states[:, dim])
    return np.stack(rows).astype(np.float32)


@st.cache_data(max_entries=16, show_spinner=False)
def animation_frames(
    _recording: Recording, key: str, steps: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str]]:
    """Collect the frames that animate every layer of each of `steps`, in order.

    Returns states [F, S, D], importance [F, S] or None, active [F, S] or None, and one label
    per frame ("layer 2", or "step 1 · layer 2" when several steps play), with F = len(steps) × (L+1).
    """
    states, importance, active, labels = [], [], [], []
    for step in steps:
        states.append(states_by_layer(_recording, key, step))
        importance.append(per_state_by_layer(_recording, key, step, "importance"))
        active.append(per_state_by_layer(_recording, key, step, "active"))
        for layer in range(_recording.num_layers + 1):
            name = "initial" if layer == 0 else f"layer {layer}"
            labels.append(f"step {step} · {name}" if len(steps) > 1 else name)
    return (
        np.concatenate(states),
        None if importance[0] is None else np.concatenate(importance),
        None if active[0] is None else np.concatenate(active),
        labels,
    )


@st.cache_data(max_entries=8, show_spinner="Checking every frame of the recording…")
def summary_table(_recording: Recording, key: str) -> pd.DataFrame:
    """Return the health table of every (step, layer, state) with its flags (nsm_core.analysis)."""
    return summarize_recording(_recording)


@st.cache_data(max_entries=MAX_CACHED_FRAMES, show_spinner=False)
def frame_field(_recording: Recording, key: str, name: str, step: int, layer: int) -> np.ndarray | None:
    """Return one field of frame (step, layer) as Frame() gives it, or None where it has none."""
    return getattr(_recording.frame(step, layer), name)


@st.cache_data(max_entries=8, show_spinner=False)
def summary_csv(_recording: Recording, key: str) -> str:
    """Return summary_table() as CSV text, for the download button."""
    return summary_table(_recording, key).to_csv(index=False)


@st.cache_data(max_entries=8, show_spinner="Counting NaN and ±Inf values…")
def non_finite_warnings(_recording: Recording, key: str) -> list[str]:
    """Return one warning per field with NaN or ±Inf values, with their counts (padding left out)."""
    return stats.non_finite_warnings(_recording, stats.recording_stats(_recording))
