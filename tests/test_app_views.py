"""Dashboard views and sources (AppTest): every view renders, every source loads, bad input reads well."""

from __future__ import annotations

import re

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
DEFAULT_PATH = sources.BUNDLED_DIR / sources.DEFAULT_RECORDING
# 2 steps of 11 tokens, 2 layers, 4 heads, so that every view draws all of its charts.
UNTRAINED = "untrained.nsm"
UNTRAINED_PATH = sources.BUNDLED_DIR / UNTRAINED
TUTORIAL_PATH = sources.BUNDLED_DIR / "tutorial.nsm"

# Page file -> chart keys it draws on the bundled default recording.
VIEW_CHARTS = {
    "views/states.py": {"states_heatmap", "states_animation"},
    "views/trajectories.py": {"trajectory_layers", "trajectory_steps", "projection"},
    "views/routing.py": {"routing_heatmap", "routing_graph", "routing_token", "attention_heatmap", "attention_graph"},
    "views/gates.py": {"gates"},
    "views/summary.py": {"entropy", "load", "drift", "timeline"},
}


def start(monkeypatch, *app_args: str) -> AppTest:
    """Run the dashboard once as `streamlit run app/streamlit_app.py -- APP_ARGS` would."""
    monkeypatch.setattr(sys, "argv", [str(ENTRY), *app_args])
    monkeypatch.delenv(sources.RECORDINGS_DIR_ENV, raising=False)
    return AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()


def decode(value) -> np.ndarray:
    """Return a Plotly JSON array, plain or base64-typed ({"dtype", "bdata", "shape"}), as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(size) for size in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return np.array(value, dtype=float)


def chart_keys(app: AppTest) -> set[str]:
    return {element.key for element in app.get("plotly_chart")}


def states_shown(app: AppTest) -> np.ndarray:
    charts = [element for element in app.get("plotly_chart") if element.key == "states_heatmap"]
    assert charts, f"no states heatmap; charts drawn: {chart_keys(app)}"
    figure = json.loads(charts[0].proto.spec)
    # The first heatmap with a finite value; a layer for NaN/±Inf cells is all NaN here.
    heatmaps = [decode(trace["z"]) for trace in figure["data"] if trace.get("type") == "heatmap"]
    return next(values for values in heatmaps if np.isfinite(values).any())


def sidebar_caption(app: AppTest) -> str:
    """Return the sidebar captions as shown, with Markdown escapes such as "\\." removed."""
    return re.sub(r"\\(.)", r"\1", " ".join(caption.value for caption in app.sidebar.caption))


def assert_no_failure(app: AppTest) -> None:
    assert not app.exception, [element.value for element in app.exception]
    assert not app.error, [element.value for element in app.error]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "tutorial.nsm").write_bytes(TUTORIAL_PATH.read_bytes())
    (root / "a-untrained.nsm").write_bytes(UNTRAINED_PATH.read_bytes())
    return root


def test_opens_on_bundled_default(monkeypatch):
    app = start(monkeypatch)

    assert_no_failure(app)
    assert app.title[0].value == "States"
    assert sources.DEFAULT_RECORDING in sidebar_caption(app)
    assert np.array_equal(states_shown(app), Recording.open(DEFAULT_PATH).frame(0, 1).states)


@pytest.mark.parametrize("page", sorted(VIEW_CHARTS))
def test_view_renders_its_charts(monkeypatch, page):
    app = start(monkeypatch)
    app.selectbox(key=state.BUNDLED_NAME).set_value(UNTRAINED).run()

    app.switch_page(page).run()

    assert_no_failure(app)
    assert VIEW_CHARTS[page] <= chart_keys(app), f"{page} lacks {VIEW_CHARTS[page] - chart_keys(app)}"


@pytest.mark.parametrize("name", sorted(sources.BUNDLED_RECORDINGS))
def test_bundled_recording_renders_every_view(monkeypatch, name):
    app = start(monkeypatch)
    app.selectbox(key=state.BUNDLED_NAME).set_value(name).run()

    for page in sorted(VIEW_CHARTS):
        app.switch_page(page).run()

        assert_no_failure(app)
        assert app.title[0].value, page


def test_teaching_example_one_click(monkeypatch):
    app = start(monkeypatch)
    app.switch_page("views/trajectories.py").run()

    app.button[0].click().run()

    assert_no_failure(app)
    assert "tutorial.nsm" in sidebar_caption(app)
    assert app.selectbox(key=state.TRAJECTORY_DIM).value == 0
    figure = json.loads(next(e for e in app.get("plotly_chart") if e.key == "trajectory_layers").proto.spec)
    expected = Recording.open(TUTORIAL_PATH).states_through_layers(0)[:, :, 0]  # [L+1, S]
    lines = [trace for trace in figure["data"] if trace.get("type") == "scatter" and trace.get("y") is not None]
    assert len(lines) >= expected.shape[1]
    for state_index in range(expected.shape[1]):
        np.testing.assert_allclose(decode(lines[state_index]["y"]), expected[:, state_index], rtol=1e-6)


def test_summary_offers_csv(monkeypatch):
    app = start(monkeypatch)

    app.switch_page("views/summary.py").run()

    assert_no_failure(app)
    assert app.get("download_button"), "no CSV download button"
    assert app.dataframe, "no summary table"


def test_upload_opens_recording(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()

    app.file_uploader(key=state.UPLOAD).upload("mine.nsm", TUTORIAL_PATH.read_bytes()).run()

    assert_no_failure(app)
    assert "mine.nsm" in sidebar_caption(app)
    assert np.array_equal(states_shown(app), Recording.open(TUTORIAL_PATH).frame(0, 1).states)


def test_upload_survives_rerun(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()
    app.file_uploader(key=state.UPLOAD).upload("mine.nsm", TUTORIAL_PATH.read_bytes()).run()

    app.slider(key=state.LAYER).set_value(3).run()

    assert_no_failure(app)
    assert np.array_equal(states_shown(app), Recording.open(TUTORIAL_PATH).frame(0, 3).states)


def test_upload_damaged_shows_error_then_recovers(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()
    data = UNTRAINED_PATH.read_bytes()

    app.file_uploader(key=state.UPLOAD).upload("cut.nsm", data[: len(data) // 3]).run()

    assert not app.exception
    assert "cut.nsm is cut off" in app.sidebar.error[0].value
    assert "could not be opened. cut.nsm is cut off" in app.main.error[0].value
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_BUNDLED).run()
    assert_no_failure(app)
    assert sources.DEFAULT_RECORDING in sidebar_caption(app)


def test_upload_over_limit_names_limit(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()
    monkeypatch.setattr(sources, "upload_limit_mb", lambda: 1)

    app.file_uploader(key=state.UPLOAD).upload("big.nsm", b"\0" * (sources.BYTES_PER_MB + 1)).run()

    assert not app.exception
    assert "over the upload limit of 1 MB" in app.error[0].value


def test_folder_lists_and_opens(monkeypatch, folder):
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(folder))
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert_no_failure(app)
    assert app.selectbox(key=state.FOLDER_NAME).options == ["a-untrained.nsm", "runs/tutorial.nsm"]

    app.selectbox(key=state.FOLDER_NAME).set_value("runs/tutorial.nsm").run()

    assert_no_failure(app)
    assert np.array_equal(states_shown(app), Recording.open(TUTORIAL_PATH).frame(0, 1).states)


def test_folder_from_environment(monkeypatch, folder):
    monkeypatch.setattr(sys, "argv", [str(ENTRY)])
    monkeypatch.setenv(sources.RECORDINGS_DIR_ENV, str(folder))
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert_no_failure(app)
    assert "a-untrained.nsm" in app.selectbox(key=state.FOLDER_NAME).options


def test_folder_unset_explains_option(monkeypatch):
    app = start(monkeypatch)

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert_no_failure(app)
    assert sources.RECORDINGS_DIR_FLAG in app.sidebar.info[0].value


def test_folder_missing_shows_error(monkeypatch, tmp_path):
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(tmp_path / "nowhere"))

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert not app.exception
    assert "does not exist" in app.error[0].value


def test_folder_damaged_file_shows_error(monkeypatch, folder):
    (folder / "0-bad.nsm").write_bytes(b"not a recording at all")
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(folder))

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert not app.exception
    assert "0-bad.nsm is not a recording" in app.error[0].value
    app.selectbox(key=state.FOLDER_NAME).set_value("a-untrained.nsm").run()
    assert_no_failure(app)


def test_unknown_app_argument_warns(monkeypatch):
    app = start(monkeypatch, "--colour", "red")

    assert not app.exception
    assert "--colour" in app.warning[0].value


def test_live_records_and_downloads(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()
    assert_no_failure(app)

    app.slider(key="live_states").set_value(5).run()
    app.text_area(key="live_text").input("hello world").run()

    assert_no_failure(app)
    assert "5 states" in sidebar_caption(app)
    download = app.get("download_button")
    assert download, "no download button for the live recording"
    assert states_shown(app).shape == (5, sources.LiveSettings().state_dim)


def test_live_invalid_config_shows_error(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()

    app.select_slider(key="live_state_dim").set_value(4).run()
    app.select_slider(key="live_heads").set_value(8).run()

    assert not app.exception
    assert "state_dim=4 is not divisible by num_heads=8" in app.error[0].value


def test_live_too_many_steps_shows_error(monkeypatch):
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()

    app.text_area(key="live_text").input("ab").run()
    app.slider(key="live_steps").set_value(3).run()

    assert not app.exception
    assert "steps=3 is more than the 2 tokens" in app.error[0].value


def write_odd_recording(path: Path) -> None:
    """Write a 1-state, 1-head, 1-layer recording with NaN and ±Inf values and markup in its labels."""
    dims = {"P": 1, "L": 1, "S": 1, "D": 3, "T": 2, "H": 1, "G": 2, "C": 0}
    fields = ["initial_states", "states", "routing", "state_attention", "gates", "importance", "active", "token_mask"]
    manifest = {
        "token_labels": [["<s>", "a&b"]], "step_labels": ["step 0"], "gate_names": ["update", "reset"],
        "model": {}, "versions": {}, "created": "", "extra": {},
    }
    with RecordingWriter(path, dims, fields, manifest) as writer:
        writer.write_step(0, {
            "initial_states": np.array([[0.0, 1.0, np.nan]], dtype=np.float32),
            "states": np.array([[[np.inf, -np.inf, 2.0]]], dtype=np.float32),
            "routing": np.ones((1, 1, 2, 1), dtype=np.float32),
            "state_attention": np.ones((1, 1, 1, 1), dtype=np.float32),
            "gates": np.array([[[0.0, 1.0]]], dtype=np.float32),
            "importance": np.array([[0.5]], dtype=np.float32),
            "active": np.array([[1]], dtype=np.uint8),
            "token_mask": np.array([1, 1], dtype=np.uint8),
        })


@pytest.mark.parametrize("page", sorted(VIEW_CHARTS))
def test_view_renders_odd_recording(monkeypatch, tmp_path, page):
    write_odd_recording(tmp_path / "odd.nsm")
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(tmp_path))
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    for layer in (0, 1):
        app.slider(key=state.LAYER).set_value(layer).run()
        app.switch_page(page).run()

        assert_no_failure(app)
        assert app.title[0].value
