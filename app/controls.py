"""Sidebar widgets. Each function draws its widgets and returns what the user chose.

Errors from a source (a damaged file, a rejected path, an invalid live parameter) are shown
with st.error in plain words, never as a traceback, and the function returns None, so the
other widgets keep working.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from app import sources, state, task_picker
from app.text import markdown_literal, quoted_label
from app.sources import LiveSettings, LoadedRecording, SourceError
from nsm_core.config import GATE_TYPES, ConfigError
from nsm_core.recording import FILE_SUFFIX, Recording, RecordingError

logger = logging.getLogger(__name__)

SOURCE_KINDS = (state.SOURCE_BUNDLED, state.SOURCE_UPLOAD, state.SOURCE_FOLDER, state.SOURCE_LIVE)
STATE_DIMS = (4, 8, 16, 32, 64, 128)
HEAD_COUNTS = (1, 2, 4, 8)
MAX_LIVE_STATES = 64
MAX_LIVE_LAYERS = 8
MAX_LIVE_STEPS = 8


def source_picker(folder: Path | None) -> LoadedRecording | None:
    """Draw the source choice and its widgets; return the chosen recording or None."""
    kind = st.radio("Source", SOURCE_KINDS, key=state.SOURCE_KIND, horizontal=True)
    st.session_state[state.SOURCE_ERROR] = None
    try:
        if kind == state.SOURCE_BUNDLED:
            return _bundled_picker()
        if kind == state.SOURCE_UPLOAD:
            return _upload_picker()
        if kind == state.SOURCE_FOLDER:
            return _folder_picker(folder)
        return _live_picker()
    except (RecordingError, SourceError, ConfigError, FileNotFoundError) as error:
        logger.info("source %s failed: %s", kind, error)
        st.session_state[state.SOURCE_ERROR] = str(error)
        st.error(str(error))
        return None


def _bundled_picker() -> LoadedRecording:
    names = list(sources.BUNDLED_RECORDINGS)
    name = st.selectbox(
        "Example", names, key=state.BUNDLED_NAME, format_func=sources.BUNDLED_RECORDINGS.get
    )
    # A trained task model can also be run on another test sample or a typed sequence.
    return task_picker.task_sample_picker(sources.load_bundled(name))


def _upload_picker() -> LoadedRecording | None:
    limit = sources.upload_limit_mb()
    uploaded = st.file_uploader(
        f"Recording file ({FILE_SUFFIX}, up to {limit} MB)", type=[FILE_SUFFIX.lstrip(".")], key=state.UPLOAD
    )
    if uploaded is None:
        # A file over the limit never reaches the server: the uploader marks it red and keeps
        # its reason in a tooltip, so the limit and the way around it are spelled out here.
        st.info(
            f"Upload a {FILE_SUFFIX} recording, made with `python -m nsm_core record`. Files over "
            f"{limit} MB are rejected before they are sent (marked red in the uploader): put a larger "
            f"file in the server's recordings folder ({sources.RECORDINGS_DIR_FLAG} DIR) and choose "
            "Server folder, or record fewer steps or with --dtype float16."
        )
        return None
    # Check the size before reading the bytes. Streamlit has received them already, but
    # hashing and parsing an oversized file would still cost time.
    sources.check_upload_size(uploaded.name, uploaded.size, limit)

    digests = st.session_state[state.UPLOAD_DIGESTS]
    data = uploaded.getvalue()
    if uploaded.file_id not in digests:
        digests[uploaded.file_id] = sources.content_digest(data)
    return sources.load_upload(uploaded.name, data, digests[uploaded.file_id])


def _folder_picker(folder: Path | None) -> LoadedRecording | None:
    if folder is None:
        st.info(
            f"No server folder is set. Start the dashboard with `-- {sources.RECORDINGS_DIR_FLAG} DIR` "
            f"or set {sources.RECORDINGS_DIR_ENV}=DIR to list the recordings in DIR here."
        )
        return None
    names, truncated = sources.list_folder(folder)
    if not names:
        st.info(f"The server folder has no {FILE_SUFFIX} files.")
        return None
    if truncated:
        st.caption(f"Listing the first {len(names)} recordings only.")
    if st.session_state.get(state.FOLDER_NAME) not in names:
        st.session_state[state.FOLDER_NAME] = names[0]
    name = st.selectbox("Recording", names, key=state.FOLDER_NAME)
    return sources.load_from_folder(folder, name)


def _live_picker() -> LoadedRecording | None:
    with st.expander("Model and input", expanded=True, icon=":material/tune:"):
        settings = live_settings()
    loaded = sources.load_live(settings)
    st.download_button(
        "Download this recording",
        loaded.data,
        file_name=f"live-seed{settings.seed}{FILE_SUFFIX}",
        mime="application/octet-stream",
        icon=":material/download:",
    )
    return loaded


def live_settings() -> LiveSettings:
    """Draw the live model's parameters; every change runs and records the model again."""
    defaults = LiveSettings()
    text = st.text_area("Input text (one token per UTF-8 byte)", defaults.text, key="live_text", height=68)

    left, right = st.columns(2)
    num_states = left.slider("States S", 1, MAX_LIVE_STATES, defaults.num_states, key="live_states")
    state_dim = right.select_slider("State dim D", STATE_DIMS, defaults.state_dim, key="live_state_dim")
    num_layers = left.slider("Layers L", 1, MAX_LIVE_LAYERS, defaults.num_layers, key="live_layers")
    num_heads = right.select_slider("Heads H", HEAD_COUNTS, defaults.num_heads, key="live_heads")
    gate = left.radio("Gate", GATE_TYPES, key="live_gate", horizontal=True)
    steps = right.slider("Steps P", 1, MAX_LIVE_STEPS, defaults.steps, key="live_steps")

    temperature = st.slider(
        "Routing temperature", 0.05, 5.0, defaults.routing_temperature, 0.05, key="live_temperature",
        help="Divides the routing logits: lower is sharper.",
    )
    state.clamp("live_top_k", 0, num_states)
    top_k = st.slider(
        "Routing top-k (0 = off)", 0, num_states, key="live_top_k",
        help="Keep only the k largest routing weights per token.",
    )
    prune = st.slider(
        "Prune threshold", 0.0, 1.0, defaults.prune_threshold, 0.01, key="live_prune",
        help="States whose importance is below this are inactive; the most important one always stays.",
    )
    seed = st.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="live_seed")

    return LiveSettings(
        num_states=num_states,
        state_dim=state_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        gate=gate,
        routing_temperature=float(temperature),
        routing_top_k=top_k or None,
        prune_threshold=float(prune),
        seed=int(seed),
        steps=steps,
        text=text,
    )


def playback_controls(recording: Recording) -> state.Playback:
    """Draw the frame sliders and display choices; moving them never re-runs a model."""
    step_names = [markdown_literal(label) for label in recording.step_labels]
    step = _index_slider("Step", state.STEP, recording.num_steps, step_names)
    layer = _index_slider(
        "Layer (0 = initial states)", state.LAYER, recording.num_layers + 1, None
    )
    labels = recording.token_labels(step)
    token = None
    if labels:
        token = _index_slider("Token", state.TOKEN, len(labels), [quoted_label(label) for label in labels])

    head = None
    if recording.num_heads > 1:
        options = [state.MEAN_OVER_HEADS, *range(recording.num_heads)]
        if st.session_state.get(state.HEAD) not in options:
            st.session_state[state.HEAD] = state.MEAN_OVER_HEADS
        choice = st.select_slider(
            "Head", options, key=state.HEAD, format_func=lambda value: value if isinstance(value, str) else f"head {value}"
        )
        head = None if isinstance(choice, str) else int(choice)

    scale = st.radio(
        "Colour scale", (state.SCALE_FIXED, state.SCALE_FRAME), key=state.COLOUR_SCALE,
        help="Fixed keeps one range for every step and layer, so change between frames is visible.",
    )
    threshold = st.slider(
        "Routing-weight threshold", 0.0, 1.0, step=0.01, key=state.THRESHOLD,
        help="Routing weights below this are hidden in the routing views.",
    )
    return state.Playback(step, layer, token, head, scale == state.SCALE_FIXED, float(threshold))


def _index_slider(label: str, key: str, count: int, names: list[str] | None) -> int:
    """Draw a slider over range(count), or a caption when there is a single value.

    `names` are Markdown, one per value, shown below the slider.
    """
    if count <= 1:
        st.session_state[key] = 0
        st.caption(f"{label}: 0 (the only one)")
        return 0
    state.clamp(key, 0, count - 1)
    value = st.slider(label, 0, count - 1, key=key)
    if names is not None:
        st.caption(f"{label.split(' ')[0]} {value}: {names[value]}")
    return int(value)
