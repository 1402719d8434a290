"""The interface every training task implements, and the batch and sample it hands out.

A task owns its data: it builds the train and test splits deterministically from its
parameters, so a checkpoint that stores the task's name and parameters can rebuild the exact
test split it was measured on.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel, NSMOutput

# Target of tokens that carry no label (recall pairs); ignored by the loss and the accuracy.
IGNORE_INDEX = -100

SPLITS = ("train", "test")


@dataclass
class Batch:
    """Model inputs and targets for B sequences of T tokens.

    inputs: token ids [B, T] (int64) or feature vectors [B, T, input_dim] (float32).
    targets: one class per sequence [B] for sequence tasks, one class per token [B, T] for
    token tasks, with IGNORE_INDEX where a token has no target.
    write_mask: bool [B, T], False for tokens that only read from the states; None if all write.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    write_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: slice) -> Batch:
        mask = None if self.write_mask is None else self.write_mask[index]
        return Batch(self.inputs[index], self.targets[index], mask)


@dataclass
class Sample:
    """One sequence of a task, ready to run, record and display.

    inputs: [T] token ids or [T, input_dim] features. targets: [] or [T] as in Batch.
    token_labels: one short readable label per token. display: a JSON-serialisable
    description of the input for the dashboard, with a "kind" key ("digit_image" or
    "recall_sequence") that says how to draw it.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    token_labels: list[str]
    display: dict[str, Any]
    write_mask: torch.Tensor | None = None
    split: str = "test"
    index: int | None = None

    def as_batch(self) -> Batch:
        mask = None if self.write_mask is None else self.write_mask[None]
        return Batch(self.inputs[None], self.targets[None], mask)


@dataclass
class Prediction:
    """What the model made of one sample: classes, their probabilities, and whether each is right."""

    predicted: list[int]  # one entry per sequence task, one per labelled token for token tasks
    expected: list[int]
    probabilities: list[list[float]] = field(default_factory=list)  # one row of C per entry

    @property
    def correct(self) -> list[bool]:
        return [p == e for p, e in zip(self.predicted, self.expected)]


class Task(abc.ABC):
    """A supervised task that trains an NSM: data, loss, accuracy and display of its inputs.

    Subclasses set `name`, `description` and `target_kind` ("sequence" or "token") and
    implement the abstract methods. The default training schedule in `training_defaults`
    is the one that produced the bundled checkpoint.
    """

    name: str = ""
    description: str = ""
    target_kind: str = "sequence"
    class_names: tuple[str, ...] = ()

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Return the parameters that rebuild this task with `build_task(name, **params)`."""

    @abc.abstractmethod
    def model_config(self, seed: int = 0) -> NSMConfig:
        """Return the config of the model that this task trains by default."""

    @abc.abstractmethod
    def split_size(self, split: str) -> int:
        """Return the number of sequences in `split` ("train" or "test")."""

    @abc.abstractmethod
    def batch(self, split: str, indices: torch.Tensor) -> Batch:
        """Return the sequences of `split` at `indices` [B] as one batch."""

    @abc.abstractmethod
    def sample(self, index: int, split: str = "test") -> Sample:
        """Return sequence `index` of `split` with its labels and display description."""

    def check_model(self, config: NSMConfig) -> None:
        """Raise ValueError unless a model with `config` reads this task's inputs and has its head."""
        expected = self.model_config()
        fields = ["input_dim", "num_classes" if self.target_kind == "sequence" else "num_token_classes"]
        if expected.input_dim is None:
            fields.append("vocab_size")
        for name in fields:
            if getattr(config, name) != getattr(expected, name):
                raise ValueError(
                    f"the model has {name}={getattr(config, name)} but task {self.name!r} needs "
                    f"{name}={getattr(expected, name)}; the checkpoint does not belong to this task."
                )

    def training_defaults(self) -> dict[str, Any]:
        """Return the schedule (epochs, batch size, learning rate, ...) used by `train`."""
        return {}

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Yield one epoch of shuffled training batches; the generator fixes the order."""
        order = torch.randperm(self.split_size("train"), generator=generator)
        for start in range(0, len(order), batch_size):
            yield self.batch("train", order[start : start + batch_size])

    def forward(self, model: NSMModel, batch: Batch) -> NSMOutput:
        return model(batch.inputs, write_mask=batch.write_mask)

    def logits(self, output: NSMOutput) -> torch.Tensor:
        """Return the logits that the targets refer to: [B, C] or [B, T, C]."""
        logits = output.sequence_logits if self.target_kind == "sequence" else output.token_logits
        if logits is None:
            head = "num_classes" if self.target_kind == "sequence" else "num_token_classes"
            raise ValueError(
                f"task {self.name!r} needs the model's per-{self.target_kind} head; "
                f"build the model with {head} set (see the task's model_config)."
            )
        return logits

    def loss(self, output: NSMOutput, batch: Batch) -> torch.Tensor:
        """Return the mean cross-entropy over labelled sequences or tokens."""
        logits = self.logits(output)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)

    def correct_counts(self, output: NSMOutput, batch: Batch) -> tuple[int, int]:
        """Return (correct, labelled) counts for one batch."""
        predicted = self.logits(output).argmax(-1)
        labelled = batch.targets != IGNORE_INDEX
        return int((predicted.eq(batch.targets) & labelled).sum()), int(labelled.sum())

    @torch.no_grad()
    def accuracy(self, model: NSMModel, split: str = "test", limit: int | None = None,
                 batch_size: int = 500) -> float:
        """Return the fraction in [0, 1] of labelled sequences or tokens that the model gets right.

        limit: evaluate only the first `limit` sequences of the split (a fixed subset).
        """
        self.check_split(split)
        size = self.split_size(split) if limit is None else min(limit, self.split_size(split))
        if size < 1:
            raise ValueError(f"limit={limit} leaves no sequence to evaluate; use a limit of 1 or more.")
        was_training = model.training
        model.eval()
        correct = total = 0
        try:
            for start in range(0, size, batch_size):
                batch = self.batch(split, torch.arange(start, min(start + batch_size, size)))
                hits, count = self.correct_counts(self.forward(model, batch), batch)
                correct, total = correct + hits, total + count
        finally:
            model.train(was_training)
        return correct / total

    @torch.no_grad()
    def predict(self, model: NSMModel, sample: Sample) -> Prediction:
        """Run the model on one sample and return its predictions for the labelled entries."""
        was_training = model.training
        model.eval()
        try:
            logits = self.logits(self.forward(model, sample.as_batch()))[0]  # [C] or [T, C]
        finally:
            model.train(was_training)
        probabilities = logits.softmax(-1)
        if self.target_kind == "sequence":
            return Prediction([int(logits.argmax())], [int(sample.targets)], [probabilities.tolist()])
        labelled = (sample.targets != IGNORE_INDEX).nonzero().flatten()
        return Prediction(
            logits[labelled].argmax(-1).tolist(),
            sample.targets[labelled].tolist(),
            probabilities[labelled].tolist(),
        )

    def check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is invalid; use one of {', '.join(SPLITS)}.")

    def check_index(self, index: int, split: str) -> None:
        self.check_split(split)
        size = self.split_size(split)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise IndexError(
                f"sample index {index!r} is outside the {split} split of task {self.name!r}; "
                f"use an index in [0, {size - 1}]."
            )
