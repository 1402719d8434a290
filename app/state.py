"""Session state of the dashboard: widget keys, their first values, and what the pages read.

The entry script (app/streamlit_app.py) draws the source and playback widgets on every run
and stores the result as a ViewContext; each page reads it with view_context().
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app.sources import DEFAULT_RECORDING, LoadedRecording
from app.text import markdown_literal
from nsm_core.recording import Recording

# Sources.
SOURCE_KIND = "source_kind"
BUNDLED_NAME = "bundled_name"
UPLOAD = "upload"
FOLDER_NAME = "folder_name"
UPLOAD_DIGESTS = "upload_digests"  # uploaded file id -> SHA-256 of its content

# Playback.
STEP = "step"
LAYER = "layer"
TOKEN = "token"
HEAD = "head"
COLOUR_SCALE = "colour_scale"
THRESHOLD = "routing_threshold"

# Views.
STATE_DIFF = "state_diff"
ANIMATE_STEPS = "animate_steps"
TRAJECTORY_DIM = "trajectory_dim"
PROJECTION = "projection_components"
SATURATION = "gate_saturation"
TIMELINE_FLAG = "timeline_flag"

VIEW_CONTEXT = "view_context"
SOURCE_ERROR = "source_error"  # message of the source that failed this run, or None

SOURCE_BUNDLED = "Bundled example"
SOURCE_UPLOAD = "Upload"
SOURCE_FOLDER = "Server folder"
SOURCE_LIVE = "Live model"

MEAN_OVER_HEADS = "mean over heads"
SCALE_FIXED = "fixed over the recording"
SCALE_FRAME = "per frame"
NORM = "norm"
ALL_FLAGS = "all flags"

DEFAULTS = {
    SOURCE_KIND: SOURCE_BUNDLED,
    BUNDLED_NAME: DEFAULT_RECORDING,
    UPLOAD_DIGESTS: {},
    STEP: 0,
    LAYER: 1,
    TOKEN: 0,
    HEAD: MEAN_OVER_HEADS,
    COLOUR_SCALE: SCALE_FIXED,
    THRESHOLD: 0.0,
    STATE_DIFF: False,
    ANIMATE_STEPS: False,
    TRAJECTORY_DIM: NORM,
    PROJECTION: "2D",
    SATURATION: 0.05,
    TIMELINE_FLAG: ALL_FLAGS,
}


def init_state() -> None:
    """Give every key its first value once per session; later runs keep the user's choices."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, dict) else value


def clamp(key: str, low: int, high: int) -> None:
    """Keep an integer widget's value inside [low, high] after the recording changed shape.

    Call before drawing the widget: Streamlit rejects a stored value outside the new range.
    """
    value = st.session_state.get(key, low)
    st.session_state[key] = min(max(int(value), low), high)


@dataclass(frozen=True)
class Playback:
    """The frame chosen with the playback controls and how to draw it."""

    step: int
    layer: int  # 0 = initial states, 1..L = after layer l
    token: int | None  # None when the step has no tokens
    head: int | None  # None = mean over heads
    fixed_scale: bool  # colour range over the whole recording, or per frame
    threshold: float  # routing weights below it are hidden, in [0, 1]


@dataclass(frozen=True)
class ViewContext:
    """The recording and frame every page shows this run."""

    loaded: LoadedRecording
    playback: Playback

    @property
    def recording(self) -> Recording:
        return self.loaded.recording

    @property
    def key(self) -> str:
        return self.loaded.key

    def frame_title(self) -> str:
        """Name the chosen frame, such as "step 1 (tokens 11–21), layer 2", as Markdown."""
        playback = self.playback
        layer = self.layer_title()
        if self.recording.num_steps == 1:
            return layer
        step = f"step {playback.step}"
        label = self.recording.step_labels[playback.step]
        return f"{step}, {layer}" if label == step else f"{step} ({markdown_literal(label)}), {layer}"

    def layer_title(self) -> str:
        """Name the chosen layer, such as "layer 2" or "initial states"."""
        return "initial states" if self.playback.layer == 0 else f"layer {self.playback.layer}"

    def head_title(self) -> str:
        if self.recording.num_heads <= 1 or self.playback.head is None:
            return "mean over heads" if self.recording.num_heads > 1 else "1 head"
        return f"head {self.playback.head}"


def describe_shape(recording: Recording) -> str:
    """Describe a recording's size, such as "2 steps × 2 layers, 8 states × 64 dims"."""

    def count(number: int, noun: str) -> str:
        return f"{number} {noun}" if number == 1 else f"{number} {noun}s"

    return (
        f"{count(recording.num_steps, 'step')} × {count(recording.num_layers, 'layer')}, "
        f"{count(recording.num_states, 'state')} × {count(recording.state_dim, 'dim')}"
    )


def view_context() -> ViewContext:
    """Return what the entry script chose this run; stop the page if there is nothing to show."""
    context = st.session_state.get(VIEW_CONTEXT)
    if context is None:
        error = st.session_state.get(SOURCE_ERROR)
        if error:
            st.error(f"The recording could not be opened. {error}")
            st.info("Choose another file or source in the sidebar; the bundled examples always open.")
        else:
            st.info("Choose a recording in the sidebar.")
        st.stop()
    return context
