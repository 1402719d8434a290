"""Every figure builder on hard values: NaN/±Inf, constant, empty and single-entry inputs, odd labels."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures.gates import gate_small_multiples
from app.figures.routing import attention_graph, attention_heatmap, routing_graph, routing_heatmap, token_attention_heatmap
from app.figures.states import states_animation, states_heatmap
from app.figures.summary import drift_figure, entropy_figure, load_figure
from app.figures.trajectories import trajectory_over_layers, trajectory_over_steps

HARD_LABELS = ["<s>", "</s>", "a<b", "é", "🙂", "é(1/2)", "&amp;", "<br>", "\n", "%{z}"]
RAW_MARKUP = ["<s>", "</s>", "a<b"]  # labels that must never reach Plotly unescaped
ESCAPED_LABELS = ["&lt;s&gt;", "&lt;/s&gt;", "a&lt;b", "é", "🙂", "é(1/2)", "&amp;amp;", "&lt;br&gt;", "\\n", "%{z}"]
LABELLED = ["entropy_figure", "routing_graph", "routing_heatmap", "token_attention_heatmap", "trajectory_over_steps"]


def _labels(count: int) -> list[str]:
    return [HARD_LABELS[i % len(HARD_LABELS)] for i in range(count)]


# Each builder takes one "size" n and a function that fills an array of a given shape.
Fill = Callable[[tuple[int, ...]], np.ndarray]
BUILDERS: dict[str, Callable[[int, Fill], go.Figure]] = {
    "routing_heatmap": lambda n, fill: routing_heatmap(fill((n, 3)), _labels(n), threshold=0.1),
    "routing_graph": lambda n, fill: routing_graph(fill((n, 3)), _labels(n), threshold=0.1),
    "attention_heatmap": lambda n, fill: attention_heatmap(fill((n, n))),
    "attention_graph": lambda n, fill: attention_graph(fill((n, n)), threshold=0.1),
    "token_attention_heatmap": lambda n, fill: token_attention_heatmap(fill((n, n)), _labels(n)),
    "states_heatmap": lambda n, fill: states_heatmap(fill((n, 4)), importance=fill((n,)), active=np.ones(n, bool)),
    "states_animation": lambda n, fill: states_animation(fill((2, n, 4)), importance_by_layer=fill((2, n))),
    "trajectory_over_layers": lambda n, fill: trajectory_over_layers(fill((2, n, 4)), "norm"),
    "trajectory_over_steps": lambda n, fill: trajectory_over_steps(fill((n, 3)), _labels(n), "value (activation)"),
    "gate_small_multiples": lambda n, fill: gate_small_multiples(fill((2, n, 2)), ["update", "<reset>"]),
    "entropy_figure": lambda n, fill: entropy_figure(fill((n,)), _labels(n), num_states=3),
    "load_figure": lambda n, fill: load_figure(fill((n,)), num_tokens=5),
    "drift_figure": lambda n, fill: drift_figure(fill((n, 3))),
}


def _strings(value) -> list[str]:
    """Return every string inside a figure's JSON structure."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _build(name: str, n: int, fill: Fill) -> go.Figure:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN-safe means no RuntimeWarning either
        fig = BUILDERS[name](n, fill)
    json.loads(fig.to_json())  # serialisable, unpaired surrogates and all
    return fig


def _is_message(fig: go.Figure) -> bool:
    return len(fig.data) == 0 and len(fig.layout.annotations) == 1


def _mixed(shape: tuple[int, ...]) -> np.ndarray:
    values = np.random.default_rng(0).uniform(0.05, 0.95, size=shape).astype(np.float32)
    flat = values.reshape(-1)
    flat[0] = np.nan
    if flat.size > 2:
        flat[1] = np.inf
        flat[2] = -np.inf
    return values


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_all_nan_says_no_data(name):
    fig = _build(name, 4, lambda shape: np.full(shape, np.nan, dtype=np.float32))
    assert _is_message(fig)
    assert fig.layout.annotations[0].text.startswith("no data")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_empty_axis_says_why(name):
    fig = _build(name, 0, lambda shape: np.zeros(shape, dtype=np.float32))
    assert _is_message(fig)
    assert "= 0" in fig.layout.annotations[0].text


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_single_entry_renders(name):
    fig = _build(name, 1, lambda shape: np.full(shape, 0.5, dtype=np.float32))
    assert not _is_message(fig)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_non_finite_values_named(name):
    fig = _build(name, 5, _mixed)
    assert not _is_message(fig)
    text = " ".join(_strings(fig.to_plotly_json()))
    assert "NaN" in text


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_labels_never_reach_plotly_raw(name):
    fig = _build(name, 10, lambda shape: np.full(shape, 0.3, dtype=np.float32))
    strings = _strings(fig.to_plotly_json())
    for markup in RAW_MARKUP:
        assert not any(markup in text for text in strings), f"{markup!r} reached the figure unescaped"


@pytest.mark.parametrize("name", LABELLED)
def test_labels_shown_escaped(name):
    fig = _build(name, 10, lambda shape: np.full(shape, 0.3, dtype=np.float32))
    text = " ".join(_strings(fig.to_plotly_json()))
    for escaped in ESCAPED_LABELS:
        assert escaped in text


@pytest.mark.parametrize(
    "name", ["routing_heatmap", "attention_heatmap", "token_attention_heatmap", "gate_small_multiples"]
)
def test_constant_probabilities_keep_unit_scale(name):
    fig = _build(name, 3, lambda shape: np.full(shape, 0.25, dtype=np.float32))
    coloured = [trace for trace in fig.data if trace.type == "heatmap" and trace.showscale]
    assert coloured
    assert (coloured[0].zmin, coloured[0].zmax) == (0.0, 1.0)


def test_constant_states_keep_symmetric_scale():
    fig = _build("states_heatmap", 3, lambda shape: np.full(shape, 2.5, dtype=np.float32))
    coloured = next(trace for trace in fig.data if trace.type == "heatmap" and trace.showscale)
    assert (coloured.zmin, coloured.zmax) == (-2.5, 2.5)


@pytest.mark.parametrize("name", ["routing_heatmap", "attention_heatmap", "states_heatmap", "gate_small_multiples"])
def test_colour_range_ignores_infinity(name):
    def fill(shape):
        values = np.full(shape, 0.5, dtype=np.float32)
        values.reshape(-1)[0] = np.inf
        values.reshape(-1)[1] = 0.75
        return values

    fig = _build(name, 3, fill)
    coloured = next(trace for trace in fig.data if trace.type == "heatmap" and trace.showscale)
    assert np.isfinite(coloured.zmin)
    assert np.isfinite(coloured.zmax)
    assert np.isnan(np.asarray(coloured.z, dtype=np.float64)).any()  # the +Inf cell is not coloured
