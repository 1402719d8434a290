"""One line per state over an ordered axis (layers, steps), with NaN/±Inf drawn at the plot's edge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures.style import (
    MAX_TICK_LABELS,
    NON_FINITE_SYMBOLS,
    VALUE_FORMAT,
    apply_theme,
    describe_non_finite,
    finite_range,
    non_finite_name,
    state_color,
    tick_positions,
)

MAX_LEGEND_STATES = 20  # a longer legend pushes the plot off a laptop screen; hover names the state
EDGE_MARGIN = 0.08  # NaN/±Inf marks sit this fraction of the y span beyond the finite values


def state_lines(
    values: np.ndarray,
    x_names: Sequence[str],
    tick_texts: Sequence[str],
    *,
    y_name: str,
    title: str,
    x_title: str,
    y_title: str,
    notes: Sequence[str] = (),
) -> go.Figure:
    """Draw values [X, S] as S lines over X positions, each in its state's colour.

    x_names are the escaped hover names of the positions ("layer 2", "step 3: tokens 0–9") and
    tick_texts their escaped axis labels. A NaN or ±Inf value breaks its line and is drawn as
    a symbol just above (NaN, +Inf) or below (−Inf) the finite values, with hover naming it.
    """
    num_positions, num_states = values.shape
    finite = np.isfinite(values)
    low, high = finite_range(values)
    span = (high - low) or max(abs(high), 1.0)
    top, bottom = high + EDGE_MARGIN * span, low - EDGE_MARGIN * span
    x = np.arange(num_positions)
    show_legend = num_states <= MAX_LEGEND_STATES

    fig = go.Figure()
    for s in range(num_states):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.where(finite[:, s], values[:, s], np.nan),
                mode="lines+markers",
                line={"color": state_color(s), "width": 2.5},
                marker={"size": 7, "color": state_color(s)},
                name=f"state {s}",
                legendgroup=f"state {s}",
                showlegend=show_legend,
                customdata=list(x_names),
                hovertemplate=f"state {s}<br>%{{customdata}}<br>{y_name}: %{{y:{VALUE_FORMAT}}}<extra></extra>",
            )
        )

    rows, columns = np.nonzero(~finite)
    notes = list(notes)
    if rows.size:
        kinds = [non_finite_name(value) for value in values[rows, columns]]
        fig.add_trace(
            go.Scatter(
                x=rows,
                y=[bottom if kind == "−Inf" else top for kind in kinds],
                mode="markers",
                marker={
                    "symbol": [NON_FINITE_SYMBOLS[kind] for kind in kinds],
                    "size": 12,
                    "color": [state_color(s) for s in columns],
                    "line": {"color": "#000000", "width": 1},
                },
                name="NaN/±Inf",
                showlegend=True,
                hovertext=[f"state {s}<br>{x_names[r]}<br>{y_name}: {kind}" for r, s, kind in zip(rows, columns, kinds)],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
        counts = describe_non_finite(*(kinds.count(kind) for kind in ("NaN", "+Inf", "−Inf")))
        notes.append(f"{counts} drawn as symbols at the plot's edge")

    positions = tick_positions(num_positions, MAX_TICK_LABELS // 2)
    apply_theme(fig, title, note="; ".join(notes) or None, x_title=x_title, y_title=y_title, height=520)
    fig.update_xaxes(tickvals=positions, ticktext=[tick_texts[i] for i in positions], range=[-0.3, num_positions - 0.7])
    fig.update_yaxes(zeroline=True)
    fig.update_layout(hovermode="closest", legend={"title": {"text": "state"}})
    return fig
