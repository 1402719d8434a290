"""Dashboard task panel (AppTest): a task recording's input and prediction beside the routing."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import sources, state
from app.task_input import answer_at_step, describe_correct
from nsm_core.recording import RecordingWriter

ENTRY = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
TIMEOUT_S = 120  # the first run imports torch and plotly
CLASS_NAMES = ["0", "1", "2"]
# Step p of the training recording predicts class p; the label is class 2 throughout.
CHECKPOINT_PROBABILITIES = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]


def write_digit_recording(path: Path, **extra_overrides) -> None:
    """Write a 2-step training recording of a 2-row digit image, one token per row."""
    dims = {"P": 2, "L": 1, "S": 2, "D": 2, "T": 2, "H": 1, "G": 0, "C": 0}
    checkpoints = [
        {"step": p, "label": 2, "prediction": p, "correct": False, "probabilities": probabilities}
        for p, probabilities in enumerate(CHECKPOINT_PROBABILITIES)
    ]
    extra = {
        "task": "digits", "target_kind": "sequence", "class_names": CLASS_NAMES, "kind": "training",
        "input": {"kind": "digit_image", "image": [[0, 16], [8, 0]], "max_pixel": 16, "label": 2,
                  "token_regions": [[0, 1, 0, 2], [1, 2, 0, 2]]},
        **{key: checkpoints[-1][key] for key in ("label", "prediction", "correct", "probabilities")},
        "checkpoints": checkpoints,
        **extra_overrides,
    }
    manifest = {
        "token_labels": [["row 0", "row 1"]] * 2, "step_labels": ["epoch 0", "epoch 1"], "gate_names": [],
        "model": {}, "versions": {}, "created": "", "extra": extra,
    }
    with RecordingWriter(path, dims, ["initial_states", "states", "routing", "token_mask"], manifest) as writer:
        for step in range(2):
            writer.write_step(step, {
                "initial_states": np.eye(2, dtype=np.float32),
                "states": np.eye(2, dtype=np.float32)[None],
                "routing": np.full((1, 1, 2, 2), 0.5, dtype=np.float32),
                "token_mask": np.ones(2, dtype=np.uint8),
            })


@pytest.fixture
def app(monkeypatch, tmp_path) -> AppTest:
    write_digit_recording(tmp_path / "digit.nsm")
    monkeypatch.setattr(sys, "argv", [str(ENTRY), sources.RECORDINGS_DIR_FLAG, str(tmp_path)])
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    return app.switch_page("views/routing.py").run()


def decode(value) -> np.ndarray:
    """Return a Plotly JSON array, plain or base64-typed ({"dtype", "bdata", "shape"}), as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return array.reshape([int(size) for size in str(value.get("shape", len(array))).split(",")])
    return np.array(value, dtype=float)


def figure(app: AppTest, key: str) -> dict:
    charts = [element for element in app.get("plotly_chart") if element.key == key]
    assert charts, f"no chart with key {key!r}"
    return json.loads(charts[0].proto.spec)


def test_task_input_outlines_chosen_token(app):
    app.slider(key=state.TOKEN).set_value(1).run()
    assert not app.exception

    outline = figure(app, "task_input")["layout"]["shapes"][0]

    assert (outline["y0"], outline["y1"]) == (0.5, 1.5)  # row 1 of the image is token 1


def test_task_prediction_follows_step(app):
    for step, probabilities in enumerate(CHECKPOINT_PROBABILITIES):
        app.slider(key=state.STEP).set_value(step).run()
        assert not app.exception

        bars = figure(app, "task_prediction")["data"][0]

        np.testing.assert_allclose(decode(bars["y"]), probabilities)
        assert f"Prediction at step {step}" in figure(app, "task_prediction")["layout"]["title"]["text"]


def test_task_input_shown_at_layer_zero(app):
    app.slider(key=state.LAYER).set_value(0).run()

    assert not app.exception
    assert "task_input" in {element.key for element in app.get("plotly_chart")}


def test_answer_at_step_prefers_checkpoint():
    extra = {"label": 1, "checkpoints": [{"label": 2}, {"label": 3}]}

    assert answer_at_step(extra, 1) == {"label": 3}
    assert answer_at_step(extra, 5) is extra
    assert answer_at_step({"label": 1}, 0) == {"label": 1}


@pytest.mark.parametrize(
    ("correct", "text"),
    [
        (True, "answer correct"),
        (False, "answer wrong"),
        ([True, False, True], "2 of 3 answers correct"),
        ([], ""),
        (None, ""),
        ("yes", ""),
    ],
)
def test_describe_correct(correct, text):
    assert describe_correct(correct) == text


@pytest.mark.parametrize(
    "overrides",
    [{"correct": [], "checkpoints": []}, {"label": 10**30, "checkpoints": []}, {"class_names": 5, "checkpoints": []},
     {"checkpoints": [{"correct": {}}]}],
    ids=["correct-empty-list", "label-huge", "class-names-int", "checkpoint-correct-dict"],
)
def test_malformed_task_fields_warn(monkeypatch, tmp_path, overrides):
    write_digit_recording(tmp_path / "edited.nsm", **overrides)
    monkeypatch.setattr(sys, "argv", [str(ENTRY), sources.RECORDINGS_DIR_FLAG, str(tmp_path)])
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    app = app.switch_page("views/routing.py").run()

    assert not app.exception, [element.value for element in app.exception]
    warnings = " ".join(element.value for element in app.warning)
    if warnings:  # a value the panel cannot use is reported, and the routing still draws
        assert "manifest field 'extra'" in warnings
    assert app.get("plotly_chart")
