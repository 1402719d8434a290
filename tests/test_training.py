"""Training loop, task checkpoints, training recordings and the train/evaluate/record commands.

Every training here runs a handful of steps on tiny models or tiny recall data.
"""

from __future__ import annotations

import json

import pytest
import torch

from nsm_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nsm_core.cli.main import main
from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel
from nsm_core.recording import Recording
from nsm_core.tasks import DigitsTask, RecallTask, build_task
from nsm_core.tasks.checkpoints import load_task_checkpoint
from nsm_core.tasks.record import record_sample, record_sample_bytes, record_training
from nsm_core.training import Snapshot, TrainSettings, train

TINY_RECALL = {"num_pairs": 2, "num_keys": 4, "num_values": 4, "num_states": 2, "train_size": 256,
               "test_size": 32}


@pytest.fixture(scope="module")
def digits() -> DigitsTask:
    return DigitsTask()


@pytest.fixture(autouse=True)
def one_thread():
    # The tiny steps here gain nothing from a second thread, and on a busy machine OpenMP
    # threads that wait for each other make them many times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_digits_model(seed: int = 0) -> NSMModel:
    return NSMModel(NSMConfig(num_states=4, state_dim=16, token_dim=16, num_layers=1, num_heads=2,
                              input_dim=8, num_classes=10, seed=seed))


def batch_loss(task, model, batch) -> float:
    model.eval()
    with torch.no_grad():
        return float(task.loss(task.forward(model, batch), batch))


def test_few_steps_lower_the_digits_loss(digits):
    model = tiny_digits_model()
    batch = digits.batch("train", torch.arange(256))
    before = batch_loss(digits, model, batch)

    train(digits, TrainSettings(epochs=1, batch_size=32, learning_rate=1e-2, max_steps=60, checkpoints=0),
          model=model, progress=False)

    assert batch_loss(digits, model, batch) < 0.8 * before


def test_few_steps_lower_the_recall_loss():
    task = RecallTask(**TINY_RECALL)
    model = NSMModel(task.model_config())
    batch = task.batch("train", torch.arange(256))
    before = batch_loss(task, model, batch)

    train(task, TrainSettings(epochs=4, batch_size=32, learning_rate=1e-2, checkpoints=0), model=model,
          progress=False)

    assert batch_loss(task, model, batch) < before


def test_same_seed_gives_same_weights(digits):
    settings = TrainSettings(epochs=1, batch_size=64, max_steps=5, checkpoints=0, seed=4)

    first = train(digits, settings, model=tiny_digits_model(), progress=False).model.state_dict()
    second = train(digits, settings, model=tiny_digits_model(), progress=False).model.state_dict()
    other_seed = train(digits, settings.__class__(**{**settings.__dict__, "seed": 5}),
                       model=tiny_digits_model(), progress=False).model.state_dict()

    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other_seed[name]) for name in first)


def test_snapshots_at_evenly_spaced_checkpoints(digits):
    result = train(digits, TrainSettings(epochs=1, batch_size=64, max_steps=12, checkpoints=3, eval_limit=20),
                   model=tiny_digits_model(), progress=False)

    assert [snapshot.step for snapshot in result.snapshots] == [0, 4, 8, 12]
    assert result.snapshots[0].loss is None
    assert all(snapshot.loss is not None for snapshot in result.snapshots[1:])
    assert result.steps == 12
    # The last snapshot holds the final weights.
    final = result.model.state_dict()
    assert all(torch.equal(result.snapshots[-1].weights[name], final[name]) for name in final)
    # 23 steps of 64 make one epoch of 1,437 images.
    assert result.snapshots[2].label == f"epoch 0.35 · {100 * result.snapshots[2].accuracy:.1f}%"


def test_snapshot_label_format():
    snapshot = Snapshot(step=69, epoch=3.0, accuracy=0.912, loss=0.3, weights={})

    assert snapshot.label == "epoch 3 · 91.2%"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"epochs": 0}, "epochs=0 is invalid"),
        ({"batch_size": -1}, "batch_size=-1 is invalid"),
        ({"learning_rate": 0.0}, "learning_rate=0.0 is outside"),
        ({"weight_decay": 2.0}, "weight_decay=2.0 is outside"),
        ({"max_steps": 0}, "max_steps=0 is invalid"),
        ({"checkpoints": -1}, "checkpoints=-1 is invalid"),
    ],
)
def test_settings_reject_bad_values(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        TrainSettings(**values)


def test_settings_for_task_apply_overrides(digits):
    settings = TrainSettings.for_task(digits, epochs=3, batch_size=None)

    assert settings.epochs == 3
    assert settings.batch_size == digits.training_defaults()["batch_size"]


def test_checkpoint_reproduces_saved_accuracy_on_subset(tmp_path, digits):
    result = train(digits, TrainSettings(epochs=1, batch_size=64, max_steps=10, checkpoints=0),
                   model=tiny_digits_model(), progress=False)
    subset_accuracy = digits.accuracy(result.model, "test", limit=50)
    save_checkpoint(result.model, tmp_path / "d.safetensors", info={**result.info(digits), "accuracy": subset_accuracy})

    model, task, info = load_task_checkpoint(tmp_path / "d.safetensors")

    assert task.params() == digits.params()
    assert info["accuracy"] == subset_accuracy
    assert task.accuracy(model, "test", limit=50) == subset_accuracy
    assert info["training"]["steps"] == 10
    assert info["test_size"] == 360


def test_evaluate_json_reports_task_and_accuracy(tmp_path, capsys):
    task = RecallTask(**TINY_RECALL)
    result = train(task, TrainSettings(epochs=1, batch_size=32, checkpoints=0), progress=False)
    path = save_checkpoint(result.model, tmp_path / "r.safetensors", info={
        **result.info(task), "task": "recall"})

    assert main(["evaluate", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert summary["task"] == "recall"
    assert summary["test_size"] == 32
    assert summary["accuracy"] == result.accuracy
    assert 0.0 <= summary["accuracy"] <= 1.0


def test_evaluate_text_output(tmp_path, capsys, digits):
    model = tiny_digits_model()
    path = save_checkpoint(model, tmp_path / "d.safetensors", info={"task": "digits", "task_params": {},
                                                                      "accuracy": 0.5})

    assert main(["evaluate", str(path), "--limit", "20"]) == 0
    out = capsys.readouterr().out

    assert "task digits" in out
    assert "test split: 360 sequences, first 20 evaluated" in out
    assert f"accuracy: {100 * digits.accuracy(model, 'test', limit=20):.2f}%" in out


def test_corrupt_checkpoint_is_rejected(tmp_path, capsys):
    path = save_checkpoint(tiny_digits_model(), tmp_path / "d.safetensors", info={"task": "digits"})
    path.write_bytes(path.read_bytes()[:200])

    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_task_checkpoint(path)
    assert main(["evaluate", str(path)]) == 1
    assert "d.safetensors is not a readable safetensors checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("info", "fragment"),
    [
        ({}, "names no task in its metadata"),
        ({"task": "mnist"}, "unknown task 'mnist'"),
        ({"task": "digits", "task_params": {"tokens": "pixels"}}, "tokens='pixels' is invalid"),
        ({"task": "digits", "task_params": {"colour": True}}, "invalid parameters ['colour'] for task 'digits'"),
        ({"task": "digits", "task_params": [1]}, "task_params must be a JSON object"),
        ({"task": "recall"}, "the checkpoint does not belong to this task"),
    ],
)
def test_mismatched_checkpoint_is_rejected(tmp_path, capsys, info, fragment):
    path = save_checkpoint(tiny_digits_model(), tmp_path / "d.safetensors", info=info)

    with pytest.raises(CheckpointError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_task_checkpoint(path)
    assert main(["evaluate", str(path)]) == 1
    assert fragment in capsys.readouterr().err


def test_evaluate_missing_file(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.safetensors")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_rejects_bad_limit(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "x.safetensors"), "--limit", "0"]) == 2
    assert "--limit 0 is invalid" in capsys.readouterr().err


def test_record_sample_stores_prediction(tmp_path, digits):
    model = tiny_digits_model()
    sample = digits.sample(3)

    path = record_sample(model, digits, sample, tmp_path / "s.nsm", extra={"checkpoint_accuracy": 0.5})
    recording = Recording.open(path)

    prediction = digits.predict(model, sample)
    assert recording.extra["task"] == "digits"
    assert recording.extra["sample_index"] == 3
    assert recording.extra["label"] == int(sample.targets)
    assert recording.extra["prediction"] == prediction.predicted[0]
    assert recording.extra["input"]["kind"] == "digit_image"
    assert recording.extra["checkpoint_accuracy"] == 0.5
    assert recording.token_labels(0) == [f"row {row}" for row in range(8)]
    assert int(recording.array("sequence_logits")[0].argmax()) == prediction.predicted[0]
    assert recording.step_labels == ["test sample 3"]


def test_record_recall_sample_keeps_write_mask(tmp_path):
    task = RecallTask(**TINY_RECALL)
    model = NSMModel(task.model_config())
    sample = task.parse("1:2 3:0 ?3 ?1")

    recording = Recording.open(record_sample(model, task, sample, tmp_path / "r.nsm"))

    assert recording.extra["write_mask"] == [True, True, False, False]
    assert recording.extra["label"] == [0, 2]
    assert len(recording.extra["prediction"]) == 2
    assert recording.token_labels(0) == ["1:2", "3:0", "?3", "?1"]
    assert recording.step_labels == ["typed input"]
    routing = recording.frame(0, 1).routing  # [H, T, S]
    assert routing.shape == (4, 4, 2)


def test_training_recording_has_one_step_per_checkpoint(tmp_path, digits):
    result = train(digits, TrainSettings(epochs=1, batch_size=64, max_steps=6, checkpoints=2, eval_limit=20),
                   model=tiny_digits_model(), progress=False)

    path = record_training(digits, result.snapshots, digits.sample(0), tmp_path / "t.nsm",
                           config=result.model.config)
    recording = Recording.open(path)

    assert recording.num_steps == 3
    assert recording.step_labels == [snapshot.label for snapshot in result.snapshots]
    assert [entry["step"] for entry in recording.extra["checkpoints"]] == [0, 3, 6]
    assert recording.extra["kind"] == "training"
    # Step 0 is the untrained model, so its states differ from the trained model's.
    assert not torch.allclose(torch.from_numpy(recording.states_through_layers(0)),
                              torch.from_numpy(recording.states_through_layers(2)))


def test_training_recording_needs_snapshots(tmp_path, digits):
    with pytest.raises(ValueError, match="no training snapshots"):
        record_training(digits, [], digits.sample(0), tmp_path / "t.nsm", config=tiny_digits_model().config)


def test_train_command_writes_checkpoint_and_recording(tmp_path, capsys):
    out, recording = tmp_path / "d.safetensors", tmp_path / "d.nsm"

    code = main(["train", "--task", "digits", "--max-steps", "2", "--checkpoints", "1", "--out", str(out),
                 "--record-training", str(recording), "--probe-sample", "4", "--quiet", "--threads", "1"])

    assert code == 0
    model, info = load_checkpoint(out)
    assert info["task"] == "digits"
    assert info["training"]["steps"] == 2
    assert f"wrote {out}" in capsys.readouterr().out
    assert Recording.open(recording).num_steps == 2
    assert Recording.open(recording).extra["sample_index"] == 4


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--epochs", "0"], "epochs=0 is invalid"),
        (["--threads", "0"], "--threads 0 is invalid"),
        (["--record-training", "PLACEHOLDER", "--probe-sample", "999"], "--probe-sample: sample index 999"),
    ],
)
def test_train_command_rejects_bad_flags(tmp_path, capsys, argv, fragment):
    argv = [str(tmp_path / "t.nsm") if item == "PLACEHOLDER" else item for item in argv]
    out = tmp_path / "d.safetensors"

    assert main(["train", "--task", "digits", "--out", str(out), "--quiet", *argv]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_train_command_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    out.write_bytes(b"keep me")

    assert main(["train", "--task", "digits", "--out", str(out), "--max-steps", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


@pytest.fixture
def recall_checkpoint(tmp_path):
    task = RecallTask(**TINY_RECALL)
    model = NSMModel(task.model_config())
    return save_checkpoint(model, tmp_path / "r.safetensors", info={"task": "recall", "task_params": task.params()})


def test_record_command_records_task_sample(tmp_path, capsys, recall_checkpoint):
    out = tmp_path / "s.nsm"

    assert main(["record", "--checkpoint", str(recall_checkpoint), "--sample", "5", "--out", str(out)]) == 0

    recording = Recording.open(out)
    assert recording.extra["sample_index"] == 5
    assert recording.extra["task"] == "recall"
    assert "recall, test sample 5" in capsys.readouterr().out


def test_record_command_takes_typed_recall(tmp_path, recall_checkpoint):
    out = tmp_path / "s.nsm"

    assert main(["record", "--checkpoint", str(recall_checkpoint), "--input", "0:1 2:3 ?2", "--out", str(out)]) == 0
    assert Recording.open(out).token_labels(0) == ["0:1", "2:3", "?2"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--sample", "32"], "--sample: sample index 32 is outside the test split"),
        (["--input", "0:1 ?3"], "--input: query '?3' asks for key 3"),
        (["--input", "0:1 ?0", "--sample", "1"], "--sample and --input both choose the input"),
        (["--steps", "2"], "--steps 2 splits text input"),
    ],
)
def test_record_command_rejects_bad_task_flags(tmp_path, capsys, recall_checkpoint, argv, fragment):
    out = tmp_path / "s.nsm"

    assert main(["record", "--checkpoint", str(recall_checkpoint), *argv, "--out", str(out)]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_record_command_rejects_typed_digits(tmp_path, capsys):
    path = save_checkpoint(tiny_digits_model(), tmp_path / "d.safetensors", info={"task": "digits"})

    assert main(["record", "--checkpoint", str(path), "--input", "7", "--out", str(tmp_path / "x.nsm")]) == 2
    assert "takes no typed input" in capsys.readouterr().err


def test_record_command_rejects_taskless_vector_checkpoint(tmp_path, capsys):
    path = save_checkpoint(tiny_digits_model(), tmp_path / "d.safetensors")

    assert main(["record", "--checkpoint", str(path), "--out", str(tmp_path / "x.nsm")]) == 2
    assert "names no task whose samples could feed it" in capsys.readouterr().err


def test_record_command_sample_needs_checkpoint(tmp_path, capsys):
    assert main(["record", "--sample", "1", "--out", str(tmp_path / "x.nsm")]) == 2
    assert "--sample picks a sample of a trained task" in capsys.readouterr().err


def test_build_task_round_trips_params():
    task = build_task("recall_hard", train_size=10, test_size=10)

    assert build_task(task.name, **task.params()).params() == task.params()


def test_record_sample_bytes_round_trip(digits):
    model = tiny_digits_model()

    data = record_sample_bytes(model, digits, digits.sample(2))
    recording = Recording.from_bytes(data, "sample.nsm")

    assert recording.extra["sample_index"] == 2
    assert recording.extra["prediction"] == digits.predict(model, digits.sample(2)).predicted[0]
