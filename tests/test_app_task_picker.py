"""Dashboard sample picker (AppTest): the trained digits default, another sample, typed recall."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app import state
from app.task_input import describe_correct
from app.task_picker import sample_key, typed_key

ENTRY = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
TIMEOUT_S = 180  # the first run imports torch and plotly and loads a trained model


@pytest.fixture(autouse=True)
def one_thread():
    # The model runs on one sample at a time, and on a busy machine OpenMP threads that wait
    # for each other make that many times slower than one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.setattr(sys, "argv", [str(ENTRY)])
    return AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()


def shown_extra(app: AppTest) -> dict:
    return app.session_state[state.VIEW_CONTEXT].recording.extra


def test_default_is_trained_digits_on_a_test_digit(app):
    assert not app.exception
    extra = shown_extra(app)

    assert extra["task"] == "digits"
    assert extra["split"] == "test"
    assert extra["input"]["kind"] == "digit_image"
    assert extra["prediction"] == extra["label"]
    picker = app.sidebar.number_input(key=sample_key("digits.safetensors"))
    assert picker.value == extra["sample_index"]
    assert picker.max == 359
    assert not app.sidebar.text_input  # digits take no typed input


def test_default_routing_page_shows_digit_and_prediction(app):
    app.switch_page("views/routing.py").run()

    assert not app.exception
    assert any("Task input: digits" in header.value for header in app.subheader)


def test_picking_another_digit_runs_the_model(app):
    app.sidebar.number_input(key=sample_key("digits.safetensors")).set_value(11).run()

    assert not app.exception
    extra = shown_extra(app)
    assert extra["sample_index"] == 11
    assert extra["prediction"] in range(10)
    assert any("test sample 11" in caption.value for caption in app.sidebar.caption)


def test_typed_recall_sequence_is_recorded_and_answered(app):
    app.sidebar.selectbox(key=state.BUNDLED_NAME).set_value("recall.nsm").run()
    app.sidebar.text_input(key=typed_key("recall.safetensors")).set_value("3:7 12:5 9:0 ?12 ?3 ?9").run()

    assert not app.exception
    extra = shown_extra(app)
    assert extra["input"]["kind"] == "recall_sequence"
    assert extra["label"] == [5, 7, 0]
    assert len(extra["prediction"]) == 3
    assert app.session_state[state.VIEW_CONTEXT].recording.token_labels(0)[-1] == "?9"


def test_invalid_typed_sequence_shows_error_and_keeps_sample(app):
    app.sidebar.selectbox(key=state.BUNDLED_NAME).set_value("recall.nsm").run()
    app.sidebar.text_input(key=typed_key("recall.safetensors")).set_value("3:7 ?4").run()

    assert not app.exception
    assert any("Invalid sequence: query '?4' asks for key 4" in error.value for error in app.sidebar.error)
    assert shown_extra(app)["sample_index"] == 0


def test_training_recording_has_no_picker(app):
    app.sidebar.selectbox(key=state.BUNDLED_NAME).set_value("digits_training.nsm").run()

    assert not app.exception
    assert not app.sidebar.number_input
    assert shown_extra(app)["kind"] == "training"


def test_recall_routing_page_counts_correct_answers(app):
    app.sidebar.selectbox(key=state.BUNDLED_NAME).set_value("recall.nsm").run()
    app.switch_page("views/routing.py").run()

    assert not app.exception
    assert any("Task input: recall, 8 of 8 answers correct" in header.value for header in app.subheader)


@pytest.mark.parametrize(("correct", "text"), [(True, "answer correct"), (False, "answer wrong"),
                                               ([True, False, True], "2 of 3 answers correct"),
                                               (None, ""), ([], ""), (["yes"], "")])
def test_describe_correct(correct, text):
    assert describe_correct(correct) == text
