"""Train an NSM on a task: a seeded AdamW loop with a cosine schedule and snapshots.

The same seed, task and settings give the same weights on the same machine and thread
count (PyTorch does not promise bit-identical sums across thread counts). At each of
`checkpoints` evenly spaced training steps the loop measures the test accuracy and keeps a
copy of the weights, so that a probe input can later be recorded once per checkpoint to
show how routing specialises while the model learns.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from nsm_core.modules import NSMModel
from nsm_core.tasks import Task

logger = logging.getLogger(__name__)

# Fraction of the steps spent warming the learning rate up from zero.
WARMUP_FRACTION = 0.05
# Gradient norms above this are scaled down, a common safeguard when training attention layers.
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class TrainSettings:
    """Schedule of one training run. Defaults come from the task's `training_defaults`."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    checkpoints: int = 10  # snapshots (with test accuracy) besides the untrained one
    max_steps: int | None = None  # stop after this many optimiser steps (for quick tests)
    eval_limit: int | None = None  # measure checkpoint accuracies on this many test sequences

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1), ("checkpoints", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} is invalid; use an integer of at least {low}.")
        for name in ("max_steps", "eval_limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} is invalid; use a positive integer or leave it unset.")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 1):
            raise ValueError(f"learning_rate={self.learning_rate!r} is outside (0, 1].")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay <= 1):
            raise ValueError(f"weight_decay={self.weight_decay!r} is outside [0, 1].")

    @classmethod
    def for_task(cls, task: Task, **overrides: Any) -> TrainSettings:
        """Return the task's default schedule with the non-None `overrides` applied."""
        values = {**task.training_defaults(), **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)


@dataclass
class Snapshot:
    """Weights at one training checkpoint, with where it was taken and how well it did."""

    step: int
    epoch: float
    accuracy: float
    loss: float | None  # mean training loss since the previous checkpoint; None before training
    weights: dict[str, torch.Tensor] = field(repr=False)

    @property
    def label(self) -> str:
        """Step label for recordings, such as "epoch 3 · 91.2%"."""
        return f"epoch {self.epoch:g} · {100 * self.accuracy:.1f}%"


@dataclass
class TrainResult:
    model: NSMModel
    settings: TrainSettings
    snapshots: list[Snapshot]
    accuracy: float  # on the whole test split, after the last step
    seconds: float  # wall-clock time, checkpoint evaluations included
    cpu_seconds: float  # CPU time of this process, which a busy machine does not inflate
    steps: int

    def history(self) -> list[dict[str, Any]]:
        return [{"step": s.step, "epoch": s.epoch, "loss": s.loss, "accuracy": s.accuracy} for s in self.snapshots]

    def info(self, task: Task) -> dict[str, Any]:
        """Return the checkpoint metadata: task, parameters, accuracy and how it was trained."""
        return {
            "task": task.name,
            "task_params": task.params(),
            "accuracy": self.accuracy,
            "test_size": task.split_size("test"),
            "training": {
                **asdict(self.settings),
                "steps": self.steps,
                "seconds": round(self.seconds, 1),
                "cpu_seconds": round(self.cpu_seconds, 1),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            },
            "history": self.history(),
        }


def train(task: Task, settings: TrainSettings, model: NSMModel | None = None, progress: bool = True) -> TrainResult:
    """Train `model` (by default the task's model seeded with settings.seed) and return it.

    progress: show a tqdm bar on stderr with the running loss.
    """
    from tqdm import tqdm

    model = model if model is not None else NSMModel(task.model_config(seed=settings.seed))
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = math.ceil(task.split_size("train") / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    if settings.max_steps is not None:
        total_steps = min(total_steps, settings.max_steps)
    checkpoint_steps = _checkpoint_steps(total_steps, settings.checkpoints)

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _learning_rate_factor(step, total_steps))

    started, cpu_started = time.perf_counter(), time.process_time()
    snapshots = [_snapshot(task, model, 0, steps_per_epoch, None, settings.eval_limit)]
    bar = tqdm(total=total_steps, desc=f"train {task.name}", unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    step, losses = 0, []
    model.train()
    try:
        while step < total_steps:
            for batch in task.train_batches(settings.batch_size, generator):
                loss = task.loss(task.forward(model, batch), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
                optimizer.step()
                schedule.step()
                step += 1
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)

                if step in checkpoint_steps:
                    mean_loss = sum(losses) / len(losses)
                    snapshot = _snapshot(task, model, step, steps_per_epoch, mean_loss, settings.eval_limit)
                    snapshots.append(snapshot)
                    losses = []
                    bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{100 * snapshot.accuracy:.1f}%")
                    logger.info("step %d/%d: %s, loss %.4f", step, total_steps, snapshot.label, mean_loss)
                if step >= total_steps:
                    break
    finally:
        bar.close()

    model.eval()
    accuracy = task.accuracy(model, "test")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return TrainResult(model, settings, snapshots, accuracy, seconds, cpu_seconds, step)


def _checkpoint_steps(total_steps: int, count: int) -> set[int]:
    """Return `count` training steps spread evenly over (0, total_steps], the last one included."""
    if count == 0 or total_steps == 0:
        return set()
    return {max(1, round(index * total_steps / count)) for index in range(1, count + 1)}


def _learning_rate_factor(step: int, total_steps: int) -> float:
    """Linear warm-up over WARMUP_FRACTION of the steps, then cosine decay to zero."""
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _snapshot(task: Task, model: NSMModel, step: int, steps_per_epoch: int, loss: float | None,
              eval_limit: int | None) -> Snapshot:
    accuracy = task.accuracy(model, "test", limit=eval_limit)
    weights = copy.deepcopy({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
    epoch = round(step / steps_per_epoch, 2)
    return Snapshot(step, epoch, accuracy, loss, weights)
