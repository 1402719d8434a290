"""Recording other samples of the bundled task models for the dashboard."""

from __future__ import annotations

import pytest
import torch

from app.task_samples import (
    accepts_typed_input,
    bundled_checkpoint,
    record_test_sample,
    record_typed_sequence,
    sample_count,
)
from nsm_core.recording import Recording


@pytest.fixture(autouse=True)
def one_thread():
    # Evaluation batches are small, and on a busy machine OpenMP threads that wait for each
    # other make them many times slower than one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bundled_checkpoint_found_by_name():
    assert bundled_checkpoint({"checkpoint": "digits.safetensors"}) == "digits.safetensors"


@pytest.mark.parametrize("name", [None, 3, "missing.safetensors", "../assets/checkpoints/digits.safetensors",
                                  "digits.nsm"])
def test_bundled_checkpoint_rejects_other_names(name):
    assert bundled_checkpoint({"checkpoint": name}) is None


def test_other_test_digit_is_recorded_with_prediction():
    recording = Recording.from_bytes(record_test_sample("digits.safetensors", 11), "digit.nsm")

    assert recording.extra["sample_index"] == 11
    assert recording.extra["checkpoint"] == "digits.safetensors"
    assert recording.extra["prediction"] in range(10)
    assert recording.extra["input"]["kind"] == "digit_image"
    assert sample_count("digits.safetensors") == 360


def test_sample_outside_test_split_is_rejected():
    with pytest.raises(IndexError, match="sample index 360 is outside the test split"):
        record_test_sample("digits.safetensors", 360)


def test_typed_recall_sequence_is_answered():
    data = record_typed_sequence("recall.safetensors", "3:7 12:5 9:0 ?12 ?3 ?9")
    recording = Recording.from_bytes(data, "typed.nsm")

    assert recording.token_labels(0) == ["3:7", "12:5", "9:0", "?12", "?3", "?9"]
    assert recording.extra["label"] == [5, 7, 0]
    assert len(recording.extra["prediction"]) == 3
    assert accepts_typed_input("recall.safetensors")


def test_typed_input_rejected_for_digits():
    assert not accepts_typed_input("digits.safetensors")
    with pytest.raises(ValueError, match="takes no typed input"):
        record_typed_sequence("digits.safetensors", "3:7 ?3")


def test_invalid_typed_sequence_names_the_item():
    with pytest.raises(ValueError, match="query '\\?4' asks for key 4"):
        record_typed_sequence("recall.safetensors", "3:7 ?4")
