"""Summary figures over nsm_core.analysis results: entropy, load, drift and the flag timeline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.figures._checks import as_array, check_labels, no_data_message
from app.figures._heatmap import Axis, ColorSpec, axis_categories, heatmap_layers, place_heatmap
from app.figures._lines import state_lines
from app.figures.style import (
    MAX_FIGURE_CELLS,
    VALUE_FORMAT,
    apply_theme,
    block_bounds,
    choose_blocks,
    escape_label,
    heatmap_height,
    message_figure,
    non_finite_name,
    reduce_blocks,
    shorten,
    state_color,
    state_swatch,
    tick_positions,
)
from nsm_core.analysis import DEAD_TOLERANCE, FLAG_NAMES

MAX_BARS = 2_000  # narrower bars than this are below one pixel on a 1400-pixel-wide plot
BAR_COLOR = "#4C6A92"  # neutral slate blue for per-token bars; state colours stay reserved for states
TIMELINE_SCALE = "Cividis"
NON_FINITE_MARK = {"symbol": "x", "size": 12, "color": "#FFFFFF", "line": {"color": "#000000", "width": 1.5}}


def entropy_figure(
    entropy: np.ndarray,
    token_labels: Sequence[str],
    *,
    num_states: int | None = None,
    title: str = "Routing entropy per token",
    max_bars: int = MAX_BARS,
) -> go.Figure:
    """Draw each token's routing entropy [T] in nats as a bar, with ln S (uniform routing) as a line.

    0 nats means the token goes to one state only; ln S means it is spread evenly over all S
    states. NaN entries get an "x" at 0 with hover naming them. Beyond max_bars tokens, bars
    show the mean over blocks of tokens, as the subtitle states.
    """
    values = as_array("entropy", entropy, "T")
    labels = check_labels("token_labels", token_labels, values.shape[0], "token")
    if num_states is not None and (isinstance(num_states, bool) or not isinstance(num_states, (int, np.integer)) or num_states < 1):
        raise ValueError(f"num_states={num_states!r} is invalid; pass the number of states S ≥ 1, or None.")
    if values.shape[0] == 0:
        return message_figure("no tokens in this step (T = 0), so there is no routing entropy.", title)
    if message := no_data_message(values, "entropy values"):
        return message_figure(message, title)

    block, _ = choose_blocks(values.shape[0], 1, max_bars)
    names, _, _ = axis_categories(Axis("token", "tokens", "token", labels=labels), values.shape[0], block)
    ticks = [escape_label(shorten(label)) for label in labels[::block]] if block == 1 else [
        f"{first}–{last}" for first, last in block_bounds(values.shape[0], block)
    ]
    note = f"mean over blocks of {block} tokens" if block > 1 else None
    if block > 1:
        values = reduce_blocks(values[:, None], block, 1).values[:, 0]  # NaN only where a block has no finite value
    finite = np.isfinite(values)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=np.where(finite, values, 0.0),
            marker={"color": BAR_COLOR},
            name="entropy",
            showlegend=False,
            customdata=np.where(finite, values, np.nan),
            hovertemplate=f"%{{x}}<br>entropy: %{{customdata:{VALUE_FORMAT}}} nats<extra></extra>",
        )
    )
    _mark_non_finite(fig, names, values, "entropy")

    top = float(np.nanmax(np.where(finite, values, np.nan)))
    if num_states is not None:
        uniform = math.log(num_states)
        fig.add_hline(
            y=uniform,
            line={"dash": "dash", "width": 2, "color": "#7F7F7F"},
            annotation_text=f"uniform over {num_states} states: ln {num_states} = {uniform:.3g} nats",
            annotation_position="top left",
            annotation_font_size=14,
        )
        top = max(top, uniform)
    _category_ticks(fig, names, ticks)
    apply_theme(
        fig, title, note=note, x_title="token (position: text)",
        y_title="routing entropy (nats)", height=460,
    )
    fig.update_yaxes(range=[0, max(top, 1e-6) * 1.15], rangemode="tozero")
    return fig


def load_figure(
    load: np.ndarray,
    *,
    num_tokens: int | None = None,
    dead_tolerance: float = DEAD_TOLERANCE,
    title: str = "Routing load per state",
) -> go.Figure:
    """Draw each state's routing load [S] (sum of its weights over tokens) as a bar in its colour.

    With num_tokens, a dashed line marks the balanced load T / S. States with load at most
    dead_tolerance are hatched and labelled "dead"; NaN loads get an "x".
    """
    values = as_array("load", load, "S")
    num_states = values.shape[0]
    if num_states == 0:
        return message_figure("this model has no states (S = 0).", title)
    if message := no_data_message(values, "load values"):
        return message_figure(message, title)

    finite = np.isfinite(values)
    dead = finite & (np.where(finite, values, np.inf) <= dead_tolerance)
    names = [f"state {s}" for s in range(num_states)]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=np.where(finite, values, 0.0),
            marker={
                "color": [state_color(s) for s in range(num_states)],
                "pattern": {
                    "shape": ["x" if flag else "" for flag in dead],
                    "fillmode": "replace",
                    "fgcolor": "#FFFFFF",
                    "bgcolor": [state_color(s) for s in range(num_states)],
                },
                "line": {"width": [2 if flag else 0 for flag in dead], "color": [state_color(s) for s in range(num_states)]},
            },
            text=["dead" if flag else "" for flag in dead],
            textposition="outside",
            name="load",
            showlegend=False,
            customdata=np.where(finite, values, np.nan),
            hovertemplate=f"%{{x}}<br>routing mass: %{{customdata:{VALUE_FORMAT}}}<extra></extra>",
        )
    )
    _mark_non_finite(fig, names, values, "routing mass")

    top = float(np.nanmax(np.where(finite, values, np.nan)))
    notes = []
    if num_tokens is not None:
        balanced = num_tokens / num_states
        fig.add_hline(
            y=balanced,
            line={"dash": "dash", "width": 2, "color": "#7F7F7F"},
            annotation_text=f"balanced: T / S = {num_tokens} / {num_states} = {balanced:.3g}",
            annotation_position="top left",
            annotation_font_size=14,
        )
        top = max(top, balanced)
    if dead.any():
        notes.append(f"{int(dead.sum())} dead state(s): load ≤ {dead_tolerance:g}")
    _category_ticks(fig, names, [state_swatch(s, str(s)) for s in range(num_states)])
    apply_theme(
        fig, title, note="; ".join(notes) or None, x_title="state",
        y_title="routing mass (sum of weights over tokens)", height=460,
    )
    fig.update_yaxes(range=[0, max(top, 1e-6) * 1.2])
    return fig


def drift_figure(
    drift: np.ndarray, *, title: str = "How far each state moves in each layer", max_cells: int = MAX_FIGURE_CELLS
) -> go.Figure:
    """Draw drift [L, S], the L2 norm of each layer's change to each state, as one line per state."""
    values = as_array("drift", drift, "LS")
    num_layers, num_states = values.shape
    if num_layers == 0 or num_states == 0:
        return message_figure(f"drift needs at least one layer and one state (L = {num_layers}, S = {num_states}).", title)
    if message := no_data_message(values, "drift values"):
        return message_figure(message, title)
    names = [f"layer {layer}" for layer in range(1, num_layers + 1)]
    ticks = [str(layer) for layer in range(1, num_layers + 1)]
    return state_lines(
        values, names, ticks, y_name="change", title=title, x_title="layer",
        y_title="L2 norm of the change (activation)", x_unit="layers", max_cells=max_cells,
    )


TIMELINE_COLUMNS = ("step", "layer", "state", "flags")


def timeline_figure(
    summary: pd.DataFrame,
    *,
    flag: str | None = None,
    step_labels: Sequence[str] | None = None,
    title: str = "Flagged states over steps and layers",
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw how many states carry a flag at each (step, layer) of a summarize_recording table.

    Steps run left to right and layers top to bottom (layer 0 = initial states). Hover lists
    each flag with its states. With `flag`, only that flag (one of FLAG_NAMES) is counted.
    """
    missing = [column for column in TIMELINE_COLUMNS if column not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the column(s) {missing}; pass the table from summarize_recording().")
    if flag is not None and flag not in FLAG_NAMES:
        raise ValueError(f"flag={flag!r} is not a known flag; use one of {list(FLAG_NAMES)} or None.")
    if summary.empty:
        return message_figure("the summary table is empty, so there is nothing to draw.", title)

    steps = sorted(int(step) for step in summary["step"].unique())
    num_layers = int(summary["layer"].max()) + 1
    step_index = {step: index for index, step in enumerate(steps)}
    counts = np.zeros((num_layers, len(steps)), dtype=np.float32)
    members: dict[tuple[int, int], dict[str, list[int]]] = {}
    for step, layer, state, flags in summary[list(TIMELINE_COLUMNS)].itertuples(index=False):
        names = [name for name in str(flags).split("; ") if name and (flag is None or name == flag)]
        if not names:
            continue
        key = (int(layer), step_index[int(step)])
        counts[key] += 1
        for name in names:
            members.setdefault(key, {}).setdefault(name, []).append(int(state))

    text = np.full(counts.shape, "", dtype=object)
    for (layer, column), by_flag in members.items():
        text[layer, column] = "".join(
            f"<br>{name}: {shorten(', '.join(str(s) for s in states), 60)}" for name, states in by_flag.items()
        )

    labels = list(step_labels) if step_labels is not None else None
    if labels is not None and len(labels) != len(steps):
        raise ValueError(f"step_labels has {len(labels)} labels for {len(steps)} steps in the summary.")
    layers = heatmap_layers(
        counts,
        Axis("layer", "layers", "layer (0 = initial states)"),
        Axis("step", "steps", "step", labels=labels),
        ColorSpec(TIMELINE_SCALE, 0.0, max(1.0, float(counts.max())), "flagged states (count)"),
        "flagged states",
        max_cells=max_cells,
        reduce_first="columns",  # steps are many, layers few
        cell_text=text,
    )
    notes = list(layers.notes)
    notes.append(f"counting {flag!r} only" if flag else "flags: " + ", ".join(FLAG_NAMES))
    if not counts.any():
        notes.append("no state is flagged")
    fig = go.Figure()
    place_heatmap(fig, layers)
    fig.update_traces(xgap=1, ygap=1, selector={"type": "heatmap"})
    if not layers.notes:
        # Unreduced cells are whole counts, so the colour bar ticks whole numbers.
        fig.update_traces(colorbar_dtick=max(1, math.ceil(float(counts.max()) / 5)), selector={"name": "flagged states"})
    apply_theme(
        fig, title, note="; ".join(notes), x_title="step", y_title="layer (0 = initial states)",
        height=heatmap_height(num_layers, per_row=34, minimum=340),
    )
    return fig


def _mark_non_finite(fig: go.Figure, names: list[str], values: np.ndarray, value_name: str) -> None:
    positions = np.flatnonzero(~np.isfinite(values))
    if positions.size == 0:
        return
    kinds = [non_finite_name(values[i]) for i in positions]
    fig.add_trace(
        go.Scatter(
            x=[names[i] for i in positions],
            y=np.zeros(positions.size),
            mode="markers",
            marker=NON_FINITE_MARK,
            cliponaxis=False,
            name="NaN/±Inf",
            hovertext=[f"{names[i]}<br>{value_name}: {kind}" for i, kind in zip(positions, kinds)],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})


def _category_ticks(fig: go.Figure, names: list[str], ticks: list[str]) -> None:
    positions = tick_positions(len(names))
    fig.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        tickvals=[names[i] for i in positions],
        ticktext=[ticks[i] for i in positions],
    )
