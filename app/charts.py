"""Figures that take long to build, cached per recording and choice so that a rerun reuses them.

Every widget change reruns the page. The layer animation, the flag timeline and the
trajectory plots depend on few widgets, yet cost up to a few seconds to build for a
recording of 40 steps × 8 layers × 64 states × 128 dims. They are cached as resources
(st.cache_resource): one shared figure per key, because copying a figure through
st.cache_data's pickling costs about half of building it again. Callers must not modify a
returned figure (st.plotly_chart only reads it).

Cache keys are the recording's content key and the choices, never the arrays themselves.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app import frames
from app.figures.states import states_animation, states_heatmap
from app.figures.summary import timeline_figure
from app.figures.trajectories import projection_paths, trajectory_over_layers, trajectory_over_steps
from nsm_core.recording import Recording

MAX_CACHED_FIGURES = 64
FRAME_OUTLINE = "#FF2B9C"  # magenta: visible on the Cividis scale and on light and dark pages


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner="Building the animation…")
def layer_animation(_recording: Recording, key: str, steps: tuple[int, ...], fixed_scale: bool) -> go.Figure:
    """Animate the states through every layer of each of `steps`, played in the browser."""
    states, importance, active, labels = frames.animation_frames(_recording, key, steps)
    if len(steps) > 1:
        title = "States through the layers and steps"
    elif _recording.num_steps > 1:
        title = f"States through the layers of step {steps[0]}"
    else:
        title = "States through the layers"
    return states_animation(
        states,
        zrange=frames.states_range(_recording, key) if fixed_scale else None,
        importance_by_layer=importance,
        active_by_layer=active,
        layer_labels=labels,
        title=title,
    )


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner=False)
def frame_states(
    _recording: Recording, key: str, step: int, layer: int, fixed_scale: bool, difference: bool, title: str
) -> go.Figure:
    """Draw the states [S, D] of frame (step, layer), or with `difference` their change from layer − 1.

    Building the heatmap took most of a layer-slider rerun (0.3 of 0.4 s on the digits
    recording, measured on a busy 2-core machine), so moving back to a layer reuses the figure.
    """
    by_layer = frames.states_by_layer(_recording, key, step)  # [L+1, S, D]
    importance = frames.per_state_by_layer(_recording, key, step, "importance")  # [L+1, S]
    active = frames.per_state_by_layer(_recording, key, step, "active")  # [L+1, S]
    return states_heatmap(
        by_layer[layer],
        importance=None if importance is None else importance[layer],
        active=None if active is None else active[layer],
        zrange=frames.states_range(_recording, key, difference) if fixed_scale else None,
        title=title,
        diff_from=by_layer[layer - 1] if difference else None,
    )


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner=False)
def playback_timeline(_recording: Recording, key: str, flag: str | None, step: int, layer: int) -> go.Figure:
    """Draw the summary's flags per (step, layer) of the whole recording and outline (step, layer).

    timeline_figure() draws the flags; the outline of the chosen frame is added here.
    """
    summary = frames.summary_table(_recording, key)
    figure = timeline_figure(
        summary, flag=flag, step_labels=_recording.step_labels, title="Playback timeline: flagged states"
    )
    # Heatmap cells sit at category indices, so cell (step, layer) spans ±0.5 around them.
    # The outline is left out when the figure merged steps into blocks for display.
    heatmap = next((trace for trace in figure.data if trace.type == "heatmap"), None)
    if heatmap is not None and heatmap.x is not None and len(heatmap.x) == _recording.num_steps:
        figure.add_shape(
            type="rect", x0=step - 0.5, x1=step + 0.5, y0=layer - 0.5, y1=layer + 0.5,
            line={"color": FRAME_OUTLINE, "width": 4}, layer="above",
        )
    return figure


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner=False)
def layer_trajectories(_recording: Recording, key: str, step: int, dim: int | str) -> go.Figure:
    """Draw one dimension (or "norm") of every state against the layer, for `step`."""
    return trajectory_over_layers(frames.states_by_layer(_recording, key, step), dim)


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner=False)
def step_trajectories(_recording: Recording, key: str, layer: int, dim: int | None, value_name: str) -> go.Figure:
    """Draw one dimension (or, for dim None, the L2 norm) of every state at `layer` against the step."""
    values = frames.values_over_steps(_recording, key, layer, dim)  # [P, S]
    return trajectory_over_steps(values, _recording.step_labels, value_name)


@st.cache_resource(max_entries=MAX_CACHED_FIGURES, show_spinner=False)
def projection(_recording: Recording, key: str, step: int, components: int) -> go.Figure:
    """Project every state's path through the layers of `step` on its first principal axes.

    Raises ValueError, with the reason, when the projection is impossible.
    """
    return projection_paths(frames.states_by_layer(_recording, key, step), components)
