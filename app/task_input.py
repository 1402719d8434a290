"""The input and prediction of a task recording (nsm_core.tasks), drawn beside the routing.

Task recordings store the sample under extra["input"] and the model's prediction under
extra["label"], extra["prediction"] and extra["probabilities"]; a recording made across
training also stores one prediction per step under extra["checkpoints"].
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.figures.inputs import input_figure, prediction_figure
from app.state import ViewContext


def has_task_input(extra: dict[str, Any]) -> bool:
    return isinstance(extra.get("input"), dict)


def answer_at_step(extra: dict[str, Any], step: int) -> dict[str, Any]:
    """Return the label, prediction and probabilities that belong to `step`.

    A training recording has one prediction per checkpoint (step); other task recordings have one.
    """
    checkpoints = extra.get("checkpoints")
    if isinstance(checkpoints, list) and step < len(checkpoints) and isinstance(checkpoints[step], dict):
        return checkpoints[step]
    return extra


def describe_correct(correct: Any) -> str:
    """Describe a sequence task's verdict (a bool) or a token task's verdicts (one bool per query)."""
    if isinstance(correct, bool):
        return "answer correct" if correct else "answer wrong"
    if isinstance(correct, list) and correct and all(isinstance(item, bool) for item in correct):
        return f"{sum(correct)} of {len(correct)} answers correct"
    return ""


# Exceptions that malformed values in a recording's `extra` raise inside the figure builders.
MALFORMED_EXTRA_ERRORS = (TypeError, KeyError, IndexError, OverflowError, AttributeError, ValueError)


def show_task_input(context: ViewContext) -> None:
    """Draw the task's input and prediction, or a warning when the recording's task fields are malformed.

    `extra` comes from the file's manifest, so an edited or foreign file can put any JSON
    there; the routing views below must still draw.
    """
    try:
        _draw_task_input(context)
    except MALFORMED_EXTRA_ERRORS as error:
        st.warning(
            f"The task description stored in this recording (manifest field 'extra') is malformed "
            f"({type(error).__name__}: {error}), so its input and prediction are not shown. "
            "Record the sample again with `python -m nsm_core record --checkpoint ... --sample N`."
        )


def _draw_task_input(context: ViewContext) -> None:
    extra = context.recording.extra
    answer = answer_at_step(extra, context.playback.step)
    task = extra.get("task", "task")
    verdict = describe_correct(answer.get("correct"))
    st.subheader(f"Task input: {task}" + (f", {verdict}" if verdict else ""))

    left, right = st.columns(2)
    try:
        figure = input_figure({**extra, **answer}, highlight_token=context.playback.token)
    except ValueError as error:
        left.info(str(error))
    else:
        left.plotly_chart(figure, key="task_input")

    probabilities, class_names = answer.get("probabilities"), extra.get("class_names")
    # Only sequence tasks have one probability per class; token tasks answer per query token.
    if extra.get("target_kind") != "sequence" or not probabilities or not class_names:
        return
    try:
        figure = prediction_figure(
            probabilities, class_names, label=answer.get("label"), title=f"Prediction at step {context.playback.step}"
        )
    except ValueError as error:
        right.info(str(error))
    else:
        right.plotly_chart(figure, key="task_prediction")
