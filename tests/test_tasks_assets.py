"""The bundled trained checkpoints and recordings in assets/.

Each checkpoint is evaluated on its whole test split, which must reproduce the accuracy saved
at training time exactly and meet the task's target.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nsm_core.recording import Recording
from nsm_core.tasks.checkpoints import load_task_checkpoint

@pytest.fixture(autouse=True)
def one_thread():
    # Evaluation batches are small, and on a busy machine OpenMP threads that wait for each
    # other make them many times slower than one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ASSETS = Path(__file__).resolve().parent.parent / "assets"

# Checkpoint file, task, and the accuracy range the README promises for it.
CHECKPOINTS = [
    ("digits.safetensors", "digits", 0.97, 1.0),
    ("recall.safetensors", "recall", 0.97, 1.0),
    ("recall_hard.safetensors", "recall_hard", 0.85, 1.0),
    # The worked debugging example: key and value as separate tokens never bind.
    ("recall_split_failing.safetensors", "recall_split", 0.0, 0.3),
]
RECORDINGS = {
    "digits.nsm": "digits",
    "recall.nsm": "recall",
    "recall_hard.nsm": "recall_hard",
    "recall_split_failing.nsm": "recall_split",
    "digits_training.nsm": "digits",
}


@pytest.mark.parametrize(("file_name", "task_name", "low", "high"), CHECKPOINTS)
def test_bundled_checkpoint_reproduces_accuracy(file_name, task_name, low, high):
    model, task, info = load_task_checkpoint(ASSETS / "checkpoints" / file_name)

    accuracy = task.accuracy(model, "test")

    assert task.name == task_name
    assert accuracy == info["accuracy"]
    assert low <= accuracy <= high


@pytest.mark.parametrize(("file_name", "task_name"), RECORDINGS.items())
def test_bundled_recording_carries_its_input(file_name, task_name):
    recording = Recording.open(ASSETS / "recordings" / file_name)
    extra = recording.extra

    assert extra["task"] == task_name
    assert extra["input"]["kind"] == ("digit_image" if task_name == "digits" else "recall_sequence")
    assert extra["split"] == "test"
    assert "prediction" in extra
    assert "label" in extra


def test_default_digit_recording_is_predicted_correctly():
    extra = Recording.open(ASSETS / "recordings" / "digits.nsm").extra

    assert extra["prediction"] == extra["label"]
    assert extra["input"]["image"] and len(extra["input"]["image"]) == 8


def test_training_recording_steps_are_checkpoints():
    recording = Recording.open(ASSETS / "recordings" / "digits_training.nsm")

    assert recording.num_steps >= 10
    assert recording.step_labels[0].startswith("epoch 0 · ")
    assert [entry["step"] for entry in recording.extra["checkpoints"]] == sorted(
        entry["step"] for entry in recording.extra["checkpoints"])
    assert recording.extra["checkpoints"][-1]["accuracy"] >= 0.97
