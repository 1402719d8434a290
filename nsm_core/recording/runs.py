"""Record our own models on an input: the loops behind `python -m nsm_core record`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nsm_core.modules import NSMModel, NSMOutput, TutorialDynamics
from nsm_core.recording.recorder import record
from nsm_core.tokenize import split_steps


def record_nsm(
    model: NSMModel,
    inputs: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    token_labels: list[str],
    num_steps: int = 1,
    dtype: str = "float32",
    extra: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Record `model` on one sequence, token ids [T] or features [T, input_dim], in num_steps chunks.

    The states after each chunk carry into the next, so step p continues where p − 1 ended.
    """
    if len(token_labels) != inputs.shape[0]:
        raise ValueError(f"{len(token_labels)} token labels for {inputs.shape[0]} tokens; pass one label per token.")
    chunks = split_steps(inputs.shape[0], num_steps)

    def run_step(step: int, previous: NSMOutput | None) -> NSMOutput:
        chunk = chunks[step]
        state = previous.state if previous is not None else None
        return model(inputs[chunk].unsqueeze(0), state=state, position_offset=chunk.start)

    with torch.inference_mode():
        return record(
            model,
            run_step,
            num_steps,
            path,
            token_labels=[token_labels[chunk] for chunk in chunks],
            step_labels=[f"tokens {chunk.start}–{chunk.stop - 1}" for chunk in chunks],
            model_info={"kind": "nsm", "config": model.config.to_dict()},
            extra=extra,
            dtype=dtype,
            sequence_logits=lambda output: None if output.sequence_logits is None else output.sequence_logits[0],
            progress=progress,
        )


def record_tutorial(
    model: TutorialDynamics,
    path: str | os.PathLike[str],
    *,
    num_steps: int = 1,
    dtype: str = "float32",
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Record the teaching dynamics; step p starts from the states where step p − 1 ended."""
    model.reset()
    config = model.config
    return record(
        model,
        lambda step, states: model(states),
        num_steps,
        path,
        step_labels=[f"step {p}" for p in range(num_steps)],
        model_info={"kind": "tutorial", "config": vars(config).copy()},
        dtype=dtype,
        progress=progress,
    )
