"""Training tasks: data, loss and accuracy for the bundled trained models.

Each task is registered under a name; `build_task(name, **params)` rebuilds it, and a
checkpoint stores the name and parameters so that `evaluate` measures it on the same split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsm_core.tasks.base import IGNORE_INDEX, Batch, Prediction, Sample, Task
from nsm_core.tasks.digits import DigitsTask
from nsm_core.tasks.recall import RecallTask

# Name -> factory taking the task's parameters. The recall variants differ in their defaults.
# recall_hard draws its 16 pairs from 32 keys: with 16 keys every sequence would hold every
# key, and a fixed map of two keys per state would solve it without any sharing to learn.
TASKS: dict[str, Callable[..., Task]] = {
    "digits": DigitsTask,
    "recall": lambda **params: RecallTask(**{"num_pairs": 8, **params, "name": "recall"}),
    "recall_hard": lambda **params: RecallTask(**{"num_pairs": 16, "num_keys": 32, **params,
                                                  "name": "recall_hard"}),
    "recall_split": lambda **params: RecallTask(**{"num_pairs": 8, "layout": "split", **params,
                                                   "name": "recall_split"}),
}


def build_task(name: str, **params: Any) -> Task:
    """Return the task registered as `name`, built with `params` (its defaults when empty).

    Raises ValueError for an unknown name and for parameters the task does not take.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks are {', '.join(TASKS)}.")
    try:
        return TASKS[name](**params)
    except TypeError as error:
        raise ValueError(f"invalid parameters {sorted(params)} for task {name!r}: {error}") from None


__all__ = ["IGNORE_INDEX", "TASKS", "Batch", "DigitsTask", "Prediction", "RecallTask", "Sample", "Task",
           "build_task"]
