"""Gate small multiples: one panel per gate channel, fixed [0, 1] scale, saturated cells marked."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures.gates import gate_small_multiples


def _traces(fig, name):
    return [trace for trace in fig.data if trace.name == name]


@pytest.fixture
def gates() -> np.ndarray:
    # [L=2, S=3, G=2]
    return np.array(
        [
            [[0.5, 0.01], [0.97, 0.5], [0.3, 0.7]],
            [[0.02, 0.5], [0.5, 0.99], [0.4, 0.6]],
        ],
        dtype=np.float32,
    )


def test_gate_panels_one_per_channel(gates):
    fig = gate_small_multiples(gates, ["update", "reset"])
    panels = [trace for trace in fig.data if trace.type == "heatmap"]
    assert [panel.name for panel in panels] == ["update gate", "reset gate"]
    # Panel g shows gates[:, :, g] with states as rows and layers as columns.
    np.testing.assert_array_equal(panels[0].z, gates[:, :, 0].T)
    np.testing.assert_array_equal(panels[1].z, gates[:, :, 1].T)
    assert list(panels[0].x) == ["layer 1", "layer 2"]
    assert list(panels[0].y) == ["state 0", "state 1", "state 2"]
    assert [annotation.text for annotation in fig.layout.annotations] == ["update gate", "reset gate"]


def test_gate_panels_fixed_unit_scale_one_colour_bar(gates):
    panels = [trace for trace in gate_small_multiples(gates, ["update", "reset"]).data if trace.type == "heatmap"]
    assert all((panel.zmin, panel.zmax) == (0.0, 1.0) for panel in panels)
    assert [panel.showscale for panel in panels] == [True, False]
    assert panels[0].colorbar.title.text == "gate activation (0–1)"


def test_gate_saturated_cells_marked(gates):
    fig = gate_small_multiples(gates, ["update", "reset"], saturation=0.05)
    near_zero = _traces(fig, "saturated near 0")
    near_one = _traces(fig, "saturated near 1")
    # update: 0.02 at (state 0, layer 2) is near 0 and 0.97 at (state 1, layer 1) near 1;
    # reset: 0.01 at (state 0, layer 1) near 0 and 0.99 at (state 1, layer 2) near 1.
    assert [(list(t.x), list(t.y)) for t in near_zero] == [(["layer 2"], ["state 0"]), (["layer 1"], ["state 0"])]
    assert [(list(t.x), list(t.y)) for t in near_one] == [(["layer 1"], ["state 1"]), (["layer 2"], ["state 1"])]
    np.testing.assert_allclose(near_one[0].customdata, [0.97])
    assert "(saturated near 1)" in near_one[0].hovertemplate
    assert [t.showlegend for t in near_zero] == [True, False]  # one legend entry per kind
    assert "saturated: below 0.05 or above 0.95" in fig.layout.title.subtitle.text


def test_gate_saturation_zero_marks_nothing(gates):
    fig = gate_small_multiples(gates, ["update", "reset"], saturation=0.0)
    assert not _traces(fig, "saturated near 0")
    assert not _traces(fig, "saturated near 1")


def test_gate_names_escaped():
    fig = gate_small_multiples(np.full((1, 1, 1), 0.5, dtype=np.float32), ["<in>"])
    assert fig.layout.annotations[0].text == "&lt;in&gt; gate"


def test_gate_nan_marked_not_saturated(gates):
    gates[0, 2, 1] = np.nan
    fig = gate_small_multiples(gates, ["update", "reset"])
    (nan_mark,) = _traces(fig, "NaN")
    assert list(nan_mark.x) == ["layer 1"]
    assert list(nan_mark.y) == ["state 2"]


def test_gate_rejects_name_count_mismatch(gates):
    with pytest.raises(ValueError, match="gate_names is 1 names but gates has G = 2 channels"):
        gate_small_multiples(gates, ["update"])


@pytest.mark.parametrize("saturation", [-0.1, 0.5, True, "0.1"])
def test_gate_rejects_invalid_saturation(gates, saturation):
    with pytest.raises(ValueError, match="saturation="):
        gate_small_multiples(gates, ["update", "reset"], saturation=saturation)


def test_gate_empty_and_all_nan_say_why():
    empty = gate_small_multiples(np.zeros((0, 3, 2), dtype=np.float32), ["a", "b"])
    assert "L = 0" in empty.layout.annotations[0].text
    nan = gate_small_multiples(np.full((1, 2, 1), np.nan, dtype=np.float32), ["a"])
    assert nan.layout.annotations[0].text.startswith("no data")


def test_gate_single_layer_state_channel():
    fig = gate_small_multiples(np.array([[[0.999]]], dtype=np.float32), ["update"])
    assert len(_traces(fig, "saturated near 1")) == 1


def test_gate_reduces_states_keeping_layers():
    gates = np.random.default_rng(0).uniform(size=(3, 40, 2)).astype(np.float32)
    fig = gate_small_multiples(gates, ["update", "reset"], max_cells=60)
    panel = next(trace for trace in fig.data if trace.type == "heatmap")
    # 30 cells per panel: 3 layers leave 10 rows, so blocks of 4 states.
    assert np.asarray(panel.z).shape == (10, 3)
    np.testing.assert_allclose(panel.z[0], gates[:, :4, 0].mean(axis=1), rtol=1e-6)
    assert "mean over blocks of 4 states × 1 layer" in fig.layout.title.subtitle.text
