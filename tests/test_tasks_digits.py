"""The digits task: stratified split, tokenisation into rows or patches, samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsm_core.modules import NSMModel
from nsm_core.tasks import DigitsTask, build_task


@pytest.fixture(scope="module")
def task() -> DigitsTask:
    return DigitsTask()


def test_split_holds_out_a_stratified_fifth(task):
    assert task.split_size("train") == 1437
    assert task.split_size("test") == 360

    test_labels = task.batch("test", torch.arange(360)).targets
    counts = torch.bincount(test_labels, minlength=10)
    # 1,797 images with 174-183 per class: a stratified fifth has 35-37 of each.
    assert int(counts.min()) >= 35
    assert int(counts.max()) <= 37


def test_split_is_deterministic(task):
    again = DigitsTask()

    assert torch.equal(task.batch("test", torch.arange(360)).inputs, again.batch("test", torch.arange(360)).inputs)


def test_rows_are_scaled_pixels(task):
    sample = task.sample(5)

    assert sample.inputs.shape == (8, 8)
    np.testing.assert_array_equal(sample.inputs.numpy(), task.image(5) / 16.0)
    assert sample.token_labels[0] == "row 0"
    assert float(sample.inputs.max()) <= 1.0


def test_patches_read_two_by_two_in_reading_order():
    task = DigitsTask(tokens="patches")
    image = task.image(0)

    inputs = task.sample(0).inputs

    assert inputs.shape == (16, 4)
    np.testing.assert_array_equal(inputs[0].numpy(), image[0:2, 0:2].reshape(-1) / 16.0)
    np.testing.assert_array_equal(inputs[1].numpy(), image[0:2, 2:4].reshape(-1) / 16.0)
    np.testing.assert_array_equal(inputs[4].numpy(), image[2:4, 0:2].reshape(-1) / 16.0)
    assert task.token_regions()[4] == [2, 4, 0, 2]
    assert task.sample(0).token_labels[4] == "patch 1,0"


def test_sample_describes_the_image(task):
    sample = task.sample(7)

    assert sample.display["kind"] == "digit_image"
    assert sample.display["image"] == task.image(7).astype(int).tolist()
    assert sample.display["label"] == int(sample.targets)
    assert len(sample.display["token_regions"]) == 8
    assert (sample.split, sample.index) == ("test", 7)


@pytest.mark.parametrize(("index", "split"), [(360, "test"), (-1, "test"), (1437, "train")])
def test_sample_index_outside_split(task, index, split):
    with pytest.raises(IndexError, match=f"sample index {index} is outside the {split} split"):
        task.sample(index, split)


def test_unknown_split_is_rejected(task):
    with pytest.raises(ValueError, match="split='valid' is invalid"):
        task.sample(0, "valid")


@pytest.mark.parametrize(("params", "fragment"), [({"tokens": "pixels"}, "tokens='pixels'"),
                                                  ({"test_fraction": 0.9}, "test_fraction=0.9")])
def test_invalid_parameters(params, fragment):
    with pytest.raises(ValueError, match=fragment):
        DigitsTask(**params)


def test_accuracy_on_a_subset_counts_correct_sequences(task):
    model = NSMModel(task.model_config(seed=1))
    batch = task.batch("test", torch.arange(40))
    with torch.no_grad():
        correct = int((model(batch.inputs).sequence_logits.argmax(-1) == batch.targets).sum())

    assert task.accuracy(model, "test", limit=40, batch_size=16) == correct / 40


def test_check_model_rejects_recall_model(task):
    recall_config = build_task("recall").model_config()

    with pytest.raises(ValueError, match="input_dim=None but task 'digits' needs input_dim=8"):
        task.check_model(recall_config)


def test_prediction_of_one_sample(task):
    model = NSMModel(task.model_config())
    sample = task.sample(0)

    prediction = task.predict(model, sample)

    assert prediction.expected == [int(sample.targets)]
    assert len(prediction.probabilities[0]) == 10
    assert sum(prediction.probabilities[0]) == pytest.approx(1.0, abs=1e-5)
    assert prediction.predicted == [int(np.argmax(prediction.probabilities[0]))]
