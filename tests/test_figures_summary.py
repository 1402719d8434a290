"""Summary figures: entropy per token, load per state, drift per layer and the flag timeline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.figures.style import state_color
from app.figures.summary import drift_figure, entropy_figure, load_figure, timeline_figure
from nsm_core.analysis import SUMMARY_COLUMNS


def _trace(fig, name):
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, found {[t.name for t in fig.data]}"
    return matches[0]


def _message(fig) -> str:
    return fig.layout.annotations[0].text


def test_entropy_bars_and_uniform_line():
    entropy = np.array([0.0, math.log(2), 1.0], dtype=np.float32)
    fig = entropy_figure(entropy, ["<s>", "a", "b"], num_states=4)
    bars = _trace(fig, "entropy")
    np.testing.assert_allclose(bars.y, entropy)
    assert list(bars.x) == ["token 0: &lt;s&gt;", "token 1: a", "token 2: b"]
    assert bars.hovertemplate == "%{x}<br>entropy: %{customdata:.7~g} nats<extra></extra>"
    line = fig.layout.shapes[0]
    assert line.y0 == pytest.approx(math.log(4))  # uniform over 4 states
    assert fig.layout.annotations[0].text == "uniform over 4 states: ln 4 = 1.39 nats"
    assert fig.layout.yaxis.title.text == "routing entropy (nats)"


def test_entropy_nan_marked():
    fig = entropy_figure(np.array([np.nan, 0.5], dtype=np.float32), ["a", "b"])
    assert _trace(fig, "entropy").y[0] == 0.0
    marks = _trace(fig, "NaN/±Inf")
    assert list(marks.x) == ["token 0: a"]
    assert marks.hovertext[0] == "token 0: a<br>entropy: NaN"


def test_entropy_empty_all_nan_and_errors():
    assert "T = 0" in _message(entropy_figure(np.zeros(0, dtype=np.float32), []))
    assert _message(entropy_figure(np.array([np.nan], dtype=np.float32), ["a"])).startswith("no data")
    with pytest.raises(ValueError, match="token_labels has 1 labels but the matrix has 2 tokens"):
        entropy_figure(np.zeros(2, dtype=np.float32), ["a"])
    with pytest.raises(ValueError, match="num_states=0"):
        entropy_figure(np.zeros(1, dtype=np.float32), ["a"], num_states=0)


def test_load_bars_coloured_with_balanced_line():
    load = np.array([2.0, 1.5, 0.0, 0.5], dtype=np.float32)
    fig = load_figure(load, num_tokens=4)
    bars = _trace(fig, "load")
    np.testing.assert_array_equal(bars.y, load)
    assert list(bars.marker.color) == [state_color(s) for s in range(4)]
    # State 2 has no load: hatched and labelled dead.
    assert list(bars.text) == ["", "", "dead", ""]
    assert list(bars.marker.pattern.shape) == ["", "", "x", ""]
    assert fig.layout.shapes[0].y0 == 1.0  # balanced: T / S = 4 / 4
    assert "1 dead state(s): load ≤ 0.001" in fig.layout.title.subtitle.text


def test_load_single_state_and_nan():
    fig = load_figure(np.array([np.nan, 1.0], dtype=np.float32))
    assert list(_trace(fig, "NaN/±Inf").x) == ["state 0"]
    assert list(_trace(fig, "load").text) == ["", ""]  # NaN is not dead
    single = load_figure(np.array([3.0], dtype=np.float32), num_tokens=3)
    assert list(_trace(single, "load").y) == [3.0]


def test_drift_lines_per_state():
    drift = np.array([[5.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # [L=2, S=2]
    fig = drift_figure(drift)
    np.testing.assert_array_equal(_trace(fig, "state 0").y, [5.0, 0.0])
    assert list(_trace(fig, "state 1").customdata) == ["layer 1", "layer 2"]
    assert fig.layout.yaxis.title.text == "L2 norm of the change (activation)"


def test_drift_without_layers_says_why():
    assert "L = 0" in _message(drift_figure(np.zeros((0, 3), dtype=np.float32)))


def _summary(rows) -> pd.DataFrame:
    """Build a summary table from (step, layer, state, flags) rows, other columns left empty."""
    table = pd.DataFrame(rows, columns=["step", "layer", "state", "flags"])
    for column in SUMMARY_COLUMNS:
        if column not in table:
            table[column] = np.nan
    return table[SUMMARY_COLUMNS]


def test_timeline_counts_flagged_states():
    table = _summary(
        [
            (0, 0, 0, ""), (0, 0, 1, "duplicate"), (0, 1, 0, "dead"), (0, 1, 1, "dead; duplicate"),
            (1, 0, 0, ""), (1, 0, 1, ""), (1, 1, 0, "collapse"), (1, 1, 1, ""),
        ]
    )
    fig = timeline_figure(table, step_labels=["first", "second"])
    main = _trace(fig, "flagged states")
    # Rows are layers, columns steps: layer 1 of step 0 has two flagged states.
    np.testing.assert_array_equal(main.z, [[1, 0], [2, 1]])
    assert main.text[1][0] == "<br>dead: 0, 1<br>duplicate: 1"
    assert list(main.x) == ["step 0: first", "step 1: second"]
    assert list(main.y) == ["layer 0", "layer 1"]
    assert (main.zmin, main.zmax) == (0.0, 2.0)


def test_timeline_single_flag():
    table = _summary([(0, 0, 0, "dead; duplicate"), (0, 0, 1, "duplicate")])
    main = _trace(timeline_figure(table, flag="dead"), "flagged states")
    np.testing.assert_array_equal(main.z, [[1]])
    assert main.text[0][0] == "<br>dead: 0"


def test_timeline_no_flags_keeps_scale():
    main = _trace(timeline_figure(_summary([(0, 0, 0, "")])), "flagged states")
    assert (main.zmin, main.zmax) == (0.0, 1.0)


def test_timeline_rejects_bad_input():
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['flags'\]"):
        timeline_figure(pd.DataFrame({"step": [0], "layer": [0], "state": [0]}))
    with pytest.raises(ValueError, match="flag='zombie' is not a known flag"):
        timeline_figure(_summary([(0, 0, 0, "")]), flag="zombie")
    with pytest.raises(ValueError, match="step_labels has 2 labels for 1 steps"):
        timeline_figure(_summary([(0, 0, 0, "")]), step_labels=["a", "b"])


def test_timeline_empty_says_why():
    assert "empty" in _message(timeline_figure(_summary([])))


def test_timeline_reduces_steps():
    rows = [(step, layer, 0, "dead" if step % 2 else "") for step in range(10) for layer in range(2)]
    fig = timeline_figure(_summary(rows), max_cells=10)
    main = _trace(fig, "flagged states")
    # 10 steps × 2 layers = 20 cells; blocks of 2 steps leave 5 × 2 = 10, each the mean 0.5.
    np.testing.assert_array_equal(main.z, np.full((2, 5), 0.5))
    assert "mean over blocks of 1 layer × 2 steps" in fig.layout.title.subtitle.text
