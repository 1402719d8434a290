"""State figures: the S × D states of one frame, and their animation through the layers.

Rows are states ("state s", with the state's colour swatch) and columns state dimensions.
Values use a diverging scale centred at 0. A narrow panel left of the rows shows each
state's importance and whether it is active or pruned.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures._checks import as_array, no_data_message
from app.figures._heatmap import Axis, ColorSpec, HeatmapLayers, heatmap_layers, place_heatmap
from app.figures.style import (
    DIVERGING_SCALE,
    MAX_FIGURE_CELLS,
    NON_FINITE_COLOR,
    apply_theme,
    choose_blocks,
    heatmap_height,
    message_figure,
    non_finite_name,
    state_color,
    state_swatch,
    symmetric_range,
    tick_positions,
)

STATE_AXIS_TITLE = "state"
DIM_AXIS_TITLE = "state dimension"
PANEL_WIDTH = 0.14  # share of the figure width taken by the importance panel

FRAME_DURATION_MS = 800  # one layer per 0.8 s is slow enough to follow on a projector


def states_heatmap(
    states: np.ndarray,
    *,
    importance: np.ndarray | None = None,
    active: np.ndarray | None = None,
    zrange: tuple[float, float] | None = None,
    title: str = "States",
    diff_from: np.ndarray | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw states [S, D] as a heatmap with one row per state.

    importance [S] in [0, 1] and active [S] (bool) are drawn beside the rows when given.
    With diff_from [S, D] the heatmap shows states − diff_from instead. `zrange` (lo, hi)
    fixes the colour range, for example to the range of the whole recording; it is widened
    to (−m, m) with m = max(|lo|, |hi|) so that 0 stays the white middle of the scale.
    Without it, the range comes from the finite values shown. Columns are averaged in
    blocks if S × D exceeds max_cells; rows are merged only if S alone exceeds max_cells.
    """
    values, importance, active = _check_states(states, importance, active, "SD")
    if diff_from is not None:
        reference = as_array("diff_from", diff_from, "SD")
        if reference.shape != values.shape:
            raise ValueError(
                f"diff_from has shape {reference.shape} but states has shape {values.shape}; "
                "pass the reference states of the same frame size."
            )
        with np.errstate(invalid="ignore", over="ignore"):
            values = values - reference
    num_states, state_dim = values.shape
    if num_states == 0:
        return message_figure("this model has no states (S = 0).", title)
    if state_dim == 0:
        return message_figure("the states have no dimensions (D = 0).", title)
    subject = "change of the states" if diff_from is not None else "states"
    if message := no_data_message(values, f"{subject} matrix"):
        return message_figure(message, title)

    colors = _state_colors(zrange, values, diff_from is not None)
    layers = _state_layers(values, colors, max_cells, fixed_traces=False)
    fig = _state_figure(importance, active)
    _place_states(fig, layers, importance, active, num_states, panel=_has_panel(importance, active))
    apply_theme(
        fig,
        title,
        note="; ".join(layers.notes) or None,
        height=heatmap_height(len(layers.row_categories)),
    )
    _label_axes(fig, importance, active)
    return fig


def states_animation(
    states_by_layer: np.ndarray,
    *,
    zrange: tuple[float, float] | None = None,
    importance_by_layer: np.ndarray | None = None,
    active_by_layer: np.ndarray | None = None,
    title: str = "States through the layers",
    layer_labels: list[str] | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Animate states [L+1, S, D] through the layers with play/pause buttons and a slider.

    Frame 0 is the initial states and frame l the output of layer l. Everything runs in the
    browser, so playing needs no round trip to the server. The colour range is the same in
    every frame: `zrange` if given (widened to be symmetric about 0), else the finite range
    of all layers. max_cells bounds the cells of all frames together, so each frame gets
    max_cells // (L+1) cells.
    """
    values = as_array("states_by_layer", states_by_layer, "LSD")
    num_frames, num_states, state_dim = values.shape
    importance = _check_per_layer("importance_by_layer", importance_by_layer, values.shape[:2])
    active = _check_per_layer("active_by_layer", active_by_layer, values.shape[:2])
    if layer_labels is None:
        layer_labels = ["initial"] + [f"layer {layer}" for layer in range(1, num_frames)]
    elif len(layer_labels) != num_frames:
        raise ValueError(f"layer_labels has {len(layer_labels)} entries for {num_frames} frames (L+1); pass one per frame.")
    if num_frames == 0:
        return message_figure("there are no layers to play (L+1 = 0).", title)
    if num_states == 0 or state_dim == 0:
        return message_figure(f"the states are empty (S = {num_states}, D = {state_dim}).", title)
    if message := no_data_message(values, "states"):
        return message_figure(message, title)

    colors = _state_colors(zrange, values, difference=False)
    frame_cells = max(1, max_cells // num_frames)
    # Empty symbol traces stay in every frame but out of the legend when no frame needs them.
    any_non_finite = not np.isfinite(values).all()
    per_layer = [
        _state_layers(values[layer], colors, frame_cells, fixed_traces=True, show_legend=any_non_finite)
        for layer in range(num_frames)
    ]
    panel = _has_panel(importance, active)

    fig = _state_figure(importance, active)
    _place_states(
        fig, per_layer[0], None if importance is None else importance[0], None if active is None else active[0],
        num_states, panel=panel,
    )
    frames = []
    for layer, layers in enumerate(per_layer):
        traces = list(layers.traces)
        if panel:
            traces += _panel_traces(
                None if importance is None else importance[layer], None if active is None else active[layer],
                layers.row_categories, num_states,
            )
        frames.append(go.Frame(data=traces, name=layer_labels[layer], traces=list(range(len(traces)))))
    fig.frames = frames

    notes = list(per_layer[0].notes)
    if notes and num_frames > 1:
        notes[0] += f" (each of the {num_frames} frames gets {frame_cells} cells)"
    apply_theme(fig, title, note="; ".join(notes) or None, height=heatmap_height(len(per_layer[0].row_categories)) + 140)
    _label_axes(fig, importance, active)
    _add_player(fig, layer_labels)
    return fig


# Building blocks ---------------------------------------------------------------------------


def _check_states(states, importance, active, axes: str):
    values = as_array("states", states, axes)
    num_states = values.shape[0]
    if importance is not None:
        importance = as_array("importance", importance, "S")
        if importance.shape[0] != num_states:
            raise ValueError(f"importance has {importance.shape[0]} entries but there are {num_states} states.")
    if active is not None:
        active = np.asarray(active)
        if active.shape != (num_states,):
            raise ValueError(f"active must have shape ({num_states},), one flag per state; got {active.shape}.")
        active = active.astype(bool)
    return values, importance, active


def _check_per_layer(name: str, value, shape: tuple[int, int]):
    if value is None:
        return None
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape} [L+1, S], got {array.shape}.")
    return array.astype(bool) if name.startswith("active") else array.astype(np.float32)


def _state_colors(zrange, values: np.ndarray, difference: bool) -> ColorSpec:
    if zrange is None:
        low, high = symmetric_range(values)
    else:
        if len(zrange) != 2 or not all(np.isfinite(bound) for bound in zrange) or zrange[0] > zrange[1]:
            raise ValueError(f"zrange={zrange!r} is invalid; pass finite (lo, hi) with lo ≤ hi, or None.")
        low, high = symmetric_range(np.asarray(zrange, dtype=np.float64))
    title = "change of state value (activation)" if difference else "state value (activation)"
    return ColorSpec(DIVERGING_SCALE, low, high, title, zmid=0.0)


def _state_layers(
    values: np.ndarray, colors: ColorSpec, max_cells: int, fixed_traces: bool, show_legend: bool = True
) -> HeatmapLayers:
    return heatmap_layers(
        values,
        Axis("state", "states", STATE_AXIS_TITLE),
        Axis("dim", "dims", DIM_AXIS_TITLE),
        colors,
        "value" if colors.title.startswith("state") else "change",
        max_cells=max_cells,
        reduce_first="columns",
        fixed_traces=fixed_traces,
        show_legend=show_legend,
    )


def _has_panel(importance, active) -> bool:
    return importance is not None or active is not None


def _state_figure(importance, active) -> go.Figure:
    if not _has_panel(importance, active):
        return go.Figure()
    return make_subplots(
        rows=1, cols=2, shared_yaxes=True, column_widths=[PANEL_WIDTH, 1 - PANEL_WIDTH], horizontal_spacing=0.015
    )


def _place_states(fig: go.Figure, layers: HeatmapLayers, importance, active, num_states: int, *, panel: bool) -> None:
    if not panel:
        place_heatmap(fig, layers)
    else:
        place_heatmap(fig, layers, row=1, col=2)
        for trace in _panel_traces(importance, active, layers.row_categories, num_states):
            fig.add_trace(trace, row=1, col=1)

    # Row ticks carry each state's colour; the panel (if any) is the leftmost axis.
    tick_values, tick_texts = layers.row_ticks
    if _row_block(layers, num_states) == 1:
        positions = tick_positions(num_states)
        tick_texts = [state_swatch(s, _state_tick(s, active)) for s in positions]
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=layers.row_categories,
        tickvals=tick_values,
        ticktext=tick_texts,
        autorange="reversed",
        showgrid=False,
    )


def _state_tick(index: int, active) -> str:
    if active is not None and not active[index]:
        return f"state {index} (pruned)"
    return f"state {index}"


def _row_block(layers: HeatmapLayers, num_states: int) -> int:
    return -(-num_states // len(layers.row_categories))


def _panel_traces(importance, active, categories: list[str], num_states: int) -> list:
    """Return the importance bars (or active/pruned marks without importance) beside the rows."""
    row_block = -(-num_states // len(categories))
    merged = row_block > 1
    status = np.ones(num_states, dtype=bool) if active is None else active
    if merged:
        # Rows were merged into blocks; show block means in neutral grey.
        importance = None if importance is None else _block_mean(importance, row_block)
        share_active = _block_mean(status.astype(np.float32), row_block)
        colors = [NON_FINITE_COLOR] * len(categories)
        status_text = [f"{share:.0%} active" for share in share_active]
        pruned = share_active < 0.5
    else:
        colors = [state_color(s) for s in range(num_states)]
        status_text = ["active" if flag else "pruned" for flag in status]
        pruned = ~status

    if importance is not None:
        lengths = np.where(np.isfinite(importance), importance, 0.0)
        importance_text = [f"{value:.7g}" if np.isfinite(value) else non_finite_name(value) for value in importance]
        return [
            go.Bar(
                x=lengths,
                y=categories,
                orientation="h",
                marker={
                    "color": colors,
                    # Pruned states are hatched in their colour. Giving bgcolor explicitly
                    # avoids plotly.js 4.1 warnings about array colours in patterns.
                    "pattern": {
                        "shape": ["/" if flag else "" for flag in pruned],
                        "fillmode": "replace",
                        "fgcolor": "#FFFFFF",
                        "bgcolor": colors,
                    },
                    "line": {"width": 0},
                },
                customdata=np.column_stack([importance_text, status_text]),
                hovertemplate="%{y}<br>importance: %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
                name="importance",
                showlegend=False,
            )
        ]
    return [
        go.Scatter(
            x=np.full(len(categories), 0.5),
            y=categories,
            mode="markers",
            marker={
                "symbol": ["circle-open" if flag else "circle" for flag in pruned],
                "size": 12,
                "color": colors,
                "line": {"width": 2, "color": colors},
            },
            customdata=status_text,
            hovertemplate="%{y}<br>%{customdata}<extra></extra>",
            name="active",
            showlegend=False,
        )
    ]


def _block_mean(values: np.ndarray, block: int) -> np.ndarray:
    padded = np.full(-(-values.size // block) * block, np.nan)
    padded[: values.size] = values
    with np.errstate(invalid="ignore"):
        return np.nanmean(padded.reshape(-1, block), axis=1) if np.isfinite(padded).any() else padded[::block]


def _label_axes(fig: go.Figure, importance, active) -> None:
    if _has_panel(importance, active):
        if importance is not None:
            fig.update_xaxes(title_text="importance (0–1)", range=[0, 1.0], dtick=0.5, row=1, col=1)
        else:
            fig.update_xaxes(title_text="active", visible=True, showticklabels=False, range=[0, 1], row=1, col=1)
        fig.update_xaxes(title_text=DIM_AXIS_TITLE, row=1, col=2)
        fig.update_yaxes(title_text=STATE_AXIS_TITLE, row=1, col=1)
    else:
        fig.update_layout(xaxis_title_text=DIM_AXIS_TITLE, yaxis_title_text=STATE_AXIS_TITLE)
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})


def _add_player(fig: go.Figure, layer_labels: list[str]) -> None:
    play = {"frame": {"duration": FRAME_DURATION_MS, "redraw": True}, "fromcurrent": True, "transition": {"duration": 0}}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 95, "r": 10},
                "showactive": False,
                "buttons": [
                    {"label": "▶ play", "method": "animate", "args": [None, play]},
                    {"label": "❚❚ pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.2,
                "len": 0.8,
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 85},
                "currentvalue": {"prefix": "showing: ", "font": {"size": 16}},
                "font": {"size": 14},
                "steps": [
                    {"label": label, "method": "animate", "args": [[label], {**pause, "frame": {"duration": 0, "redraw": True}}]}
                    for label in layer_labels
                ],
            }
        ],
    )
    fig.update_layout(margin={"b": 210})
