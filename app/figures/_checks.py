"""Argument checks shared by the builders; each error names the argument, the value and the fix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.figures.style import count_kinds, describe_non_finite


def as_array(name: str, value: object, axes: str) -> np.ndarray:
    """Return `value` as a float32 array with len(axes) dimensions, e.g. axes="TS" for [T, S]."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array [{', '.join(axes)}]; converting it failed: {error}") from None
    if array.ndim != len(axes):
        raise ValueError(
            f"{name} must have {len(axes)} dimensions [{', '.join(axes)}], got shape {array.shape}."
        )
    return array


def check_labels(name: str, labels: Sequence[str], count: int, axis: str) -> list[str]:
    """Return `labels` as a list of str; raise if there is not exactly one per entry of the axis."""
    if isinstance(labels, str):
        raise ValueError(f"{name} must be a list of strings, one per {axis}, not a single string.")
    labels = [str(label) for label in labels]
    if len(labels) != count:
        raise ValueError(f"{name} has {len(labels)} labels but the matrix has {count} {axis}s; pass one per {axis}.")
    return labels


def check_fraction(name: str, value: float, *, allow_none: bool = False) -> float | None:
    """Return `value` if it is a finite number in [0, 1]."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid; pass a number in [0, 1].")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}={value!r} is outside [0, 1]; weights are probabilities, so pass a value in [0, 1].")
    return float(value)


def check_top_k(top_k: int | None) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k={top_k!r} is invalid; pass a positive integer, or None to keep every edge.")
    return int(top_k)


def no_data_message(array: np.ndarray, description: str) -> str | None:
    """Return "no data: …" if `array` has no finite value, else None."""
    if np.isfinite(array).any():
        return None
    if array.size == 0:
        return f"no data: the {description} is empty."
    counts = describe_non_finite(*count_kinds(array))
    return f"no data: all {array.size} values of the {description} are NaN or ±Inf ({counts})."


def outside_note(array: np.ndarray, low: float, high: float) -> str | None:
    """Return a note naming the finite values outside [low, high], which the colour scale clips."""
    finite = array[np.isfinite(array)]
    outside = finite[(finite < low) | (finite > high)]
    if outside.size == 0:
        return None
    return (
        f"{outside.size} values outside [{low:g}, {high:g}] (min {finite.min():.4g}, max {finite.max():.4g}) "
        "are drawn in the end colours"
    )
