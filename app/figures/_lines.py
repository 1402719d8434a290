"""One line per state over an ordered axis (layers, steps), with NaN/±Inf drawn at the plot's edge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures.style import (
    MAX_FIGURE_CELLS,
    MAX_TICK_LABELS,
    NON_FINITE_SYMBOLS,
    VALUE_FORMAT,
    apply_theme,
    block_bounds,
    choose_blocks,
    describe_non_finite,
    finite_range,
    reduce_blocks,
    state_color,
    tick_positions,
)

MAX_LEGEND_STATES = 20  # a longer legend pushes the plot off a laptop screen; hover names the state
# Each line is a trace of about 500 bytes of JSON before its points. Beyond a few hundred lines
# the plot is a solid band anyway, so larger S is subsampled.
MAX_STATE_LINES = 256
EDGE_MARGIN = 0.08  # NaN/±Inf marks sit this fraction of the y span beyond the finite values


def subsample_states(num_states: int, max_states: int) -> tuple[np.ndarray, str | None]:
    """Return every k-th state index so that at most max_states remain, and a note if k > 1."""
    step = max(1, -(-num_states // max(1, max_states)))
    indices = np.arange(0, num_states, step)
    if step == 1:
        return indices, None
    return indices, f"1 in {step} states shown (states 0, {step}, {2 * step}, …: {indices.size} of {num_states})"


def state_lines(
    values: np.ndarray,
    x_names: Sequence[str],
    tick_texts: Sequence[str],
    *,
    y_name: str,
    title: str,
    x_title: str,
    y_title: str,
    x_unit: str = "positions",
    notes: Sequence[str] = (),
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw values [X, S] as S lines over X positions, each in its state's colour.

    x_names are the escaped hover names of the positions ("layer 2", "step 3: tokens 0–9"),
    tick_texts their escaped axis labels and x_unit their plural noun ("steps"). A NaN or ±Inf
    value breaks its line and is drawn as a symbol just above (NaN, +Inf) or below (−Inf)
    the finite values, with hover naming it. To keep at most max_cells points, states are
    subsampled beyond MAX_STATE_LINES and positions averaged in blocks; notes state both.
    """
    num_positions, num_states = values.shape
    notes = list(notes)
    states, state_note = subsample_states(num_states, min(MAX_STATE_LINES, max_cells))
    if state_note:
        notes.append(state_note)
    position_block, _ = choose_blocks(num_positions, states.size, max_cells, reduce_first="rows")
    reduction = reduce_blocks(values[:, states], position_block, 1)
    if reduction.reduced:
        notes.append(f"mean over blocks of {position_block} {x_unit}")
    shown = reduction.values  # [X', S'] means of finite values
    non_finite = reduction.nan + reduction.posinf + reduction.neginf
    bounds = block_bounds(num_positions, position_block)
    names = [x_names[a] if a == b else f"{x_unit} {a}–{b}" for a, b in bounds]
    ticks = [tick_texts[a] if a == b else f"{a}–{b}" for a, b in bounds]

    low, high = finite_range(shown)
    span = (high - low) or max(abs(high), 1.0)
    top, bottom = high + EDGE_MARGIN * span, low - EDGE_MARGIN * span
    x = np.arange(len(bounds))
    show_legend = states.size <= MAX_LEGEND_STATES

    fig = go.Figure()
    for column, s in enumerate(states):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=shown[:, column],
                mode="lines+markers",
                line={"color": state_color(s), "width": 2.5},
                marker={"size": 7, "color": state_color(s)},
                name=f"state {s}",
                legendgroup=f"state {s}",
                showlegend=show_legend,
                customdata=names,
                hovertemplate=f"state {s}<br>%{{customdata}}<br>{y_name}: %{{y:{VALUE_FORMAT}}}<extra></extra>",
            )
        )

    rows, columns = np.nonzero(non_finite & ~np.isfinite(shown) if reduction.reduced else non_finite)
    if rows.size:
        kinds = [_block_kind(reduction, r, c) for r, c in zip(rows, columns)]
        descriptions = [_describe(reduction, r, c) for r, c in zip(rows, columns)]
        fig.add_trace(
            go.Scatter(
                x=rows,
                y=[bottom if kind == "−Inf" else top for kind in kinds],
                mode="markers",
                marker={
                    "symbol": [NON_FINITE_SYMBOLS[kind] for kind in kinds],
                    "size": 12,
                    "color": [state_color(states[c]) for c in columns],
                    "line": {"color": "#000000", "width": 1},
                },
                cliponaxis=False,
                name="NaN/±Inf",
                showlegend=True,
                hovertext=[
                    f"state {states[c]}<br>{names[r]}<br>{y_name}: {text}"
                    for r, c, text in zip(rows, columns, descriptions)
                ],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )

    counts = describe_non_finite(int(reduction.nan.sum()), int(reduction.posinf.sum()), int(reduction.neginf.sum()))
    if counts and reduction.reduced:
        notes.append(f"{counts} left out of the means; blocks without a finite value drawn at the plot's edge")
    elif counts:
        notes.append(f"{counts} drawn as symbols at the plot's edge")

    positions = tick_positions(len(bounds), MAX_TICK_LABELS // 2)
    apply_theme(fig, title, note="; ".join(notes) or None, x_title=x_title, y_title=y_title, height=520)
    fig.update_xaxes(tickvals=positions, ticktext=[ticks[i] for i in positions], range=[-0.3, len(bounds) - 0.7])
    fig.update_yaxes(zeroline=True)
    fig.update_layout(hovermode="closest", legend={"title": {"text": "state"}})
    return fig


def _block_kind(reduction, row: int, column: int) -> str:
    """Return the kind that names a position's non-finite values: NaN unless all are +Inf or all −Inf."""
    nan, posinf, neginf = reduction.nan[row, column], reduction.posinf[row, column], reduction.neginf[row, column]
    if posinf and not (nan or neginf):
        return "+Inf"
    if neginf and not (nan or posinf):
        return "−Inf"
    return "NaN"


def _describe(reduction, row: int, column: int) -> str:
    counts = (int(reduction.nan[row, column]), int(reduction.posinf[row, column]), int(reduction.neginf[row, column]))
    if not reduction.reduced:
        return _block_kind(reduction, row, column)
    return f"{describe_non_finite(*counts)} in this block, no finite value"
