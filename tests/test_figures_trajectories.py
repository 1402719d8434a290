"""Trajectory figures: lines per state over layers and steps, and PCA paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.figures.style import state_color
from app.figures.trajectories import projection_paths, trajectory_over_layers, trajectory_over_steps


def _trace(fig, name):
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, found {[t.name for t in fig.data]}"
    return matches[0]


def _message(fig) -> str:
    return fig.layout.annotations[0].text


@pytest.fixture
def by_layer() -> np.ndarray:
    # [L+1=3, S=2, D=2]: state 0 walks (0, 0) → (3, 4) → (6, 8); state 1 stays at (1, 0).
    return np.array(
        [[[0.0, 0.0], [1.0, 0.0]], [[3.0, 4.0], [1.0, 0.0]], [[6.0, 8.0], [1.0, 0.0]]], dtype=np.float32
    )


def test_trajectory_over_layers_norm(by_layer):
    fig = trajectory_over_layers(by_layer, "norm")
    # Norms of state 0: 0, 5, 10; of state 1: 1, 1, 1.
    np.testing.assert_allclose(_trace(fig, "state 0").y, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(_trace(fig, "state 1").y, [1.0, 1.0, 1.0])
    assert list(_trace(fig, "state 0").x) == [0, 1, 2]
    assert fig.layout.yaxis.title.text == "L2 norm of the state (activation)"
    assert fig.layout.xaxis.title.text == "layer (0 = initial states)"
    assert list(fig.layout.xaxis.ticktext) == ["initial", "1", "2"]


def test_trajectory_over_layers_dimension(by_layer):
    fig = trajectory_over_layers(by_layer, 1)
    np.testing.assert_array_equal(_trace(fig, "state 0").y, [0.0, 4.0, 8.0])
    assert fig.layout.yaxis.title.text == "state dimension 1 (activation)"


def test_trajectory_lines_keep_state_colours(by_layer):
    fig = trajectory_over_layers(by_layer, 0)
    for s in range(2):
        line = _trace(fig, f"state {s}")
        assert line.line.color == state_color(s)
        assert line.marker.color == state_color(s)


def test_trajectory_hover_names_state_layer_value(by_layer):
    line = _trace(trajectory_over_layers(by_layer, 0), "state 1")
    assert line.hovertemplate == "state 1<br>%{customdata}<br>dimension 0: %{y:.7~g}<extra></extra>"
    assert list(line.customdata) == ["initial", "layer 1", "layer 2"]


@pytest.mark.parametrize(("dim", "message"), [(2, r"dim=2 is outside \[0, 1\]"), ("mean", "dim='mean' is invalid"), (True, "invalid")])
def test_trajectory_rejects_invalid_dim(by_layer, dim, message):
    with pytest.raises(ValueError, match=message):
        trajectory_over_layers(by_layer, dim)


def test_trajectory_marks_non_finite_at_edge(by_layer):
    by_layer[1, 1, 0] = np.nan
    by_layer[2, 1, 0] = -np.inf
    fig = trajectory_over_layers(by_layer, 0)
    line = _trace(fig, "state 1")
    assert math.isnan(line.y[1])
    assert math.isnan(line.y[2])
    marks = _trace(fig, "NaN/±Inf")
    assert list(marks.x) == [1, 2]
    # Finite values span 0..6, so the marks sit 8 % of 6 beyond: 6.48 for NaN, −0.48 for −Inf.
    np.testing.assert_allclose(marks.y, [6.48, -0.48])
    assert list(marks.marker.symbol) == ["x", "triangle-down"]
    assert marks.hovertext[0] == "state 1<br>layer 1<br>dimension 0: NaN"
    assert fig.layout.title.subtitle.text == "1 NaN, 1 −Inf drawn as symbols at the plot's edge"


def test_trajectory_all_nan_says_no_data():
    fig = trajectory_over_layers(np.full((2, 2, 2), np.nan, dtype=np.float32), 0)
    assert _message(fig).startswith("no data")


def test_trajectory_single_layer_single_state():
    fig = trajectory_over_layers(np.array([[[3.0, 4.0]]], dtype=np.float32), "norm")
    line = _trace(fig, "state 0")
    assert list(line.y) == [5.0]
    assert line.mode == "lines+markers"  # a single point still shows


def test_trajectory_no_states_says_why():
    assert "S = 0" in _message(trajectory_over_layers(np.zeros((2, 0, 3), dtype=np.float32), "norm"))


def test_trajectory_over_steps_labels_escaped():
    values = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)  # [P=2, S=2]
    fig = trajectory_over_steps(values, ["<s> part", "tokens 5–9"], "L2 norm at layer 1 (activation)")
    line = _trace(fig, "state 1")
    np.testing.assert_array_equal(line.y, [2.0, 4.0])
    assert list(line.customdata) == ["step 0: &lt;s&gt; part", "step 1: tokens 5–9"]
    assert list(fig.layout.xaxis.ticktext) == ["&lt;s&gt; part", "tokens 5–9"]
    assert fig.layout.yaxis.title.text == "L2 norm at layer 1 (activation)"
    assert fig.layout.title.text == "L2 norm at layer 1 (activation) across the steps"


def test_trajectory_over_steps_rejects_label_mismatch():
    with pytest.raises(ValueError, match="step_labels is 1 labels but values has 2 steps"):
        trajectory_over_steps(np.zeros((2, 3), dtype=np.float32), ["a"], "value")


def test_trajectory_legend_hidden_for_many_states():
    fig = trajectory_over_layers(np.random.default_rng(0).standard_normal((2, 30, 3)).astype(np.float32), 0)
    assert not any(trace.showlegend for trace in fig.data)


def test_projection_paths_two_components():
    # Two states moving along x by different amounts, with a small y offset.
    states = np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[4.0, 0.0, 0.0], [2.0, 1.0, 0.0]]], dtype=np.float32)
    fig = projection_paths(states, 2)
    # Points (0,0,0), (0,1,0), (4,0,0), (2,1,0) have mean (1.5, 0.5, 0). PC1 is nearly x.
    path = _trace(fig, "state 0")
    assert len(path.x) == 2
    assert path.x[1] > path.x[0]  # state 0 moves the positive way along PC1
    assert list(path.marker.symbol) == ["circle-open", "diamond"]
    assert path.line.color == state_color(0)
    assert fig.layout.xaxis.title.text.startswith("PC1 (")
    assert fig.layout.xaxis.title.text.endswith("% of variance)")
    assert "○ initial states, ◆ last layer" in fig.layout.title.subtitle.text


def test_projection_paths_three_components():
    states = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    fig = projection_paths(states, 3)
    path = _trace(fig, "state 2")
    assert path.type == "scatter3d"
    assert len(path.z) == 4
    assert fig.layout.scene.zaxis.title.text.startswith("PC3")


def test_projection_paths_hover():
    states = np.random.default_rng(1).standard_normal((3, 2, 4)).astype(np.float32)
    path = _trace(projection_paths(states, 2), "state 1")
    assert path.hovertemplate == "state 1<br>%{customdata}<br>PC1: %{x:.4g}<br>PC2: %{y:.4g}<extra></extra>"
    assert list(path.customdata) == ["initial", "layer 1", "layer 2"]


def test_projection_paths_leaves_out_non_finite_points():
    states = np.random.default_rng(2).standard_normal((3, 2, 4)).astype(np.float32)
    states[1, 0, 2] = np.inf
    fig = projection_paths(states, 2)
    assert math.isnan(_trace(fig, "state 0").x[1])
    assert "1 of 6 points with NaN or ±Inf left out" in fig.layout.title.subtitle.text


@pytest.mark.parametrize(
    ("shape", "components", "message"),
    [
        ((1, 2, 4), 3, "needs at least 3 points, got 2"),  # 3D needs ≥ 3 points
        ((3, 2, 2), 3, "have 2 dimension"),
        ((2, 2, 3), 4, "components=4 is invalid"),
    ],
)
def test_projection_paths_says_why_impossible(shape, components, message):
    states = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        projection_paths(states, components)


def test_projection_paths_identical_points_say_why():
    with pytest.raises(ValueError, match="Cannot project the state paths: all 4 points are identical"):
        projection_paths(np.ones((2, 2, 3), dtype=np.float32), 2)


def test_projection_paths_counts_dropped_points_in_error():
    states = np.full((2, 2, 3), np.nan, dtype=np.float32)
    states[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"3 of 4 points have NaN or ±Inf"):
        projection_paths(states, 2)
