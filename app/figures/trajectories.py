"""Trajectory figures: each state's value through the layers, across the steps, and its PCA path.

Every state keeps its colour (``state_color``) and its name ("state s") in every figure here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures._checks import as_array, no_data_message
from app.figures._lines import MAX_LEGEND_STATES, MAX_STATE_LINES, state_lines, subsample_states
from app.figures.style import (
    MAX_FIGURE_CELLS,
    TICK_FONT_SIZE,
    apply_theme,
    escape_label,
    message_figure,
    shorten,
    state_color,
)
from nsm_core.analysis import pca_project

NORM = "norm"


def layer_names(num_frames: int) -> list[str]:
    """Return the names of frames 0..L: "initial", then "layer 1" to "layer L"."""
    return ["initial"] + [f"layer {layer}" for layer in range(1, num_frames)]


def trajectory_over_layers(
    states_by_layer: np.ndarray,
    dim: int | str = NORM,
    *,
    title: str | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw one line per state through the layers: x = layer (0 = initial states), y = a value.

    With dim an index in [0, D), y is that dimension of the state; with dim="norm", its L2
    norm over the D dimensions. states_by_layer is [L+1, S, D].
    """
    values = as_array("states_by_layer", states_by_layer, "LSD")
    num_frames, num_states, state_dim = values.shape
    y_name, y_title = _value_names(dim, state_dim)
    if title is None:
        title = f"{y_name[0].upper()}{y_name[1:]} of each state through the layers"
    if num_frames == 0 or num_states == 0:
        return message_figure(f"there is nothing to draw (L+1 = {num_frames} frames, S = {num_states} states).", title)

    with np.errstate(invalid="ignore", over="ignore"):
        series = np.linalg.norm(values, axis=-1) if dim == NORM else values[:, :, dim]  # [L+1, S]
    if message := no_data_message(series, f"{y_name} matrix"):
        return message_figure(message, title)
    names = layer_names(num_frames)
    ticks = ["initial"] + [str(layer) for layer in range(1, num_frames)]
    return state_lines(
        series, names, ticks, y_name=y_name, title=title, x_title="layer (0 = initial states)", y_title=y_title,
        x_unit="layers", max_cells=max_cells,
    )


def trajectory_over_steps(
    values: np.ndarray,
    step_labels: Sequence[str],
    ylabel: str,
    *,
    title: str | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw one line per state across the steps: values [P, S] against step index.

    `ylabel` names the value with its unit, for example "L2 norm at layer 2 (activation)";
    step_labels name the steps in hover and on the axis.
    """
    series = as_array("values", values, "PS")
    num_steps, num_states = series.shape
    if isinstance(step_labels, str) or len(step_labels) != num_steps:
        count = "a single string" if isinstance(step_labels, str) else f"{len(step_labels)} labels"
        raise ValueError(f"step_labels is {count} but values has {num_steps} steps; pass one label per step.")
    if title is None:
        title = f"{ylabel[0].upper()}{ylabel[1:]} across the steps" if ylabel else "Values across the steps"
    if num_steps == 0 or num_states == 0:
        return message_figure(f"there is nothing to draw (P = {num_steps} steps, S = {num_states} states).", title)
    if message := no_data_message(series, "values"):
        return message_figure(message, title)

    names = [f"step {p}: {escape_label(label)}" for p, label in enumerate(step_labels)]
    ticks = [escape_label(shorten(str(label))) for label in step_labels]
    return state_lines(
        series, names, ticks, y_name=escape_label(ylabel), title=title, x_title="step", y_title=ylabel,
        x_unit="steps", max_cells=max_cells,
    )


def projection_paths(
    states_by_layer: np.ndarray,
    components: int = 2,
    *,
    title: str | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw each state's path through the layers in the plane (or space) of the first principal axes.

    The axes come from a PCA of all (L+1) × S state vectors together, so the paths of all
    states share one picture. A path starts at an open circle (initial states) and ends at
    a diamond (last layer). Points with NaN/±Inf are left out and the subtitle counts them.
    Beyond max_cells points or MAX_STATE_LINES states, every k-th state's path is drawn, as
    the subtitle states. Raises ValueError, with the reason, when the projection is
    impossible: components not 2 or 3, too few distinct finite points (3D needs ≥ 3), or
    D < components.
    """
    if components not in (2, 3) or isinstance(components, bool):
        raise ValueError(f"components={components!r} is invalid; pass 2 or 3.")
    values = as_array("states_by_layer", states_by_layer, "LSD")
    num_frames, num_states, state_dim = values.shape
    title = title or f"State paths through the layers, first {components} principal components"

    points = values.reshape(-1, state_dim)  # [(L+1)·S, D], frame-major
    usable = np.isfinite(points).all(axis=1)
    try:
        projected, ratio = pca_project(points[usable], components)
    except ValueError as error:
        dropped = int((~usable).sum())
        reason = f" ({dropped} of {points.shape[0]} points have NaN or ±Inf)" if dropped else ""
        raise ValueError(f"Cannot project the state paths: {error}{reason}") from None

    coordinates = np.full((points.shape[0], components), np.nan)
    coordinates[usable] = projected
    coordinates = coordinates.reshape(num_frames, num_states, components)
    axis_titles = [f"PC{k + 1} ({ratio[k]:.1%} of variance)" for k in range(components)]
    names = layer_names(num_frames)

    # The PCA uses every state; only the drawing is thinned to keep the figure small.
    notes = []
    states, state_note = subsample_states(num_states, min(MAX_STATE_LINES, max(1, max_cells // num_frames)))
    if state_note:
        notes.append(state_note)
    fig = go.Figure()
    for s in states:
        fig.add_trace(_path_trace(coordinates[:, s], int(s), names, states.size <= MAX_LEGEND_STATES))

    if (~usable).any():
        notes.append(f"{int((~usable).sum())} of {points.shape[0]} points with NaN or ±Inf left out")
    notes.append("○ initial states, ◆ last layer")
    apply_theme(fig, title, note="; ".join(notes), height=640)
    if components == 2:
        fig.update_layout(xaxis_title_text=axis_titles[0], yaxis_title_text=axis_titles[1])
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    else:
        # Short axis titles, a cube and a camera further out keep the whole box in view.
        short_titles = [f"PC{k + 1} ({ratio[k]:.0%})" for k in range(components)]
        axis_style = {"tickfont": {"size": TICK_FONT_SIZE}, "title": {"font": {"size": TICK_FONT_SIZE}}}
        fig.update_layout(
            scene={
                "xaxis": {**axis_style, "title": {"text": short_titles[0], "font": {"size": TICK_FONT_SIZE}}},
                "yaxis": {**axis_style, "title": {"text": short_titles[1], "font": {"size": TICK_FONT_SIZE}}},
                "zaxis": {**axis_style, "title": {"text": short_titles[2], "font": {"size": TICK_FONT_SIZE}}},
                "aspectmode": "cube",
                "camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.0}},
            },
            height=720,
        )
    fig.update_layout(legend={"title": {"text": "state"}})
    return fig


def _path_trace(path: np.ndarray, state: int, names: list[str], show_legend: bool):
    """Return the trace of one state's path [L+1, components]."""
    count = path.shape[0]
    color = state_color(state)
    symbols = ["circle-open"] + ["circle"] * max(count - 2, 0) + (["diamond"] if count > 1 else [])
    sizes = [12] + [6] * max(count - 2, 0) + ([11] if count > 1 else [])
    common = {
        "mode": "lines+markers",
        "name": f"state {state}",
        "legendgroup": f"state {state}",
        "showlegend": show_legend,
        "line": {"color": color, "width": 3},
        "customdata": names,
    }
    axes = "<br>".join(f"PC{k + 1}: %{{{'xyz'[k]}:.4g}}" for k in range(path.shape[1]))
    template = f"state {state}<br>%{{customdata}}<br>{axes}<extra></extra>"
    if path.shape[1] == 2:
        return go.Scatter(
            x=path[:, 0], y=path[:, 1], marker={"symbol": symbols, "size": sizes, "color": color, "line": {"color": color, "width": 2}},
            hovertemplate=template, **common,
        )
    common["line"] = {"color": color, "width": 5}
    return go.Scatter3d(
        x=path[:, 0], y=path[:, 1], z=path[:, 2], marker={"symbol": symbols, "size": [size * 0.75 for size in sizes], "color": color},
        hovertemplate=template, **common,
    )


def _value_names(dim: int | str, state_dim: int) -> tuple[str, str]:
    """Return (hover name, axis title with unit) of the followed value, or raise for an invalid dim."""
    if dim == NORM:
        return "L2 norm", "L2 norm of the state (activation)"
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"dim={dim!r} is invalid; pass a state dimension index or {NORM!r}.")
    if not 0 <= dim < state_dim:
        raise ValueError(f"dim={dim} is outside [0, {state_dim - 1}] (D = {state_dim}); pick a state dimension or {NORM!r}.")
    return f"dimension {dim}", f"state dimension {dim} (activation)"
