"""Principal component projection of state vectors, for drawing their paths in 2D or 3D."""

from __future__ import annotations

import numpy as np

# Eigenvalues below this fraction of the total variance are treated as 0. It sits well above
# float64 rounding (about 1e-16 relative, times the matrix size) and far below real variance.
VARIANCE_NOISE = 1e-12


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
    total = float(np.square(centred).sum())
    if total <= 0:
        raise ValueError(f"all {num_points} points are identical, so there is no direction to project onto.")

    # An eigendecomposition of the smaller of the two Gram matrices gives the same axes as an
    # SVD of the centred points, several times faster for the tall or wide matrices of a
    # recording ((L+1)·S points of D dimensions).
    if num_points >= dim:
        variance, vectors = np.linalg.eigh(centred.T @ centred)  # ascending, vectors [D, D]
        order = np.argsort(variance)[::-1][:components]
        variance, axes = variance[order], vectors[:, order].T  # axes [components, D]
        projected = centred @ axes.T
    else:
        variance, vectors = np.linalg.eigh(centred @ centred.T)  # vectors [N, N]
        order = np.argsort(variance)[::-1][:components]
        # Axes without real variance (see VARIANCE_NOISE) project every point to exactly 0.
        variance = np.where(variance[order] > VARIANCE_NOISE * total, variance[order], 0.0)
        projected = vectors[:, order] * np.sqrt(variance)  # U·Σ of the SVD
        with np.errstate(invalid="ignore", divide="ignore"):
            axes = (centred.T @ vectors[:, order] / np.sqrt(variance)).T  # NaN rows for zero variance
        axes = np.nan_to_num(axes, nan=0.0, posinf=0.0, neginf=0.0)

    # Flip each axis so that its largest-magnitude loading is positive; an axis without
    # variance projects every point to 0 and keeps its sign.
    largest = np.argmax(np.abs(axes), axis=1)
    signs = np.sign(axes[np.arange(components), largest])
    signs[signs == 0] = 1.0
    return projected * signs, np.clip(variance, 0.0, None) / total
