"""Principal component projection of state vectors, for drawing their paths in 2D or 3D."""

from __future__ import annotations

import numpy as np


def pca_project(points: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Project points [N, D] onto their first `components` principal axes.

    Returns (projected [N, components], explained_variance_ratio [components]), both float64.
    Each axis's sign is fixed so that its largest-magnitude loading is positive, which keeps
    the picture stable when the same data is projected again. Raises ValueError, with the
    reason, when the points cannot support that many components: a NaN/±Inf coordinate,
    fewer than `components` points or dimensions, or points that are all identical.
    """
    values = np.asarray(points, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"points must be [N, D], got shape {values.shape}.")
    if isinstance(components, bool) or not isinstance(components, (int, np.integer)) or components < 1:
        raise ValueError(f"components={components!r} is invalid; pass a positive integer such as 2 or 3.")
    num_points, dim = values.shape
    if not np.isfinite(values).all():
        raise ValueError("points contain NaN or ±Inf; drop those points before projecting.")
    if num_points < components:
        raise ValueError(
            f"a {components}-component projection needs at least {components} points, got {num_points}."
        )
    if dim < components:
        raise ValueError(
            f"the points have {dim} dimension(s), so they have no {components} principal axes; "
            f"use {dim} component(s) or fewer."
        )

    centred = values - values.mean(axis=0)
    _, singular_values, axes = np.linalg.svd(centred, full_matrices=False)  # axes [min(N, D), D]
    variance = singular_values**2
    if variance.sum() <= 0:
        raise ValueError(f"all {num_points} points are identical, so there is no direction to project onto.")

    axes = axes[:components]
    largest = np.argmax(np.abs(axes), axis=1)
    axes *= np.sign(axes[np.arange(components), largest])[:, None]
    return centred @ axes.T, variance[:components] / variance.sum()
