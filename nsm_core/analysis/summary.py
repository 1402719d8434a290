"""Health checks of a recording: routing entropy and load, dead, duplicate and collapsed states, drift.

Pure numpy on the arrays of one frame or step, plus ``summarize_recording`` that applies them
to every (step, layer) of a recording and returns one table row per state. Shapes use the
letters of the recording schema: T tokens, S states, D state dim, H heads, L layers.

A NaN or ±Inf input raises no error in this module. A quantity that depends on one is NaN,
and ``count_non_finite`` reports how many there were.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # importing the recording package imports torch, which this module does not need
    from nsm_core.recording.reader import Recording

logger = logging.getLogger(__name__)

DEAD_TOLERANCE = 1e-3  # routing mass summed over tokens; below a thousandth of one token's weight
DUPLICATE_COSINE = 0.98
COLLAPSE_SHARE = 0.5

FLAG_NAMES = ("non-finite", "dead", "collapse", "duplicate")
SUMMARY_COLUMNS = [
    "step", "step_label", "layer", "state", "norm", "drift", "importance", "active", "load", "load_share",
    "non_finite", "dead", "collapsed_onto", "duplicate_of", "flags",
]


def count_non_finite(array: np.ndarray) -> dict[str, int]:
    """Return how many values of `array` are NaN, +Inf and −Inf."""
    values = np.asarray(array)
    if not np.issubdtype(values.dtype, np.floating):
        return {"nan": 0, "posinf": 0, "neginf": 0}
    return {
        "nan": int(np.isnan(values).sum()),
        "posinf": int(np.isposinf(values).sum()),
        "neginf": int(np.isneginf(values).sum()),
    }


def routing_entropy(weights: np.ndarray) -> np.ndarray:
    """Return the entropy in nats of each token's routing distribution: [T] from [T, S] or [H, T, S].

    Each row is normalised to sum to 1 first, and 0 · log 0 counts as 0, so a one-hot row has
    entropy 0 and a uniform row ln S. With heads, the result is the mean of the heads'
    entropies. A row with a NaN, ±Inf or negative weight, or with zero sum, gives NaN.
    """
    values = _as_float64(weights, "weights")
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"weights must be [T, S] or [H, T, S], got shape {values.shape}.")
    num_heads, num_tokens, _ = values.shape
    if num_heads == 0:
        return np.full(num_tokens, np.nan, dtype=np.float32)

    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    totals = clean.sum(axis=-1)  # [H, T]
    valid = finite.all(axis=-1) & (clean >= 0).all(axis=-1) & (totals > 0)
    probabilities = clean / np.where(valid, totals, 1.0)[..., None]
    # log(1) = 0 makes 0 · log 0 count as 0 without a warning.
    terms = -probabilities * np.log(np.where(probabilities > 0, probabilities, 1.0))
    entropy = np.where(valid, terms.sum(axis=-1), np.nan)  # [H, T]
    return entropy.mean(axis=0).astype(np.float32)


def state_load(weights: np.ndarray) -> np.ndarray:
    """Return each state's routing mass, the sum of its weights over tokens: [S] from [T, S] or [H, T, S].

    With heads, weights are averaged over heads first. A state with any NaN or ±Inf weight
    gets NaN. Balanced routing gives every state T / S.
    """
    values = _as_float64(weights, "weights")
    if values.ndim == 3:
        if values.shape[0] == 0:
            return np.full(values.shape[2], np.nan, dtype=np.float32)
        values = values.mean(axis=0)
    if values.ndim != 2:
        raise ValueError(f"weights must be [T, S] or [H, T, S], got shape {values.shape}.")
    with np.errstate(invalid="ignore", over="ignore"):
        load = values.sum(axis=0)
    return np.where(np.isfinite(values).all(axis=0), load, np.nan).astype(np.float32)


def dead_states(load: np.ndarray, tolerance: float = DEAD_TOLERANCE) -> list[int]:
    """Return the states whose load is at most `tolerance`: no token routes to them.

    A state with NaN load is not listed, because its load is unknown.
    """
    values = _as_float64(load, "load")
    if values.ndim != 1:
        raise ValueError(f"load must be [S], got shape {values.shape}.")
    if not _is_number(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} is invalid; pass a finite number ≥ 0 (routing mass).")
    return [int(s) for s in np.flatnonzero(np.isfinite(values) & (values <= tolerance))]


def near_duplicate_states(
    states: np.ndarray, cosine_threshold: float = DUPLICATE_COSINE
) -> list[tuple[int, int, float]]:
    """Return the pairs (i, j, cosine) with i < j whose states [S, D] have cosine ≥ cosine_threshold.

    Pairs are ordered by i, then j. States with a zero norm or a NaN/±Inf value are skipped,
    because their direction is undefined.
    """
    values = _as_float64(states, "states")
    if values.ndim != 2:
        raise ValueError(f"states must be [S, D], got shape {values.shape}.")
    if not _is_number(cosine_threshold) or not -1.0 <= cosine_threshold <= 1.0:
        raise ValueError(f"cosine_threshold={cosine_threshold!r} is invalid; pass a number in [-1, 1].")

    norms = np.linalg.norm(np.where(np.isfinite(values), values, 0.0), axis=1)
    usable = np.isfinite(values).all(axis=1) & (norms > 0)
    indices = np.flatnonzero(usable)
    if indices.size < 2:
        return []
    unit = values[indices] / norms[indices, None]
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)  # [S', S']

    pairs = []
    for a, b in zip(*np.nonzero(np.triu(cosine >= cosine_threshold, k=1))):
        pairs.append((int(indices[a]), int(indices[b]), float(cosine[a, b])))
    return pairs


def routing_collapse(weights: np.ndarray, share: float = COLLAPSE_SHARE) -> tuple[bool, int | None, float]:
    """Check whether one state takes more than `share` of all routing mass: (collapsed, top_state, top_share).

    weights is [T, S] or [H, T, S]. top_share is the largest state's fraction of the total.
    The comparison is strict, so two states splitting the mass evenly do not count as a
    collapse at share=0.5. With one state there is nothing to collapse onto, so collapsed
    is False. Without tokens, or with any NaN/±Inf load, the result is (False, None, NaN).
    """
    if not _is_number(share) or not 0.0 < share <= 1.0:
        raise ValueError(f"share={share!r} is invalid; pass a fraction in (0, 1].")
    load = state_load(weights).astype(np.float64)
    total = load.sum()
    if load.size == 0 or not np.isfinite(load).all() or total <= 0:
        return False, None, math.nan
    top_state = int(np.argmax(load))
    top_share = float(load[top_state] / total)
    return load.size >= 2 and top_share > share, top_state, top_share


def state_drift(states_by_layer: np.ndarray) -> np.ndarray:
    """Return how far each state moves in each layer: the L2 norm of h_l − h_(l−1), [L, S] from [L+1, S, D]."""
    values = _as_float64(states_by_layer, "states_by_layer")
    if values.ndim != 3:
        raise ValueError(f"states_by_layer must be [L+1, S, D], got shape {values.shape}.")
    with np.errstate(invalid="ignore", over="ignore"):
        return np.linalg.norm(np.diff(values, axis=0), axis=-1).astype(np.float32)


def summarize_recording(
    recording: Recording,
    step: int | None = None,
    *,
    dead_tolerance: float = DEAD_TOLERANCE,
    cosine_threshold: float = DUPLICATE_COSINE,
    collapse_share: float = COLLAPSE_SHARE,
) -> pd.DataFrame:
    """Tabulate every state of every layer of `step` (or of every step, for None) with its flags.

    One row per (step, layer, state); layer 0 is the initial states, which have no routing,
    drift or importance. Columns: step, step_label, layer, state, norm, drift, importance,
    active, load, load_share, non_finite, dead, collapsed_onto, duplicate_of and flags.
    `flags` joins the names in FLAG_NAMES that apply, with "; ". Routing is averaged over
    heads, over the step's real tokens only.
    """
    if step is None:
        steps = range(recording.num_steps)
    elif isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < recording.num_steps:
        raise ValueError(f"step={step!r} is outside [0, {recording.num_steps - 1}]; pass a step index or None for all.")
    else:
        steps = [int(step)]

    rows: list[dict] = []
    for current in steps:
        rows.extend(
            _summarize_step(recording, current, dead_tolerance, cosine_threshold, collapse_share)
        )
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["active"] = table["active"].astype("boolean")
    logger.debug("summarized %s: %d rows", recording.source, len(table))
    return table



def _summarize_step(recording: Recording, step: int, dead_tolerance: float, cosine_threshold: float, collapse_share: float):
    states = recording.states_through_layers(step)  # [L+1, S, D]
    num_layers, num_states = recording.num_layers, recording.num_states
    drift = state_drift(states)  # [L, S]
    routing = _real_token_routing(recording, step)  # [L, H, T', S] or None
    importance = _per_layer(recording, "importance", step)  # [L, S] or None
    active = _per_layer(recording, "active", step)

    rows = []
    for layer in range(num_layers + 1):
        layer_states = states[layer]
        non_finite = (~np.isfinite(layer_states)).sum(axis=1)
        partners: dict[int, list[int]] = {s: [] for s in range(num_states)}
        for first, second, _ in near_duplicate_states(layer_states, cosine_threshold):
            partners[first].append(second)
            partners[second].append(first)

        load = np.full(num_states, np.nan)
        dead: list[int] = []
        collapsed, top_state = False, None
        if layer > 0 and routing is not None and routing.shape[2] > 0:
            load = state_load(routing[layer - 1]).astype(np.float64)
            dead = dead_states(load, dead_tolerance)
            collapsed, top_state, _ = routing_collapse(routing[layer - 1], collapse_share)
        total = load.sum()

        for s in range(num_states):
            flags = []
            if non_finite[s]:
                flags.append("non-finite")
            if s in dead:
                flags.append("dead")
            if collapsed and s == top_state:
                flags.append("collapse")
            if partners[s]:
                flags.append("duplicate")
            rows.append(
                {
                    "step": step,
                    "step_label": recording.step_labels[step],
                    "layer": layer,
                    "state": s,
                    "norm": float(np.linalg.norm(layer_states[s])) if not non_finite[s] else math.nan,
                    "drift": float(drift[layer - 1, s]) if layer > 0 else math.nan,
                    "importance": float(importance[layer - 1, s]) if layer > 0 and importance is not None else math.nan,
                    "active": bool(active[layer - 1, s]) if layer > 0 and active is not None else None,
                    "load": float(load[s]),
                    "load_share": float(load[s] / total) if np.isfinite(total) and total > 0 else math.nan,
                    "non_finite": int(non_finite[s]),
                    "dead": s in dead,
                    "collapsed_onto": bool(collapsed and s == top_state),
                    "duplicate_of": ", ".join(str(partner) for partner in partners[s]),
                    "flags": "; ".join(flags),
                }
            )
    return rows


def _real_token_routing(recording: Recording, step: int) -> np.ndarray | None:
    if not recording.has("routing"):
        return None
    routing = np.asarray(recording.array("routing")[step], dtype=np.float32)  # [L, H, T, S]
    if recording.has("token_mask"):
        mask = recording.array("token_mask")[step].astype(bool)
        routing = routing[:, :, mask, :]
    return routing


def _per_layer(recording: Recording, name: str, step: int) -> np.ndarray | None:
    if not recording.has(name):
        return None
    return np.asarray(recording.array(name)[step])


def _as_float64(value: object, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array; converting it failed: {error}") from None


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )
