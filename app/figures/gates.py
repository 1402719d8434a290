"""Gate figures: one heatmap panel per gate channel, states by layers, saturated gates marked.

A gate is the mean over D of a sigmoid, so its value lies in [0, 1] and the colour scale is
fixed to that range. A gate near 0 or 1 is saturated: it passes or blocks almost everything
and no longer mixes old and new content.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures._checks import as_array, no_data_message
from app.figures._heatmap import Axis, ColorSpec, heatmap_layers, place_heatmap
from app.figures.style import (
    MAX_FIGURE_CELLS,
    PROBABILITY_RANGE,
    apply_theme,
    escape_label,
    heatmap_height,
    message_figure,
)

GATE_SCALE = "Cividis"  # perceptually uniform like Viridis, and unlike routing, so the views differ at a glance
MAX_SATURATION = 0.5  # a margin of 0.5 would call every value saturated

_SATURATION_MARKS = (
    # (legend name, fill, outline): a light fill on the dark end of Cividis and a dark fill on
    # the light end. Each mark has both colours, so its legend entry shows on any background.
    ("near 0", "#FFFFFF", "#000000"),
    ("near 1", "#000000", "#FFFFFF"),
)


def gate_small_multiples(
    gates: np.ndarray,
    gate_names: Sequence[str],
    *,
    saturation: float = 0.05,
    title: str = "Gate activations per state and layer",
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw gates [L, S, G] as G side-by-side heatmaps with states as rows and layers as columns.

    Cells with a value below `saturation` or above 1 − saturation get a diamond, listed in
    the legend. Beyond max_cells cells over all panels, states are averaged in blocks and
    saturation is judged on the block means.
    """
    values = as_array("gates", gates, "LSG")
    num_layers, num_states, num_gates = values.shape
    if isinstance(gate_names, str) or len(gate_names) != num_gates:
        count = "a single string" if isinstance(gate_names, str) else f"{len(gate_names)} names"
        raise ValueError(f"gate_names is {count} but gates has G = {num_gates} channels; pass one name per channel.")
    if (
        isinstance(saturation, bool)
        or not isinstance(saturation, (int, float, np.floating))
        or not 0.0 <= saturation < MAX_SATURATION
    ):
        raise ValueError(f"saturation={saturation!r} is invalid; pass a margin in [0, {MAX_SATURATION}).")
    if num_layers == 0 or num_states == 0 or num_gates == 0:
        return message_figure(
            f"there are no gate values to draw (L = {num_layers}, S = {num_states}, G = {num_gates}).", title
        )
    if message := no_data_message(values, "gate activations"):
        return message_figure(message, title)

    names = [escape_label(name) for name in gate_names]
    fig = make_subplots(
        rows=1, cols=num_gates, shared_yaxes=True, subplot_titles=[f"{name} gate" for name in names],
        horizontal_spacing=0.04,
    )
    notes: list[str] = []
    panel_cells = max(1, max_cells // num_gates)
    for gate in range(num_gates):
        matrix = values[:, :, gate].T  # [S, L]
        layers = heatmap_layers(
            matrix,
            Axis("state", "states", "state", state_colors=True),
            Axis("layer", "layers", "layer", start=1),
            ColorSpec(GATE_SCALE, *PROBABILITY_RANGE, "gate activation (0–1)"),
            f"{names[gate]} gate",
            max_cells=panel_cells,
            reduce_first="rows",  # layers are few; merge states first
            show_scale=gate == 0,
        )
        place_heatmap(fig, layers, row=1, col=gate + 1)
        for trace in _saturation_traces(layers, saturation, names[gate]):
            fig.add_trace(trace, row=1, col=gate + 1)
        notes.extend(note for note in layers.notes if note not in notes)

    # Each kind of mark (saturated, NaN, ±Inf) gets one legend entry, from the first panel that has it.
    listed: set[str] = set()
    for trace in fig.data:
        if trace.legendgroup:
            trace.showlegend = trace.legendgroup not in listed
            listed.add(trace.legendgroup)

    if saturation > 0:
        notes.append(f"◆ saturated: below {saturation:g} or above {1 - saturation:g}")
    apply_theme(fig, title, note="; ".join(notes), height=heatmap_height(len(layers.row_categories)) + 40)
    fig.update_xaxes(title_text="layer")
    fig.update_yaxes(title_text="state", row=1, col=1)
    fig.update_annotations(font_size=16)  # subplot titles
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.04, "xanchor": "right", "x": 1.0})
    return fig


def _saturation_traces(layers, saturation: float, gate_name: str) -> list:
    """Return diamond marks on the cells of the coloured layer that lie within `saturation` of 0 or 1."""
    if saturation <= 0:
        return []
    main = next(trace for trace in layers.traces if trace.name == f"{gate_name} gate")
    z = np.asarray(main.z, dtype=np.float64)
    traces = []
    with np.errstate(invalid="ignore"):
        masks = (z < saturation, z > 1 - saturation)
    for (end, fill, outline), mask in zip(_SATURATION_MARKS, masks):
        rows, columns = np.nonzero(mask)
        if rows.size == 0:
            continue
        traces.append(
            go.Scatter(
                x=[layers.column_categories[c] for c in columns],
                y=[layers.row_categories[r] for r in rows],
                mode="markers",
                marker={"symbol": "diamond", "size": 11, "color": fill, "line": {"width": 1.5, "color": outline}},
                name=f"saturated {end}",
                legendgroup=f"saturated {end}",
                customdata=z[rows, columns],
                hovertemplate=(
                    f"%{{y}}<br>%{{x}}<br>{gate_name} gate: %{{customdata:.7~g}} (saturated {end})<extra></extra>"
                ),
            )
        )
    return traces
