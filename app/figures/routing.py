"""Routing and attention figures: token→state weights, state↔state and token↔token attention.

Weights are probabilities, so every heatmap here uses the fixed PROBABILITY_RANGE colour scale:
colours mean the same in every layer, head and step. Graphs draw only edges that reach the
threshold, at most top_k per source node and at most MAX_GRAPH_EDGES in all.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from app.figures._checks import as_array, check_fraction, check_labels, check_top_k, no_data_message, outside_note
from app.figures._heatmap import Axis, ColorSpec, heatmap_layers, place_heatmap
from app.figures.style import (
    MAX_FIGURE_CELLS,
    MAX_TICK_LABELS,
    PALETTE,
    PROBABILITY_RANGE,
    PROBABILITY_SCALE,
    apply_theme,
    count_kinds,
    describe_non_finite,
    escape_label,
    heatmap_height,
    message_figure,
    non_finite_name,
    shorten,
    state_color,
)
from nsm_core.analysis import state_load

# Each edge costs about 150 bytes of JSON (two end points, a hover point and its text), and
# each token node about 60 bytes.
MAX_GRAPH_EDGES = 3_000
MAX_GRAPH_TOKENS = 2_000  # beyond this, only tokens with a drawn edge get a node

# Edge weight bins: (lower bound, line width in px, opacity). One trace per bin and colour.
EDGE_BINS = ((0.0, 1.0, 0.35), (0.25, 2.5, 0.5), (0.5, 4.5, 0.7), (0.75, 7.0, 0.85))

LEGEND_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0}


def select_head(weights: np.ndarray, head: int | None = None) -> np.ndarray:
    """Return one head's matrix of `weights` [H, R, C], or the mean over heads when head is None."""
    array = as_array("weights", weights, "HRC")
    num_heads = array.shape[0]
    if num_heads == 0:
        raise ValueError("weights has no heads (H = 0); this recording stored no per-head weights.")
    if head is None:
        return array.mean(axis=0)
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < num_heads:
        raise ValueError(f"head={head!r} is outside [0, {num_heads - 1}]; pick a head index or None for the mean.")
    return array[head]


def routing_heatmap(
    weights: np.ndarray,
    token_labels: Sequence[str],
    *,
    threshold: float = 0.0,
    title: str = "Token → state routing",
    value_name: str = "routing weight",
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw routing weights [T, S] with tokens as rows and states as columns.

    Colours use the fixed [0, 1] probability scale. Cells below `threshold` are drawn faintly,
    and hover gives token index and text, state index and the exact weight. `value_name`
    names the quantity, for example "readout weight" for the readout from states. Beyond
    max_cells cells, tokens are averaged in blocks first and states only if T alone is
    too many.
    """
    matrix = as_array("weights", weights, "TS")
    labels = check_labels("token_labels", token_labels, matrix.shape[0], "token")
    threshold = check_fraction("threshold", threshold)
    num_tokens, num_states = matrix.shape
    if num_tokens == 0:
        return message_figure("no tokens in this step (T = 0), so there is nothing to route.", title)
    if num_states == 0:
        return message_figure("this model has no states (S = 0), so there is nothing to route to.", title)
    if message := no_data_message(matrix, f"{value_name} matrix"):
        return message_figure(message, title)

    layers = heatmap_layers(
        matrix,
        Axis("token", "tokens", "token (position: text)", labels=labels),
        Axis("state", "states", "state", state_colors=True),
        ColorSpec(PROBABILITY_SCALE, *PROBABILITY_RANGE, f"{value_name} (probability)"),
        value_name,
        threshold=threshold if threshold > 0.0 else None,
        max_cells=max_cells,
        reduce_first="rows",  # merge tokens before states, so every state keeps its column
    )
    notes = list(layers.notes)
    if threshold > 0.0:
        notes.append(f"weights below {threshold:g} drawn faint")
    if note := outside_note(matrix, *PROBABILITY_RANGE):
        notes.append(note)

    fig = go.Figure()
    place_heatmap(fig, layers)
    apply_theme(
        fig,
        title,
        note="; ".join(notes) or None,
        x_title="state",
        y_title="token (position: text)",
        height=heatmap_height(len(layers.row_categories)),
    )
    fig.update_layout(legend=LEGEND_TOP)
    return fig


def attention_heatmap(
    attention: np.ndarray,
    *,
    title: str = "State ↔ state attention",
    threshold: float = 0.0,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw state attention [S, S]: row i is how state i (query) spreads its attention over states."""
    matrix = as_array("attention", attention, "SS")
    threshold = check_fraction("threshold", threshold)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"attention must be square [S, S], got shape {matrix.shape}.")
    if matrix.shape[0] == 0:
        return message_figure("this model has no states (S = 0), so there is no state attention.", title)
    if message := no_data_message(matrix, "attention matrix"):
        return message_figure(message, title)

    layers = heatmap_layers(
        matrix,
        Axis("query state", "query states", "attending state (query)", state_colors=True),
        Axis("key state", "key states", "attended state (key)", state_colors=True),
        ColorSpec(PROBABILITY_SCALE, *PROBABILITY_RANGE, "attention weight (probability)"),
        "attention weight",
        threshold=threshold if threshold > 0.0 else None,
        max_cells=max_cells,
    )
    return _square_heatmap_figure(layers, matrix, title, threshold, "attended state (key)", "attending state (query)")


def token_attention_heatmap(
    attention: np.ndarray,
    token_labels: Sequence[str],
    *,
    title: str = "Token ↔ token attention",
    threshold: float = 0.0,
    max_cells: int = MAX_FIGURE_CELLS,
) -> go.Figure:
    """Draw local token attention [T, T]: row i is how token i (query) attends to tokens."""
    matrix = as_array("attention", attention, "TT")
    threshold = check_fraction("threshold", threshold)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"attention must be square [T, T], got shape {matrix.shape}.")
    labels = check_labels("token_labels", token_labels, matrix.shape[0], "token")
    if matrix.shape[0] == 0:
        return message_figure("no tokens in this step (T = 0), so there is no token attention.", title)
    if message := no_data_message(matrix, "attention matrix"):
        return message_figure(message, title)

    layers = heatmap_layers(
        matrix,
        Axis("query token", "query tokens", "attending token (query)", labels=labels),
        Axis("key token", "key tokens", "attended token (key)", labels=labels),
        ColorSpec(PROBABILITY_SCALE, *PROBABILITY_RANGE, "attention weight (probability)"),
        "attention weight",
        threshold=threshold if threshold > 0.0 else None,
        max_cells=max_cells,
    )
    return _square_heatmap_figure(layers, matrix, title, threshold, "attended token (key)", "attending token (query)")


def _square_heatmap_figure(layers, matrix: np.ndarray, title: str, threshold: float, x_title: str, y_title: str):
    notes = list(layers.notes)
    if threshold > 0.0:
        notes.append(f"weights below {threshold:g} drawn faint")
    if note := outside_note(matrix, *PROBABILITY_RANGE):
        notes.append(note)
    fig = go.Figure()
    place_heatmap(fig, layers)
    apply_theme(
        fig,
        title,
        note="; ".join(notes) or None,
        x_title=x_title,
        y_title=y_title,
        height=heatmap_height(len(layers.row_categories), maximum=1000),
    )
    fig.update_layout(legend=LEGEND_TOP)
    fig.update_xaxes(tickangle=-45 if len(layers.column_categories) > 20 else 0)
    return fig


# Graphs -----------------------------------------------------------------------------------


def select_edges(
    weights: np.ndarray, threshold: float, top_k: int | None, max_edges: int = MAX_GRAPH_EDGES
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pick the edges (row, column) of `weights` [R, C] to draw, strongest first.

    An edge needs a finite weight > 0 and ≥ threshold. With top_k only each row's k strongest
    edges are kept, and at most max_edges edges survive in all. Returns (rows, columns, notes),
    where the notes state every rule that hid an edge.
    """
    notes = []
    finite = np.isfinite(weights)
    if not finite.all():
        notes.append(f"{describe_non_finite(*count_kinds(weights))} weights not drawn")
    keep = finite & (np.where(finite, weights, 0.0) > 0.0) & (np.where(finite, weights, 0.0) >= threshold)
    if threshold > 0.0:
        notes.append(f"edges below {threshold:g} hidden")
    if top_k is not None and top_k < weights.shape[1]:
        # Rank each row's weights from strongest down; NaN and hidden edges go last.
        ranked = np.where(keep, weights, -np.inf)
        order = np.argsort(-ranked, axis=1, kind="stable")
        in_top = np.zeros_like(keep)
        np.put_along_axis(in_top, order[:, :top_k], True, axis=1)
        keep &= in_top
        notes.append(f"top {top_k} per row shown")
    rows, columns = np.nonzero(keep)
    order = np.argsort(-weights[rows, columns], kind="stable")
    rows, columns = rows[order], columns[order]
    if rows.size > max_edges:
        notes.append(f"strongest {max_edges} of {rows.size} edges shown")
        rows, columns = rows[:max_edges], columns[:max_edges]
    return rows, columns, notes


def routing_graph(
    weights: np.ndarray,
    token_labels: Sequence[str],
    *,
    threshold: float = 0.1,
    top_k: int | None = None,
    title: str = "Token → state routing graph",
    value_name: str = "routing weight",
    max_edges: int = MAX_GRAPH_EDGES,
) -> go.Figure:
    """Draw routing weights [T, S] as a bipartite graph: tokens left, states right.

    Edge width and opacity grow with the weight and edges take the colour of their state.
    Edges below `threshold` are hidden; top_k keeps only each token's k strongest edges.
    State marker area grows with the state's routing mass (sum of its weights over tokens).
    Beyond MAX_GRAPH_TOKENS tokens, tokens without a drawn edge get no node.
    """
    matrix = as_array("weights", weights, "TS")
    labels = check_labels("token_labels", token_labels, matrix.shape[0], "token")
    threshold = check_fraction("threshold", threshold)
    top_k = check_top_k(top_k)
    num_tokens, num_states = matrix.shape
    if num_tokens == 0:
        return message_figure("no tokens in this step (T = 0), so there is nothing to route.", title)
    if num_states == 0:
        return message_figure("this model has no states (S = 0), so there is nothing to route to.", title)
    if message := no_data_message(matrix, f"{value_name} matrix"):
        return message_figure(message, title)

    rows, columns, notes = select_edges(matrix, threshold, top_k, max_edges)
    notes = [note.replace("per row", "per token") for note in notes]
    if rows.size == 0:
        notes.append(f"no edge reaches the threshold {threshold:g}")

    # Tokens and states spread over the same height, first at the top.
    token_y = _spread(num_tokens)
    state_y = _spread(num_states)
    token_names = [f"token {t}: {escape_label(label)}" for t, label in enumerate(labels)]
    state_names = [f"state {s}" for s in range(num_states)]

    fig = go.Figure()
    for trace in _edge_traces(
        matrix, rows, columns, (np.zeros(num_tokens), token_y), (np.ones(num_states), state_y),
        token_names, state_names, value_name, edge_colors=[state_color(s) for s in columns],
    ):
        fig.add_trace(trace)

    edges_per_token = np.bincount(rows, minlength=num_tokens)
    shown_tokens = np.arange(num_tokens)
    if num_tokens > MAX_GRAPH_TOKENS:
        shown_tokens = np.flatnonzero(edges_per_token)
        notes.append(f"{num_tokens - shown_tokens.size} of {num_tokens} tokens without a drawn edge left out")
    show_text = shown_tokens.size <= MAX_TICK_LABELS
    fig.add_trace(
        go.Scatter(
            x=np.zeros(shown_tokens.size),
            y=token_y[shown_tokens],
            mode="markers+text" if show_text else "markers",
            text=[escape_label(shorten(labels[t])) for t in shown_tokens] if show_text else None,
            textposition="middle left",
            marker={"size": 9, "color": "#7F7F7F"},
            name="tokens",
            showlegend=False,
            customdata=edges_per_token[shown_tokens],
            hovertext=[token_names[t] for t in shown_tokens],
            hovertemplate="%{hovertext}<br>edges shown: %{customdata}<extra></extra>",
        )
    )
    mass = state_load(matrix)  # NaN for a state with any NaN/±Inf weight
    fig.add_trace(
        go.Scatter(
            x=np.ones(num_states),
            y=state_y,
            mode="markers+text" if num_states <= MAX_TICK_LABELS else "markers",
            text=state_names if num_states <= MAX_TICK_LABELS else None,
            textposition="middle right",
            marker={
                "size": _node_sizes(mass),
                "color": [state_color(s) for s in range(num_states)],
                "line": {"width": 1, "color": "#FFFFFF"},
            },
            name="states",
            showlegend=False,
            customdata=[f"{value:.4g}" if np.isfinite(value) else non_finite_name(value) for value in mass],
            hovertext=state_names,
            hovertemplate=f"%{{hovertext}}<br>{value_name} mass (sum over tokens): %{{customdata}}<extra></extra>",
        )
    )

    apply_theme(
        fig,
        title,
        note="; ".join(notes) or None,
        height=heatmap_height(max(num_tokens, num_states), per_row=24, minimum=480, maximum=1100),
        show_legend=False,
    )
    fig.update_xaxes(visible=False, range=[-0.45, 1.35])
    fig.update_yaxes(visible=False, range=[-1.1, 0.1])  # room for the largest state markers
    return fig


def attention_graph(
    attention: np.ndarray,
    *,
    threshold: float = 0.1,
    top_k: int | None = None,
    title: str = "State ↔ state attention graph",
    max_edges: int = MAX_GRAPH_EDGES,
) -> go.Figure:
    """Draw state attention [S, S] as a directed graph on a circle: an arrow i → j is i attending to j.

    Self-attention is not drawn as a loop; node hover gives it. Edges below `threshold` are
    hidden; top_k keeps each query state's k strongest edges.
    """
    matrix = as_array("attention", attention, "SS")
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"attention must be square [S, S], got shape {matrix.shape}.")
    threshold = check_fraction("threshold", threshold)
    top_k = check_top_k(top_k)
    num_states = matrix.shape[0]
    if num_states == 0:
        return message_figure("this model has no states (S = 0), so there is no state attention.", title)
    if message := no_data_message(matrix, "attention matrix"):
        return message_figure(message, title)

    off_diagonal = matrix.copy()
    # Self-loops are not drawn. A finite diagonal becomes 0 (never an edge) rather than NaN,
    # so that the "not drawn" note counts only values that really are missing.
    diagonal = np.diag(matrix)
    np.fill_diagonal(off_diagonal, np.where(np.isfinite(diagonal), 0.0, diagonal))
    rows, columns, notes = select_edges(off_diagonal, threshold, top_k, max_edges)
    notes = [note.replace("per row", "per query state") for note in notes]
    if num_states > 1 and rows.size == 0:
        notes.append(f"no edge between states reaches the threshold {threshold:g}")

    # networkx places the states on a circle, counter-clockwise from state 0 at the right.
    # The positions do not depend on the weights, so layers and heads can be compared by eye.
    positions = nx.circular_layout(range(num_states))
    x = np.array([positions[s][0] for s in range(num_states)])
    y = np.array([positions[s][1] for s in range(num_states)])
    state_names = [f"state {s}" for s in range(num_states)]

    fig = go.Figure()
    for trace in _edge_traces(
        matrix, rows, columns, (x, y), (x, y), state_names, state_names, "attention weight",
        edge_colors=[state_color(s) for s in rows], arrows=True,
    ):
        fig.add_trace(trace)

    self_attention = np.diagonal(matrix)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers+text" if num_states <= MAX_TICK_LABELS else "markers",
            text=[str(s) for s in range(num_states)] if num_states <= MAX_TICK_LABELS else None,
            textposition="top center",
            marker={"size": 16, "color": [state_color(s) for s in range(num_states)], "line": {"width": 1, "color": "#FFFFFF"}},
            showlegend=False,
            name="states",
            customdata=self_attention,
            hovertext=state_names,
            hovertemplate="%{hovertext}<br>self-attention: %{customdata:.7~g}<extra></extra>",
        )
    )
    apply_theme(fig, title, note="; ".join(notes) or None, height=640, show_legend=False)
    fig.update_xaxes(visible=False, range=[-1.25, 1.25])
    fig.update_yaxes(visible=False, range=[-1.25, 1.25], scaleanchor="x")
    return fig


def _spread(count: int) -> np.ndarray:
    """Return `count` heights from 0 down to −1; a single node sits in the middle."""
    if count == 1:
        return np.array([-0.5])
    return -np.arange(count) / (count - 1)


def _node_sizes(mass: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(mass), mass, 0.0)
    largest = finite.max() if finite.size and finite.max() > 0 else 1.0
    return 10.0 + 20.0 * np.sqrt(finite / largest)  # marker area grows with the mass


def _edge_traces(matrix, rows, columns, sources, targets, source_names, target_names, value_name, *, edge_colors, arrows=False):
    """Return line traces (one per weight bin and colour) and one trace of hover points at edge middles."""
    source_x, source_y = sources
    target_x, target_y = targets
    weights = matrix[rows, columns]
    start_x, start_y = source_x[rows], source_y[rows]
    end_x, end_y = target_x[columns], target_y[columns]
    if arrows:
        # Stop arrows short of the node, and shift each edge sideways so that i → j and j → i
        # run side by side instead of on top of each other.
        dx, dy = end_x - start_x, end_y - start_y
        length = np.maximum(np.hypot(dx, dy), 1e-9)
        offset_x, offset_y = -dy / length * 0.02, dx / length * 0.02
        start_x, start_y = start_x + offset_x + dx * 0.06, start_y + offset_y + dy * 0.06
        end_x, end_y = end_x + offset_x - dx * 0.08, end_y + offset_y - dy * 0.08

    traces = []
    colors = np.array(edge_colors, dtype=object)
    bounds = [bound for bound, _, _ in EDGE_BINS] + [np.inf]
    for index, (low, width, opacity) in enumerate(EDGE_BINS):
        in_bin = (weights >= low) & (weights < bounds[index + 1])
        for color in PALETTE:
            selected = in_bin & (colors == color)
            if not selected.any():
                continue
            count = int(selected.sum())
            xs = np.column_stack([start_x[selected], end_x[selected], np.full(count, np.nan)]).ravel()
            ys = np.column_stack([start_y[selected], end_y[selected], np.full(count, np.nan)]).ravel()
            trace = go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers" if arrows else "lines",
                line={"width": width, "color": color},
                opacity=opacity,
                hoverinfo="skip",
                showlegend=False,
            )
            if arrows:
                trace.update(
                    marker={
                        "symbol": "arrow",
                        "angleref": "previous",
                        "size": np.tile([0, 8 + width * 1.5, 0], count),
                        "color": color,
                    }
                )
            traces.append(trace)

    traces.append(
        go.Scatter(
            x=(start_x + end_x) / 2,
            y=(start_y + end_y) / 2,
            mode="markers",
            marker={"size": 8, "color": "rgba(0, 0, 0, 0)"},
            showlegend=False,
            name="edges",
            customdata=weights,
            hovertext=[f"{source_names[r]} → {target_names[c]}" for r, c in zip(rows, columns)],
            hovertemplate=f"%{{hovertext}}<br>{value_name}: %{{customdata:.7~g}}<extra></extra>",
        )
    )
    return traces
