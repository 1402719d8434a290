"""Dashboard playback (AppTest): each slider changes the frame shown, to the recording's values."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import sources, state
from nsm_core.recording import Recording, RecordingWriter

ENTRY = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
TIMEOUT_S = 120  # the first run imports torch and plotly
# 2 steps of 11 tokens ("the cat sat" and " on the mat"), 2 layers, 4 heads: every playback
# slider has a range to move over.
PLAYBACK_RECORDING = "untrained.nsm"


@pytest.fixture
def app(monkeypatch) -> AppTest:
    """The dashboard as `streamlit run app/streamlit_app.py` starts it, run once."""
    monkeypatch.setattr(sys, "argv", [str(ENTRY)])
    monkeypatch.delenv(sources.RECORDINGS_DIR_ENV, raising=False)
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()
    return app.selectbox(key=state.BUNDLED_NAME).set_value(PLAYBACK_RECORDING).run()


@pytest.fixture
def recording() -> Recording:
    return Recording.open(sources.BUNDLED_DIR / PLAYBACK_RECORDING)


def decode(value) -> np.ndarray:
    """Return a Plotly JSON array, plain or base64-typed ({"dtype", "bdata", "shape"}), as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(size) for size in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return np.array(value, dtype=float)


def chart(app: AppTest, key: str) -> dict:
    """Return the Plotly figure of the chart drawn with `key`, as a dict."""
    charts = [element for element in app.get("plotly_chart") if element.key == key]
    assert charts, f"no chart with key {key!r}; keys drawn: {[element.key for element in app.get('plotly_chart')]}"
    return json.loads(charts[0].proto.spec)


def heatmap_z(figure_or_frame: dict) -> np.ndarray:
    """Return the values of the first heatmap trace with a finite value.

    Heatmaps may carry a layer for NaN/±Inf cells, which is all NaN when every value is finite.
    """
    traces = figure_or_frame["data"]
    for trace in traces:
        if trace.get("type") == "heatmap":
            values = decode(trace["z"])
            if np.isfinite(values).any():
                return values
    raise AssertionError(f"no heatmap with finite values among {[trace.get('type') for trace in traces]}")


def assert_no_failure(app: AppTest) -> None:
    assert not app.exception, [element.value for element in app.exception]
    assert not app.error, [element.value for element in app.error]


def test_default_frame_is_step0_layer1(app, recording):
    assert_no_failure(app)

    shown = heatmap_z(chart(app, "states_heatmap"))

    assert np.array_equal(shown, recording.frame(0, 1).states)


def test_layer_slider_changes_states(app, recording):
    for layer in (2, 0, 1):
        app.slider(key=state.LAYER).set_value(layer).run()
        assert_no_failure(app)

        shown = heatmap_z(chart(app, "states_heatmap"))

        assert np.array_equal(shown, recording.frame(0, layer).states), f"layer {layer}"


def test_step_slider_changes_states(app, recording):
    app.slider(key=state.STEP).set_value(1).run()
    assert_no_failure(app)

    shown = heatmap_z(chart(app, "states_heatmap"))

    assert np.array_equal(shown, recording.frame(1, 1).states)
    assert not np.array_equal(shown, recording.frame(0, 1).states)


def test_difference_toggle_shows_change(app, recording):
    app.slider(key=state.LAYER).set_value(2).run()
    app.toggle(key=state.STATE_DIFF).set_value(True).run()
    assert_no_failure(app)

    shown = heatmap_z(chart(app, "states_heatmap"))

    expected = recording.frame(0, 2).states - recording.frame(0, 1).states
    np.testing.assert_allclose(shown, expected, rtol=0, atol=1e-6)  # float32 subtraction


def test_colour_scale_fixed_then_per_frame(app, recording):
    every_state = np.concatenate([recording.array("initial_states").ravel(), recording.array("states").ravel()])
    fixed = chart(app, "states_heatmap")["data"][0]

    app.radio(key=state.COLOUR_SCALE).set_value(state.SCALE_FRAME).run()
    per_frame = chart(app, "states_heatmap")["data"][0]

    frame = recording.frame(0, 1).states
    assert max(abs(fixed["zmin"]), abs(fixed["zmax"])) >= float(np.abs(every_state).max()) - 1e-6
    assert max(abs(per_frame["zmin"]), abs(per_frame["zmax"])) == pytest.approx(float(np.abs(frame).max()))
    assert per_frame["zmax"] != fixed["zmax"]


def test_head_slider_selects_head(app, recording):
    app.switch_page("views/routing.py").run()
    mean = heatmap_z(chart(app, "routing_heatmap"))
    np.testing.assert_allclose(mean, recording.frame(0, 1).routing.mean(axis=0), rtol=1e-6)

    app.select_slider(key=state.HEAD).set_value(2).run()
    assert_no_failure(app)

    shown = heatmap_z(chart(app, "routing_heatmap"))

    assert np.array_equal(shown, recording.frame(0, 1).routing[2])


def test_token_slider_selects_token(app, recording):
    app.switch_page("views/routing.py").run()
    app.slider(key=state.TOKEN).set_value(4).run()
    assert_no_failure(app)

    figure = chart(app, "routing_token")

    expected = recording.frame(0, 1).routing.mean(axis=0)[4]
    np.testing.assert_allclose(heatmap_z(figure).ravel(), expected, rtol=1e-6)
    assert "'c'" in figure["layout"]["title"]["text"]


def test_threshold_slider_hides_weak_edges(app, recording):
    app.switch_page("views/routing.py").run()
    edges_before = len(chart(app, "routing_graph")["data"])

    app.slider(key=state.THRESHOLD).set_value(0.15).run()
    assert_no_failure(app)

    edges_after = len(chart(app, "routing_graph")["data"])
    assert edges_after < edges_before


def test_layer_zero_has_no_routing(app):
    app.switch_page("views/routing.py").run()
    app.slider(key=state.LAYER).set_value(0).run()

    assert_no_failure(app)
    assert "routing starts at layer 1" in app.info[0].value


def test_slider_clamped_when_recording_shrinks(app):
    app.slider(key=state.LAYER).set_value(2).run()
    app.slider(key=state.STEP).set_value(1).run()

    app.selectbox(key=state.BUNDLED_NAME).set_value("tutorial.nsm").run()

    assert_no_failure(app)
    assert app.slider(key=state.LAYER).value == 2
    assert state.STEP not in [slider.key for slider in app.slider]


def test_animation_has_layer_frames(app, recording):
    frames = chart(app, "states_animation")["frames"]

    assert [frame["name"] for frame in frames] == ["initial", "layer 1", "layer 2"]
    # Animation frames carry values rounded to 7 significant digits.
    np.testing.assert_allclose(heatmap_z(frames[2]), recording.frame(0, 2).states, rtol=1e-6)


def test_animation_through_every_step(app, recording):
    app.toggle(key=state.ANIMATE_STEPS).set_value(True).run()
    assert_no_failure(app)

    frames = chart(app, "states_animation")["frames"]

    assert len(frames) == recording.num_steps * (recording.num_layers + 1)
    assert frames[4]["name"] == "step 1 · layer 1"
    np.testing.assert_allclose(heatmap_z(frames[4]), recording.frame(1, 1).states, rtol=1e-6)


def test_playback_never_reruns_live_model(app, monkeypatch):
    runs = []
    record_nsm = sources.record_nsm
    monkeypatch.setattr(sources, "record_nsm", lambda *args, **kwargs: runs.append(1) or record_nsm(*args, **kwargs))
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()
    runs_before = len(runs)
    app.number_input(key="live_seed").set_value(918_273).run()  # a seed no other test records
    assert len(runs) == runs_before + 1

    for layer in (0, 2, 1):
        app.slider(key=state.LAYER).set_value(layer).run()
    app.slider(key=state.STEP).set_value(1).run()
    app.radio(key=state.COLOUR_SCALE).set_value(state.SCALE_FRAME).run()

    assert_no_failure(app)
    assert len(runs) == runs_before + 1


def test_trajectory_dimension_choice(app, recording):
    app.switch_page("views/trajectories.py").run()

    app.selectbox(key=state.TRAJECTORY_DIM).set_value(3).run()
    assert_no_failure(app)

    lines = [trace for trace in chart(app, "trajectory_layers")["data"] if trace.get("type") == "scatter"]
    expected = recording.states_through_layers(0)[:, :, 3]  # [L+1, S]
    for state_index in range(recording.num_states):
        np.testing.assert_allclose(decode(lines[state_index]["y"]), expected[:, state_index], rtol=1e-6)


def test_trajectory_over_steps_follows_layer(app, recording):
    app.switch_page("views/trajectories.py").run()

    app.slider(key=state.LAYER).set_value(2).run()
    assert_no_failure(app)

    lines = [trace for trace in chart(app, "trajectory_steps")["data"] if trace.get("type") == "scatter"]
    expected = np.linalg.norm(recording.array("states")[:, 1], axis=-1)  # [P, S] at layer 2
    for state_index in range(recording.num_states):
        np.testing.assert_allclose(decode(lines[state_index]["y"]), expected[:, state_index], rtol=1e-6)


def test_projection_switches_to_3d(app):
    app.switch_page("views/trajectories.py").run()

    app.segmented_control(key=state.PROJECTION).set_value("3D").run()
    assert_no_failure(app)

    types = {trace.get("type") for trace in chart(app, "projection")["data"]}
    assert types == {"scatter3d"}


def test_gates_follow_step(app, recording):
    app.switch_page("views/gates.py").run()

    app.slider(key=state.STEP).set_value(1).run()
    assert_no_failure(app)

    traces = chart(app, "gates")["data"]
    for channel, name in enumerate(recording.gate_names):
        panel = next(trace for trace in traces if trace.get("name") == f"{name} gate")
        expected = recording.array("gates")[1, :, :, channel].T  # [S, L]: states are rows
        assert np.array_equal(decode(panel["z"]), expected), name


def test_gate_saturation_margin_marks_cells(monkeypatch, tmp_path):
    gates = np.full((1, 2, 3, 2), 0.5, dtype=np.float32)  # [P, L, S, G]
    gates[0, 0, 0, 0], gates[0, 1, 2, 1] = 0.01, 0.97  # one nearly closed and one nearly open gate
    write_gates_recording(tmp_path / "gates.nsm", gates)
    monkeypatch.setattr(sys, "argv", [str(ENTRY), sources.RECORDINGS_DIR_FLAG, str(tmp_path)])
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    app.switch_page("views/gates.py").run()

    def marked_cells() -> int:
        marks = [trace for trace in chart(app, "gates")["data"] if trace.get("type") == "scatter"]
        return sum(len(decode(trace["x"]) if isinstance(trace["x"], dict) else trace["x"]) for trace in marks)

    counts = {}
    for margin in (0.0, 0.02, 0.05):
        app.slider(key=state.SATURATION).set_value(margin).run()
        assert_no_failure(app)
        counts[margin] = marked_cells()

    assert counts == {0.0: 0, 0.02: 1, 0.05: 2}


def write_gates_recording(path: Path, gates: np.ndarray) -> None:
    """Write a recording with states and the given gates [P, L, S, G] only."""
    num_steps, num_layers, num_states, num_gates = gates.shape
    dims = {"P": num_steps, "L": num_layers, "S": num_states, "D": 2, "T": 0, "H": 0, "G": num_gates, "C": 0}
    manifest = {
        "token_labels": [[] for _ in range(num_steps)], "step_labels": [f"step {p}" for p in range(num_steps)],
        "gate_names": ["update", "reset"][:num_gates], "model": {}, "versions": {}, "created": "", "extra": {},
    }
    with RecordingWriter(path, dims, ["initial_states", "states", "gates"], manifest) as writer:
        for step in range(num_steps):
            writer.write_step(step, {
                "initial_states": np.zeros((num_states, 2), dtype=np.float32),
                "states": np.ones((num_layers, num_states, 2), dtype=np.float32),
                "gates": gates[step],
            })


def test_timeline_outlines_chosen_frame(app):
    app.slider(key=state.STEP).set_value(1).run()
    app.slider(key=state.LAYER).set_value(2).run()
    assert_no_failure(app)

    outlines = chart(app, "timeline")["layout"]["shapes"]

    assert len(outlines) == 1
    assert (outlines[0]["x0"], outlines[0]["x1"], outlines[0]["y0"], outlines[0]["y1"]) == (0.5, 1.5, 1.5, 2.5)


def test_timeline_counts_flags(monkeypatch, tmp_path):
    # Two identical states are near duplicates in every frame: 2 flagged states per (step, layer).
    gates = np.full((2, 2, 2, 2), 0.5, dtype=np.float32)  # [P, L, S, G]
    write_gates_recording(tmp_path / "twins.nsm", gates)
    monkeypatch.setattr(sys, "argv", [str(ENTRY), sources.RECORDINGS_DIR_FLAG, str(tmp_path)])
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    app.switch_page("views/summary.py").run()
    assert_no_failure(app)

    counts = heatmap_z(chart(app, "timeline"))  # [L+1, P]
    assert counts.shape == (3, 2)
    # The initial states are all zero, so they have no direction and are never duplicates.
    assert counts[0].tolist() == [0, 0]
    assert counts[1:].ravel().tolist() == [2, 2, 2, 2]
    assert app.metric[3].value == "8"
