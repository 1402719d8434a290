"""Compare two recordings frame by frame, never broadcasting frames of different shapes.

numpy broadcasts some mismatched shapes silently (states [1, D] against [S, D]) and rejects
others with a message that names neither file. Every comparison here first checks that both
frames have the same shape and otherwise raises ShapeMismatchError naming both recordings,
both shapes and the axes that differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nsm_core.recording import Recording
from nsm_core.recording.schema import DIM_NAMES, describe_shape

__all__ = [
    "RoutingComparison", "ShapeMismatchError", "StateComparison", "check_compatible", "check_same_shape",
    "compare_routing", "compare_states",
]


class ShapeMismatchError(ValueError):
    """Two recordings, or two frames, that are compared have different shapes."""


@dataclass(frozen=True)
class StateComparison:
    """States of the second recording against the first at one (step, layer)."""

    step: int
    layer: int
    difference: np.ndarray  # [S, D] second minus first
    distance: np.ndarray  # [S] Euclidean norm of each state's difference
    cosine: np.ndarray  # [S] cosine similarity of each state's two vectors; NaN where either is zero
    max_abs_difference: float | None  # over finite cells; None when no cell is finite
    non_finite: int  # cells of `difference` that are NaN or ±Inf


@dataclass(frozen=True)
class RoutingComparison:
    """Token→state routing of the second recording against the first at one (step, layer)."""

    step: int
    layer: int
    difference: np.ndarray  # [H, T, S] second minus first
    total_variation: np.ndarray  # [H, T] half the L1 distance between a token's two distributions, in [0, 1]
    max_abs_difference: float | None
    non_finite: int


def check_same_shape(
    what: str, first: tuple[str, Sequence[int]], second: tuple[str, Sequence[int]], axes: Sequence[str]
) -> None:
    """Raise ShapeMismatchError unless the shapes of `first` and `second`, each (source, shape), agree.

    `what` names the compared quantity ("states at step 0, layer 1"); `axes` gives the shape
    letters of the schema (S, D, T, H, ...) for the message.
    """
    (source_a, shape_a), (source_b, shape_b) = first, second
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    if shape_a == shape_b:
        return
    differing = [
        f"{DIM_NAMES.get(axis, axis)} ({size_a} vs {size_b})"
        for axis, size_a, size_b in zip(axes, shape_a, shape_b)
        if size_a != size_b
    ]
    raise ShapeMismatchError(
        f"cannot compare {what}: the first recording, {source_a}, has {describe_shape(tuple(axes), shape_a)} "
        f"but the second, {source_b}, has {describe_shape(tuple(axes), shape_b)}. They differ in "
        f"{', '.join(differing)}; compare recordings that agree in these sizes."
    )


def check_compatible(first: Recording, second: Recording, axes: Sequence[str] = ("S", "D")) -> None:
    """Raise ShapeMismatchError unless both recordings have the same size on every axis in `axes`."""
    check_same_shape(
        "the recordings",
        (first.source, [first.dims.get(axis, 0) for axis in axes]),
        (second.source, [second.dims.get(axis, 0) for axis in axes]),
        axes,
    )


def compare_states(first: Recording, second: Recording, step: int, layer: int) -> StateComparison:
    """Compare the states [S, D] of frame (step, layer) of two recordings; layer 0 is the initial states.

    Raises IndexError naming the recording that lacks the frame, and ShapeMismatchError if
    the recordings differ in S or D.
    """
    _check_frame(first, step, layer)
    _check_frame(second, step, layer)
    a, b = first.frame(step, layer).states, second.frame(step, layer).states
    check_same_shape(f"states at step {step}, layer {layer}", (first.source, a.shape), (second.source, b.shape), "SD")

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        difference = b - a
        distance = np.linalg.norm(difference, axis=1)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosine = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), np.nan)
    return StateComparison(step, layer, difference, distance, cosine.astype(np.float32), *_extent(difference))


def compare_routing(first: Recording, second: Recording, step: int, layer: int) -> RoutingComparison:
    """Compare the routing weights [H, T, S] of frame (step, layer) of two recordings (layer ≥ 1).

    Raises ValueError if a recording has no routing or layer is 0, IndexError naming the
    recording that lacks the frame, and ShapeMismatchError if they differ in H, T or S.
    """
    if layer == 0:
        raise ValueError("layer 0 contains only the initial states, so it has no routing; pick a layer from 1 to L.")
    for recording in (first, second):
        if not recording.has("routing"):
            raise ValueError(f"{recording.source} has no routing field (it recorded {recording.fields}).")
        _check_frame(recording, step, layer)
    a, b = first.frame(step, layer).routing, second.frame(step, layer).routing
    check_same_shape(f"routing at step {step}, layer {layer}", (first.source, a.shape), (second.source, b.shape), "HTS")

    with np.errstate(invalid="ignore"):
        difference = b - a
    total_variation = 0.5 * np.abs(difference).sum(axis=-1)
    return RoutingComparison(step, layer, difference, total_variation, *_extent(difference))


def _check_frame(recording: Recording, step: int, layer: int) -> None:
    if not 0 <= step < recording.num_steps:
        raise IndexError(f"step={step} is outside {recording.source}'s steps [0, {recording.num_steps - 1}].")
    if not 0 <= layer <= recording.num_layers:
        raise IndexError(f"layer={layer} is outside {recording.source}'s layers [0, {recording.num_layers}].")


def _extent(difference: np.ndarray) -> tuple[float | None, int]:
    finite = np.isfinite(difference)
    largest = float(np.abs(difference[finite]).max()) if finite.any() else None
    return largest, int(difference.size - finite.sum())
