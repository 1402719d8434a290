"""State figures: diverging heatmap, importance and pruning marks, and the layer animation."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures.states import states_animation, states_heatmap
from app.figures.style import state_color


def _trace(fig, name):
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, found {[t.name for t in fig.data]}"
    return matches[0]


def _message(fig) -> str:
    return fig.layout.annotations[0].text


@pytest.fixture
def states() -> np.ndarray:
    return np.array([[1.0, -3.0, 0.5], [0.0, 2.0, -1.0]], dtype=np.float32)  # [S=2, D=3]


def test_states_heatmap_diverging_scale_centred_at_zero(states):
    fig = states_heatmap(states, title="States, layer 1")
    main = _trace(fig, "value")
    np.testing.assert_array_equal(main.z, states)
    # The largest |value| is 3, so the range is (−3, 3) with 0 in the white middle.
    assert (main.zmin, main.zmax, main.zmid) == (-3.0, 3.0, 0.0)
    assert main.colorscale[0][1] == "rgb(5,48,97)"  # RdBu reversed: blue below 0
    assert main.colorbar.title.text == "state value (activation)"
    assert fig.layout.xaxis.title.text == "state dimension"
    assert fig.layout.yaxis.title.text == "state"


def test_states_heatmap_rows_labelled_and_coloured(states):
    fig = states_heatmap(states)
    main = _trace(fig, "value")
    assert list(main.y) == ["state 0", "state 1"]
    assert list(main.x) == ["dim 0", "dim 1", "dim 2"]
    assert list(fig.layout.yaxis.ticktext) == [
        f'<span style="color:{state_color(0)}">■</span> state 0',
        f'<span style="color:{state_color(1)}">■</span> state 1',
    ]
    assert main.hovertemplate == "%{y}<br>%{x}<br>value: %{z:.7~g}<extra></extra>"


def test_states_heatmap_zrange_widened_symmetric(states):
    main = _trace(states_heatmap(states, zrange=(-1.0, 5.0)), "value")
    assert (main.zmin, main.zmax) == (-5.0, 5.0)


@pytest.mark.parametrize("zrange", [(2.0, 1.0), (0.0, float("inf")), (1.0,)])
def test_states_heatmap_rejects_invalid_zrange(states, zrange):
    with pytest.raises(ValueError, match="zrange="):
        states_heatmap(states, zrange=zrange)


def test_states_heatmap_constant_zero_keeps_colour_bar():
    main = _trace(states_heatmap(np.zeros((3, 4), dtype=np.float32)), "value")
    assert (main.zmin, main.zmax) == (-1.0, 1.0)


def test_states_heatmap_difference(states):
    reference = np.ones_like(states)
    fig = states_heatmap(states, diff_from=reference)
    main = _trace(fig, "change")
    np.testing.assert_array_equal(main.z, states - 1.0)
    # The largest |change| is |−3 − 1| = 4.
    assert (main.zmin, main.zmax) == (-4.0, 4.0)
    assert main.colorbar.title.text == "change of state value (activation)"


def test_states_heatmap_rejects_mismatched_reference(states):
    with pytest.raises(ValueError, match=r"diff_from has shape \(3, 3\) but states has shape \(2, 3\)"):
        states_heatmap(states, diff_from=np.zeros((3, 3)))


def test_states_heatmap_importance_bars_and_pruned_marks(states):
    fig = states_heatmap(states, importance=np.array([0.25, 0.75]), active=np.array([True, False]))
    bars = _trace(fig, "importance")
    np.testing.assert_array_equal(bars.x, [0.25, 0.75])
    assert list(bars.marker.color) == [state_color(0), state_color(1)]
    assert list(bars.marker.pattern.shape) == ["", "/"]
    assert [row[1] for row in bars.customdata] == ["active", "pruned"]
    assert fig.layout.xaxis.title.text == "importance (0–1)"
    assert fig.layout.xaxis.range == (0, 1.0)
    assert fig.layout.yaxis.ticktext[1].endswith("state 1 (pruned)")


def test_states_heatmap_active_without_importance(states):
    fig = states_heatmap(states, active=np.array([False, True]))
    marks = _trace(fig, "active")
    assert list(marks.marker.symbol) == ["circle-open", "circle"]
    assert list(marks.customdata) == ["pruned", "active"]


def test_states_heatmap_non_finite_importance_named(states):
    bars = _trace(states_heatmap(states, importance=np.array([np.nan, 0.5])), "importance")
    assert bars.x[0] == 0.0
    assert bars.customdata[0][0] == "NaN"


def test_states_heatmap_rejects_wrong_side_shapes(states):
    with pytest.raises(ValueError, match="importance has 3 entries but there are 2 states"):
        states_heatmap(states, importance=np.zeros(3))
    with pytest.raises(ValueError, match=r"active must have shape \(2,\)"):
        states_heatmap(states, active=np.zeros((2, 1), dtype=bool))


def test_states_heatmap_marks_non_finite(states):
    states[0, 1] = np.inf
    states[1, 2] = np.nan
    fig = states_heatmap(states)
    main = _trace(fig, "value")
    assert np.isnan(main.z[0][1])
    assert np.isnan(main.z[1][2])
    # The colour range ignores +Inf: the largest finite |value| is 2.
    assert (main.zmin, main.zmax) == (-2.0, 2.0)
    assert list(_trace(fig, "+Inf").x) == ["dim 1"]
    assert list(_trace(fig, "NaN").y) == ["state 1"]


def test_states_heatmap_all_nan_says_no_data():
    fig = states_heatmap(np.full((2, 2), np.nan, dtype=np.float32))
    assert _message(fig).startswith("no data: all 4 values")


@pytest.mark.parametrize(("shape", "message"), [((0, 3), "S = 0"), ((2, 0), "D = 0")])
def test_states_heatmap_empty_says_why(shape, message):
    assert message in _message(states_heatmap(np.zeros(shape, dtype=np.float32)))


def test_states_heatmap_single_state_single_dim():
    fig = states_heatmap(np.array([[0.5]], dtype=np.float32), importance=np.array([1.0]))
    np.testing.assert_array_equal(_trace(fig, "value").z, [[0.5]])


def test_states_heatmap_reduces_dims_keeping_states():
    states = np.arange(4 * 10, dtype=np.float32).reshape(4, 10)
    fig = states_heatmap(states, max_cells=20)
    main = _trace(fig, "value")
    # Blocks of 2 dims leave 4 × 5 = 20 cells; row 0's first block is (0 + 1) / 2 = 0.5.
    assert np.asarray(main.z).shape == (4, 5)
    assert main.z[0][0] == 0.5
    assert list(main.y) == ["state 0", "state 1", "state 2", "state 3"]
    assert main.x[0] == "dims 0–1"
    assert fig.layout.title.subtitle.text == "mean over blocks of 1 state × 2 dims"


@pytest.fixture
def by_layer(states) -> np.ndarray:
    return np.stack([states, states * 2, states * -1])  # [L+1=3, S=2, D=3]


def test_states_animation_frame_per_layer(by_layer):
    fig = states_animation(by_layer)
    assert [frame.name for frame in fig.frames] == ["initial", "layer 1", "layer 2"]
    for layer, frame in enumerate(fig.frames):
        main = next(trace for trace in frame.data if trace.name == "value")
        np.testing.assert_array_equal(main.z, by_layer[layer])
        assert list(frame.traces) == list(range(len(frame.data)))
    # Every frame has the same traces, so the animation replaces each one.
    assert {len(frame.data) for frame in fig.frames} == {len(fig.data)}


def test_states_animation_fixed_colour_range(by_layer):
    fig = states_animation(by_layer)
    main = _trace(fig, "value")
    # Largest |value| over all layers: |−3 × 2| = 6.
    assert (main.zmin, main.zmax) == (-6.0, 6.0)


def test_states_animation_player_controls(by_layer):
    fig = states_animation(by_layer)
    buttons = fig.layout.updatemenus[0].buttons
    assert [button.label for button in buttons] == ["▶ play", "❚❚ pause"]
    assert buttons[0].method == "animate"
    assert buttons[0].args[0] is None
    assert [step.label for step in fig.layout.sliders[0].steps] == ["initial", "layer 1", "layer 2"]
    assert list(fig.layout.sliders[0].steps[2].args[0]) == ["layer 2"]


def test_states_animation_importance_per_layer(by_layer):
    importance = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=np.float32)
    active = np.array([[True, True], [True, False], [False, False]])
    fig = states_animation(by_layer, importance_by_layer=importance, active_by_layer=active)
    bars = [next(trace for trace in frame.data if trace.name == "importance") for frame in fig.frames]
    np.testing.assert_allclose([bar.x for bar in bars], importance)
    assert list(bars[1].marker.pattern.shape) == ["", "/"]


def test_states_animation_non_finite_layer_keeps_trace_count(by_layer):
    by_layer[2, 1, 1] = -np.inf
    fig = states_animation(by_layer)
    assert {len(frame.data) for frame in fig.frames} == {len(fig.data)}
    marks = [next(trace for trace in frame.data if trace.name == "−Inf") for frame in fig.frames]
    assert [len(mark.x) for mark in marks] == [0, 0, 1]


def test_states_animation_rejects_bad_shapes(by_layer):
    with pytest.raises(ValueError, match=r"3 dimensions \[L, S, D\]"):
        states_animation(by_layer[0])
    with pytest.raises(ValueError, match=r"importance_by_layer must have shape \(3, 2\)"):
        states_animation(by_layer, importance_by_layer=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="layer_labels has 1 entries for 3 frames"):
        states_animation(by_layer, layer_labels=["x"])


def test_states_animation_single_layer():
    fig = states_animation(np.ones((1, 1, 1), dtype=np.float32))
    assert [frame.name for frame in fig.frames] == ["initial"]


def test_states_animation_all_nan_says_no_data():
    assert _message(states_animation(np.full((2, 2, 2), np.nan, dtype=np.float32))).startswith("no data")


def test_states_animation_shares_cells_between_frames():
    values = np.zeros((4, 2, 10), dtype=np.float32)
    fig = states_animation(values, max_cells=40)
    # 40 cells over 4 frames leaves 10 per frame: 2 states × 5 blocks of 2 dims.
    assert np.asarray(fig.frames[0].data[1].z).shape == (2, 5)
    assert "each of the 4 frames gets 10 cells" in fig.layout.title.subtitle.text
