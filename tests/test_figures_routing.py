"""Routing and attention figures: heatmaps on the probability scale, graphs, hard values and labels."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures.routing import (
    MAX_GRAPH_EDGES,
    attention_graph,
    attention_heatmap,
    routing_graph,
    routing_heatmap,
    select_edges,
    select_head,
    token_attention_heatmap,
)
from app.figures.style import PALETTE, state_color

HARD_LABELS = ["<s>", "a<b", "é", "🙂", "é(1/2)", "</s>"]


def _trace(fig, name):
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, found {[t.name for t in fig.data]}"
    return matches[0]


def _message(fig) -> str:
    return fig.layout.annotations[0].text


@pytest.fixture
def weights() -> np.ndarray:
    # 6 tokens × 3 states; every row sums to 1.
    return np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.3, 0.3, 0.4],
            [0.0, 0.0, 1.0],
            [0.5, 0.25, 0.25],
            [0.05, 0.9, 0.05],
        ],
        dtype=np.float32,
    )


def test_routing_heatmap_plots_weights_on_fixed_scale(weights):
    fig = routing_heatmap(weights, HARD_LABELS, title="Routing, layer 1")
    main = _trace(fig, "routing weight")

    np.testing.assert_array_equal(main.z, weights)
    assert (main.zmin, main.zmax) == (0.0, 1.0)
    assert main.colorscale[0][1] == "#440154"  # Viridis starts in dark purple
    assert main.colorbar.title.text == "routing weight (probability)"
    assert fig.layout.title.text == "Routing, layer 1"
    assert fig.layout.xaxis.title.text == "state"
    assert fig.layout.yaxis.title.text == "token (position: text)"


def test_routing_heatmap_hover_names_token_state_and_value(weights):
    main = _trace(routing_heatmap(weights, HARD_LABELS), "routing weight")
    assert main.hovertemplate == "%{y}<br>%{x}<br>routing weight: %{z:.7~g}<extra></extra>"
    assert list(main.y) == [
        "token 0: &lt;s&gt;",
        "token 1: a&lt;b",
        "token 2: é",
        "token 3: 🙂",
        "token 4: é(1/2)",
        "token 5: &lt;/s&gt;",
    ]
    assert list(main.x) == ["state 0", "state 1", "state 2"]


def test_routing_heatmap_ticks_show_labels_and_state_colours(weights):
    fig = routing_heatmap(weights, HARD_LABELS)
    assert list(fig.layout.yaxis.ticktext) == ["&lt;s&gt;", "a&lt;b", "é", "🙂", "é(1/2)", "&lt;/s&gt;"]
    assert list(fig.layout.xaxis.ticktext) == [
        f'<span style="color:{state_color(s)}">■</span> {s}' for s in range(3)
    ]
    assert fig.layout.yaxis.autorange == "reversed"  # first token at the top


def test_routing_heatmap_constant_matrix_keeps_probability_scale():
    fig = routing_heatmap(np.full((4, 4), 0.25, dtype=np.float32), list("abcd"))
    main = _trace(fig, "routing weight")
    assert (main.zmin, main.zmax) == (0.0, 1.0)
    assert main.showscale is True


def test_routing_heatmap_marks_and_names_non_finite(weights):
    weights[1, 2] = np.nan
    weights[3, 0] = np.inf
    weights[4, 1] = -np.inf
    fig = routing_heatmap(weights, HARD_LABELS)
    main = _trace(fig, "routing weight")

    for row, column in ((1, 2), (3, 0), (4, 1)):
        assert np.isnan(main.z[row][column])
    assert main.z[0][0] == pytest.approx(0.7)
    grey = _trace(fig, "NaN/±Inf cells")
    assert grey.text[1][2] == "NaN"
    assert grey.text[3][0] == "+Inf"
    assert grey.text[4][1] == "−Inf"
    assert grey.z[1][2] == 1.0
    assert np.isnan(grey.z[0][0])
    assert "%{text}" in grey.hovertemplate

    for name, symbol, (row, column) in (("NaN", "x", (1, 2)), ("+Inf", "triangle-up", (3, 0)), ("−Inf", "triangle-down", (4, 1))):
        mark = _trace(fig, name)
        assert mark.marker.symbol == symbol
        assert list(mark.x) == [main.x[column]]
        assert list(mark.y) == [main.y[row]]
        assert mark.hovertext[0] == f"{main.y[row]}<br>{main.x[column]}<br>routing weight: {name}"


def test_routing_heatmap_threshold_draws_small_weights_faint(weights):
    fig = routing_heatmap(weights, HARD_LABELS, threshold=0.2)
    main = _trace(fig, "routing weight")
    faint = _trace(fig, "below threshold")

    below = weights < 0.2
    np.testing.assert_array_equal(np.isnan(main.z), below)
    np.testing.assert_array_equal(np.where(below, weights, np.nan), faint.z)
    assert "(below threshold 0.2)" in faint.hovertemplate
    assert "weights below 0.2 drawn faint" in fig.layout.title.subtitle.text


def test_routing_heatmap_notes_values_outside_unit_interval():
    fig = routing_heatmap(np.array([[1.5, -0.5]], dtype=np.float32), ["x"])
    assert "2 values outside [0, 1] (min -0.5, max 1.5)" in fig.layout.title.subtitle.text


def test_routing_heatmap_all_nan_says_no_data():
    fig = routing_heatmap(np.full((2, 3), np.nan, dtype=np.float32), ["a", "b"])
    assert _message(fig) == "no data: all 6 values of the routing weight matrix are NaN or ±Inf (6 NaN)."


@pytest.mark.parametrize(
    ("shape", "labels", "message"),
    [((0, 4), [], "no tokens in this step (T = 0)"), ((3, 0), ["a", "b", "c"], "no states (S = 0)")],
)
def test_routing_heatmap_empty_axis_says_why(shape, labels, message):
    fig = routing_heatmap(np.zeros(shape, dtype=np.float32), labels)
    assert message in _message(fig)


def test_routing_heatmap_one_token_one_state():
    fig = routing_heatmap(np.ones((1, 1), dtype=np.float32), ["<s>"])
    main = _trace(fig, "routing weight")
    np.testing.assert_array_equal(main.z, [[1.0]])
    assert list(main.y) == ["token 0: &lt;s&gt;"]


def test_routing_heatmap_rejects_label_count_mismatch(weights):
    with pytest.raises(ValueError, match="token_labels has 2 labels but the matrix has 6 tokens"):
        routing_heatmap(weights, ["a", "b"])


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "0.5"])
def test_routing_heatmap_rejects_invalid_threshold(weights, threshold):
    with pytest.raises(ValueError, match="threshold="):
        routing_heatmap(weights, HARD_LABELS, threshold=threshold)


def test_routing_heatmap_rejects_headed_weights(weights):
    with pytest.raises(ValueError, match=r"2 dimensions \[T, S\], got shape \(2, 6, 3\)"):
        routing_heatmap(np.stack([weights, weights]), HARD_LABELS)


def test_routing_heatmap_reduces_tokens_first():
    weights = np.random.default_rng(0).dirichlet(np.ones(8), size=40).astype(np.float32)  # [40, 8]
    fig = routing_heatmap(weights, [f"t{t}" for t in range(40)], max_cells=80)
    main = _trace(fig, "routing weight")
    # 40 × 8 = 320 cells; blocks of 4 tokens leave 10 × 8 = 80 with every state kept.
    assert np.asarray(main.z).shape == (10, 8)
    np.testing.assert_allclose(main.z[0], weights[:4].mean(axis=0), rtol=1e-6)
    assert main.y[0] == "tokens 0–3: t0 t1 t2 t3"
    assert fig.layout.title.subtitle.text == "mean over blocks of 4 tokens × 1 state"
    assert main.hovertemplate.startswith("%{y}<br>%{x}<br>routing weight (block mean): ")


def test_select_head_mean_and_index():
    weights = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(select_head(weights, 1), weights[1])
    # Mean of heads: (0 + 6) / 2 = 3, (1 + 7) / 2 = 4, and so on.
    np.testing.assert_array_equal(select_head(weights), [[3, 4], [5, 6], [7, 8]])
    np.testing.assert_array_equal(select_head(weights[:1]), weights[0])  # a single head


def test_select_head_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"head=2 is outside \[0, 1\]"):
        select_head(np.zeros((2, 3, 4)), 2)
    with pytest.raises(ValueError, match="no heads"):
        select_head(np.zeros((0, 3, 4)))


def test_attention_heatmap_square_probability_scale():
    attention = np.array([[0.9, 0.1], [0.4, 0.6]], dtype=np.float32)
    fig = attention_heatmap(attention, title="State attention")
    main = _trace(fig, "attention weight")
    np.testing.assert_array_equal(main.z, attention)
    assert (main.zmin, main.zmax) == (0.0, 1.0)
    assert list(main.y) == ["query state 0", "query state 1"]
    assert list(main.x) == ["key state 0", "key state 1"]
    assert fig.layout.xaxis.title.text == "attended state (key)"
    assert fig.layout.yaxis.title.text == "attending state (query)"


def test_attention_heatmap_rejects_non_square():
    with pytest.raises(ValueError, match=r"square \[S, S\], got shape \(2, 3\)"):
        attention_heatmap(np.zeros((2, 3)))


def test_attention_heatmap_one_state():
    fig = attention_heatmap(np.ones((1, 1), dtype=np.float32))
    np.testing.assert_array_equal(_trace(fig, "attention weight").z, [[1.0]])


def test_token_attention_heatmap_labels_both_axes():
    attention = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    fig = token_attention_heatmap(attention, ["<s>", "a&b"])
    main = _trace(fig, "attention weight")
    assert list(main.y) == ["query token 0: &lt;s&gt;", "query token 1: a&amp;b"]
    assert list(main.x) == ["key token 0: &lt;s&gt;", "key token 1: a&amp;b"]


def test_select_edges_threshold_top_k_and_cap():
    weights = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype=np.float32)
    rows, columns, notes = select_edges(weights, threshold=0.15, top_k=2, max_edges=3)
    # Above 0.15: (0,0) 0.6, (0,1) 0.3, (1,0) 0.2, (1,1) 0.2, (1,2) 0.6. Top 2 per row drops
    # (1,1), the later of two equal weights. The cap keeps the 3 strongest: 0.6, 0.6, 0.3.
    assert list(zip(rows.tolist(), columns.tolist())) == [(0, 0), (1, 2), (0, 1)]
    assert notes == ["edges below 0.15 hidden", "top 2 per row shown", "strongest 3 of 4 edges shown"]


def test_select_edges_skips_nan_and_zero():
    weights = np.array([[np.nan, 0.0, 0.5, np.inf]])
    rows, columns, _ = select_edges(weights, threshold=0.0, top_k=None)
    assert columns.tolist() == [2]


def test_routing_graph_edges_above_threshold_with_exact_hover(weights):
    fig = routing_graph(weights, HARD_LABELS, threshold=0.5)
    edges = _trace(fig, "edges")
    # Weights ≥ 0.5: (0,0) 0.7, (1,1) 0.8, (3,2) 1.0, (4,0) 0.5, (5,1) 0.9, strongest first.
    np.testing.assert_allclose(edges.customdata, [1.0, 0.9, 0.8, 0.7, 0.5])
    assert edges.hovertext[0] == "token 3: 🙂 → state 2"
    assert edges.hovertext[1] == "token 5: &lt;/s&gt; → state 1"
    assert edges.hovertemplate == "%{hovertext}<br>routing weight: %{customdata:.7~g}<extra></extra>"
    assert "edges below 0.5 hidden" in fig.layout.title.subtitle.text


def test_routing_graph_edge_colour_and_width(weights):
    fig = routing_graph(weights, HARD_LABELS, threshold=0.75)
    lines = [trace for trace in fig.data if trace.mode == "lines"]
    # Weights ≥ 0.75 (0.8, 1.0, 0.9) share the widest bin; state 1 and state 2 get a trace each.
    assert sorted(trace.line.color for trace in lines) == sorted([state_color(1), state_color(2)])
    assert {trace.line.width for trace in lines} == {7.0}
    states = _trace(fig, "states")
    assert list(states.marker.color) == [state_color(s) for s in range(3)]
    # Mass per state is the column sum: 1.65, 2.45, 1.9.
    assert list(states.customdata) == ["1.65", "2.45", "1.9"]


def test_routing_graph_top_k_per_token(weights):
    fig = routing_graph(weights, HARD_LABELS, threshold=0.0, top_k=1)
    edges = _trace(fig, "edges")
    assert len(edges.customdata) == 6
    tokens = _trace(fig, "tokens")
    assert list(tokens.customdata) == [1] * 6
    assert list(tokens.text) == ["&lt;s&gt;", "a&lt;b", "é", "🙂", "é(1/2)", "&lt;/s&gt;"]


def test_routing_graph_caps_edges(weights):
    fig = routing_graph(weights, HARD_LABELS, threshold=0.0, max_edges=4)
    assert len(_trace(fig, "edges").customdata) == 4
    assert "strongest 4 of 16 edges shown" in fig.layout.title.subtitle.text


def test_routing_graph_no_edge_says_so(weights):
    fig = routing_graph(weights * 0.5, HARD_LABELS, threshold=0.9)
    assert len(_trace(fig, "edges").customdata) == 0
    assert "no edge reaches the threshold 0.9" in fig.layout.title.subtitle.text


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_routing_graph_rejects_invalid_top_k(weights, top_k):
    with pytest.raises(ValueError, match="top_k="):
        routing_graph(weights, HARD_LABELS, top_k=top_k)


def test_routing_graph_empty_and_all_nan():
    assert "T = 0" in _message(routing_graph(np.zeros((0, 3), dtype=np.float32), []))
    assert _message(routing_graph(np.full((1, 2), np.nan, dtype=np.float32), ["a"])).startswith("no data")


def test_routing_graph_single_token_and_state():
    fig = routing_graph(np.ones((1, 1), dtype=np.float32), ["x"], threshold=0.5)
    assert list(_trace(fig, "edges").customdata) == [1.0]
    assert list(_trace(fig, "tokens").y) == [-0.5]


def test_attention_graph_directed_edges_without_self_loops():
    attention = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype=np.float32)
    fig = attention_graph(attention, threshold=0.25)
    edges = _trace(fig, "edges")
    # Off-diagonal weights ≥ 0.25: 1→2 0.7, 0→1 0.5, 2→0 0.3, 2→1 0.3.
    assert list(edges.hovertext) == ["state 1 → state 2", "state 0 → state 1", "state 2 → state 0", "state 2 → state 1"]
    np.testing.assert_allclose(edges.customdata, [0.7, 0.5, 0.3, 0.3])
    states = _trace(fig, "states")
    np.testing.assert_allclose(states.customdata, [0.5, 0.2, 0.4])  # self-attention in hover
    arrows = [trace for trace in fig.data if trace.mode == "lines+markers"]
    assert arrows and all(trace.marker.symbol == "arrow" for trace in arrows)
    assert {trace.line.color for trace in arrows} <= set(PALETTE)


def test_attention_graph_single_state():
    fig = attention_graph(np.ones((1, 1), dtype=np.float32), threshold=0.0)
    assert len(_trace(fig, "edges").customdata) == 0
    assert list(_trace(fig, "states").customdata) == [1.0]


def test_attention_graph_caps_edges():
    attention = np.full((100, 100), 0.01, dtype=np.float32)
    fig = attention_graph(attention, threshold=0.0)
    assert len(_trace(fig, "edges").customdata) == MAX_GRAPH_EDGES
    assert f"strongest {MAX_GRAPH_EDGES} of 9900 edges shown" in fig.layout.title.subtitle.text


def test_attention_graph_finite_diagonal_not_called_missing():
    from app.figures.routing import attention_graph

    attention = np.full((4, 4), 0.25, dtype=np.float32)  # finite everywhere, diagonal included
    text = attention_graph(attention, threshold=0.0).to_json()

    assert "not drawn" not in text
