"""Record a trained model on one task sample, or one probe sample across training checkpoints.

The recording's manifest `extra` carries what the dashboard needs to show beside the routing:
the task, the sample's split and index, its display description (`input`), the expected
answer (`label`) and the model's answer (`prediction`), plus for training recordings one
entry per checkpoint. For a sequence task `label` and `prediction` are class indices; for a
token task (recall) they are lists with one entry per query, in sequence order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nsm_core.modules import NSMModel, NSMOutput
from nsm_core.recording.recorder import record
from nsm_core.tasks.base import Prediction, Sample, Task


def prediction_extra(task: Task, prediction: Prediction) -> dict[str, Any]:
    """Return the label, prediction and probabilities of one sample as JSON-ready values."""
    if task.target_kind == "sequence":
        return {
            "label": prediction.expected[0],
            "prediction": prediction.predicted[0],
            "correct": prediction.correct[0],
            "probabilities": [round(p, 6) for p in prediction.probabilities[0]],
        }
    return {
        "label": prediction.expected,
        "prediction": prediction.predicted,
        "correct": prediction.correct,
        "probabilities": [[round(p, 6) for p in row] for row in prediction.probabilities],
    }


def sample_extra(task: Task, sample: Sample) -> dict[str, Any]:
    """Return the task and input description shared by every recording of `sample`."""
    write_mask = None if sample.write_mask is None else sample.write_mask.tolist()
    return {
        "task": task.name,
        "task_params": task.params(),
        "target_kind": task.target_kind,
        "class_names": list(task.class_names),
        "split": sample.split,
        "sample_index": sample.index,
        "input": sample.display,
        "write_mask": write_mask,
    }


def sample_step_label(sample: Sample) -> str:
    if sample.index is None:
        return f"{sample.split} input"
    return f"{sample.split} sample {sample.index}"


def record_sample(
    model: NSMModel,
    task: Task,
    sample: Sample,
    path: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Record `model` on `sample` as one step and write `path`; return the path.

    extra: more manifest entries, such as the checkpoint's accuracy.
    """
    prediction = task.predict(model, sample)
    manifest_extra = {**sample_extra(task, sample), **prediction_extra(task, prediction), **(extra or {})}

    def run_step(step: int, carry: Any) -> NSMOutput:
        return _forward_sample(model, sample)

    with torch.inference_mode():
        return record(
            model, run_step, 1, path,
            token_labels=[sample.token_labels],
            step_labels=[sample_step_label(sample)],
            model_info={"kind": "nsm", "config": model.config.to_dict()},
            extra=manifest_extra,
            dtype=dtype,
            sequence_logits=_sequence_logits,
        )


def record_training(
    task: Task,
    snapshots: Sequence[Any],
    sample: Sample,
    path: str | os.PathLike[str],
    *,
    config: Any,
    dtype: str = "float32",
) -> Path:
    """Record `sample` once per training snapshot (step p = checkpoint p); return the path.

    snapshots: objects with `weights`, `label`, `step`, `epoch`, `accuracy` and `loss`, such
    as nsm_core.training.Snapshot. config: the NSMConfig the weights belong to.
    """
    if not snapshots:
        raise ValueError("no training snapshots to record; train with checkpoints of 1 or more.")
    model = NSMModel(config).eval()
    checkpoints = []
    for snapshot in snapshots:
        model.load_state_dict(snapshot.weights)
        checkpoints.append({"step": snapshot.step, "epoch": snapshot.epoch, "accuracy": snapshot.accuracy,
                            "loss": snapshot.loss, **prediction_extra(task, task.predict(model, sample))})
    final = {key: checkpoints[-1][key] for key in ("label", "prediction", "correct", "probabilities")}
    manifest_extra = {**sample_extra(task, sample), **final, "kind": "training", "checkpoints": checkpoints}

    def run_step(step: int, carry: Any) -> NSMOutput:
        model.load_state_dict(snapshots[step].weights)
        return _forward_sample(model, sample)

    with torch.inference_mode():
        return record(
            model, run_step, len(snapshots), path,
            token_labels=[sample.token_labels] * len(snapshots),
            step_labels=[snapshot.label for snapshot in snapshots],
            model_info={"kind": "nsm", "config": config.to_dict()},
            extra=manifest_extra,
            dtype=dtype,
            sequence_logits=_sequence_logits,
        )


def _forward_sample(model: NSMModel, sample: Sample) -> NSMOutput:
    batch = sample.as_batch()
    return model(batch.inputs, write_mask=batch.write_mask)


def _sequence_logits(output: NSMOutput) -> torch.Tensor | None:
    return None if output.sequence_logits is None else output.sequence_logits[0]


def record_sample_bytes(model: NSMModel, task: Task, sample: Sample, *, extra: dict[str, Any] | None = None) -> bytes:
    """Record `sample` as record_sample does and return the file's bytes instead of keeping a file.

    For callers that hold recordings in memory, such as the dashboard; read the bytes back with
    `Recording.from_bytes`.
    """
    with tempfile.TemporaryDirectory(prefix="nsm-sample-") as folder:
        path = record_sample(model, task, sample, Path(folder) / "sample.nsm", extra=extra)
        return path.read_bytes()
