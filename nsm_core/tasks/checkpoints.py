"""Checkpoints of task models: the weights plus the task that rebuilds their test split."""

from __future__ import annotations

import os
from typing import Any

from nsm_core.checkpoint import CheckpointError, load_checkpoint
from nsm_core.modules import NSMModel
from nsm_core.tasks import Task, build_task


def task_from_info(info: dict[str, Any], source: str) -> Task:
    """Rebuild the task named in a checkpoint's info; raise CheckpointError if it names none."""
    name = info.get("task")
    if not isinstance(name, str):
        raise CheckpointError(
            f"{source} names no task in its metadata, so there is no test split to use; "
            "task checkpoints are written by `python -m nsm_core train --task TASK`."
        )
    params = info.get("task_params", {})
    if not isinstance(params, dict):
        raise CheckpointError(f"{source}: task_params must be a JSON object, got {type(params).__name__}.")
    try:
        return build_task(name, **params)
    except ValueError as error:
        raise CheckpointError(f"{source}: {error}") from None


def load_task_checkpoint(path: str | os.PathLike[str]) -> tuple[NSMModel, Task, dict[str, Any]]:
    """Return (model in eval mode, its task, info) or raise CheckpointError naming the problem."""
    model, info = load_checkpoint(path)
    source = os.path.basename(os.fspath(path))
    task = task_from_info(info, source)
    try:
        task.check_model(model.config)
    except ValueError as error:
        raise CheckpointError(f"{source}: {error}") from None
    return model, task, info
