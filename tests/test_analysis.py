"""Recording analysis: entropy, load, dead, duplicate and collapsed states, drift, PCA, summary table."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from nsm_core.analysis import (
    count_non_finite,
    dead_states,
    near_duplicate_states,
    pca_project,
    routing_collapse,
    routing_entropy,
    state_drift,
    state_load,
    summarize_recording,
)
from nsm_core.recording import Recording, RecordingWriter

LN2 = math.log(2)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # NaN-safe means no RuntimeWarning either.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize(
    ("row", "entropy"),
    [
        ([1.0, 0.0, 0.0], 0.0),  # one-hot
        ([0.5, 0.5, 0.0], LN2),
        ([1 / 3, 1 / 3, 1 / 3], math.log(3)),  # uniform: ln S
        ([0.25, 0.25, 0.5], 1.5 * LN2),  # −(2 · 0.25 · ln 0.25 + 0.5 · ln 0.5) = 0.5 ln 4 + 0.5 ln 2
        ([2.0, 2.0, 0.0], LN2),  # normalised first: (0.5, 0.5, 0)
    ],
)
def test_routing_entropy_hand_computed(row, entropy):
    result = routing_entropy(np.array([row], dtype=np.float32))
    assert result.shape == (1,)
    assert result[0] == pytest.approx(entropy, abs=1e-6)


@pytest.mark.parametrize("row", [[np.nan, 1.0], [np.inf, 0.0], [-0.5, 1.5], [0.0, 0.0]])
def test_routing_entropy_invalid_row_is_nan(row):
    result = routing_entropy(np.array([row, [0.5, 0.5]]))
    assert math.isnan(result[0])
    assert result[1] == pytest.approx(LN2)


def test_routing_entropy_mean_over_heads():
    weights = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])  # [H=2, T=1, S=2]
    # Head 0 is one-hot (0 nats), head 1 uniform (ln 2): the mean is ln 2 / 2.
    assert routing_entropy(weights)[0] == pytest.approx(LN2 / 2)


def test_routing_entropy_empty_and_shape_errors():
    assert routing_entropy(np.zeros((0, 4))).shape == (0,)
    assert np.isnan(routing_entropy(np.zeros((0, 2, 3)))).all()
    with pytest.raises(ValueError, match=r"\[T, S\] or \[H, T, S\], got shape \(3,\)"):
        routing_entropy(np.zeros(3))


def test_state_load_sums_over_tokens():
    weights = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
    # State 0: 0.7 + 0.2 + 0.5 = 1.4; state 1: 0.3 + 0.8 + 0.5 = 1.6.
    np.testing.assert_allclose(state_load(weights), [1.4, 1.6], rtol=1e-6)


def test_state_load_averages_heads_first():
    weights = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # [H=2, T=1, S=2]
    np.testing.assert_allclose(state_load(weights), [0.5, 0.5])


def test_state_load_non_finite_column_is_nan():
    load = state_load(np.array([[np.nan, 1.0], [0.5, 0.5]]))
    assert math.isnan(load[0])
    assert load[1] == 1.5


def test_dead_states_below_tolerance():
    load = np.array([0.0, 0.0005, 0.5, np.nan, 0.001])
    assert dead_states(load, tolerance=1e-3) == [0, 1, 4]
    assert dead_states(load, tolerance=0.0) == [0]


@pytest.mark.parametrize("tolerance", [-1.0, float("nan"), "0.1"])
def test_dead_states_rejects_invalid_tolerance(tolerance):
    with pytest.raises(ValueError, match="tolerance="):
        dead_states(np.zeros(2), tolerance)


def test_near_duplicate_states_cosine():
    states = np.array([[1.0, 0.0], [2.0, 0.01], [0.0, 1.0], [0.0, 0.0], [np.nan, 1.0], [-1.0, 0.0]])
    pairs = near_duplicate_states(states, cosine_threshold=0.98)
    # cos(state 0, state 1) = 2 / √4.0001 = 0.9999875; state 5 points the opposite way (−1),
    # state 3 has no direction and state 4 has a NaN.
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert pairs[0][2] == pytest.approx(2 / math.sqrt(4.0001))


def test_near_duplicate_states_ordered_pairs():
    states = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert near_duplicate_states(states) == [(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0)]


def test_near_duplicate_states_rejects_invalid_threshold():
    with pytest.raises(ValueError, match="cosine_threshold=1.5"):
        near_duplicate_states(np.eye(2), 1.5)


def test_routing_collapse_top_share():
    weights = np.array([[0.9, 0.1], [0.8, 0.2]])
    # Load (1.7, 0.3) of total 2: state 0 takes 0.85 of the mass.
    collapsed, top_state, share = routing_collapse(weights, share=0.5)
    assert collapsed is True
    assert top_state == 0
    assert share == pytest.approx(0.85)
    assert routing_collapse(weights, share=0.9)[0] is False


def test_routing_collapse_even_split_is_not_collapse():
    assert routing_collapse(np.array([[0.5, 0.5]]), share=0.5) == (False, 0, 0.5)


def test_routing_collapse_single_state_never_collapses():
    assert routing_collapse(np.ones((3, 1))) == (False, 0, 1.0)


def test_routing_collapse_undefined_without_tokens_or_with_nan():
    for weights in (np.zeros((0, 3)), np.array([[np.nan, 1.0]])):
        collapsed, top_state, share = routing_collapse(weights)
        assert collapsed is False
        assert top_state is None
        assert math.isnan(share)


@pytest.mark.parametrize("share", [0.0, 1.5, float("nan")])
def test_routing_collapse_rejects_invalid_share(share):
    with pytest.raises(ValueError, match="share="):
        routing_collapse(np.eye(2), share)


def test_state_drift_norm_of_change():
    states = np.array([[[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [1.0, 1.0]], [[3.0, 4.0], [1.0, 2.0]]])
    # State 0 moves by |(3, 4)| = 5 then 0; state 1 by 0 then |(0, 1)| = 1.
    np.testing.assert_allclose(state_drift(states), [[5.0, 0.0], [0.0, 1.0]])
    assert state_drift(states[:1]).shape == (0, 2)


def test_state_drift_non_finite_is_nan():
    drift = state_drift(np.array([[[np.inf]], [[np.inf]]]))
    assert math.isnan(drift[0, 0])


def test_count_non_finite():
    assert count_non_finite(np.array([np.nan, np.inf, -np.inf, 1.0, np.nan])) == {"nan": 2, "posinf": 1, "neginf": 1}
    assert count_non_finite(np.arange(3)) == {"nan": 0, "posinf": 0, "neginf": 0}


def test_pca_project_hand_computed():
    points = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    projected, ratio = pca_project(points, 2)
    # The mean is 0. Squared spread is 8 along y and 2 along x, so PC1 = y (0.8 of the
    # variance) and PC2 = x (0.2), each with a positive largest loading.
    np.testing.assert_allclose(ratio, [0.8, 0.2])
    np.testing.assert_allclose(projected[:, 0], [0.0, 0.0, 2.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(projected[:, 1], [1.0, -1.0, 0.0, 0.0], atol=1e-12)


def test_pca_project_sign_is_stable():
    points = np.random.default_rng(0).standard_normal((10, 4))
    first, _ = pca_project(points, 3)
    second, _ = pca_project(points[::-1].copy(), 3)
    np.testing.assert_allclose(first[::-1], second, atol=1e-9)


@pytest.mark.parametrize("shape", [(40, 6), (6, 40)])  # more points than dims, and fewer
def test_pca_project_matches_svd(shape):
    points = np.random.default_rng(4).standard_normal(shape)
    projected, ratio = pca_project(points, 3)
    centred = points - points.mean(axis=0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    # Equal up to each axis's sign, which pca_project fixes by its own rule; tolerance 1e-9.
    np.testing.assert_allclose(np.abs(projected), np.abs(left[:, :3] * singular[:3]), atol=1e-9)
    np.testing.assert_allclose(ratio, singular[:3] ** 2 / np.sum(singular**2), atol=1e-12)


def test_pca_project_component_without_variance():
    # Three points span a plane, so the third axis carries no variance.
    points = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    projected, ratio = pca_project(points, 3)
    assert ratio[2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(projected[:, 2], 0.0, atol=1e-12)
    assert ratio.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("points", "components", "message"),
    [
        (np.ones((2, 4)) * [[1], [2]], 3, "needs at least 3 points, got 2"),
        (np.arange(10.0).reshape(5, 2), 3, "have 2 dimension"),
        (np.ones((4, 3)), 2, "all 4 points are identical"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), 2, "NaN or ±Inf"),
        (np.ones((3, 3)), 0, "components=0"),
        (np.ones(3), 2, r"\[N, D\]"),
    ],
)
def test_pca_project_says_why_impossible(points, components, message):
    with pytest.raises(ValueError, match=message):
        pca_project(points, components)


# summarize_recording ---------------------------------------------------------------------


def _write_recording(path) -> Recording:
    """Write P=2 steps, L=2 layers, S=3 states, D=2, T=3 tokens (step 1 has 2 real), H=1."""
    dims = {"P": 2, "L": 2, "S": 3, "D": 2, "T": 3, "H": 1, "G": 0, "C": 0}
    fields = ["initial_states", "states", "routing", "importance", "active", "token_mask"]
    manifest = {
        "token_labels": [["a", "b", "c"], ["d", "e", ""]],
        "step_labels": ["first", "second"],
        "gate_names": [],
        "model": {},
        "versions": {},
        "created": "now",
        "extra": {},
    }
    initial = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    states = np.array(
        [
            [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]],  # layer 1: states 0 and 1 point the same way
            [[1.0, 0.0], [0.0, 3.0], [-1.0, 0.5]],  # layer 2
        ],
        dtype=np.float32,
    )
    routing = np.zeros((2, 1, 3, 3), dtype=np.float32)  # [L, H, T, S]
    routing[0, 0] = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]  # state 2 gets nothing
    routing[1, 0] = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]  # state 0 takes 2 of 3
    importance = np.array([[0.2, 0.5, 0.9], [0.1, 0.6, 0.3]], dtype=np.float32)
    active = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.uint8)

    second_states = states.copy()
    second_states[1, 2, 0] = np.nan
    second_routing = routing.copy()
    second_routing[:, :, 2] = 1.0  # the padding token, which must not count
    with RecordingWriter(path, dims, fields, manifest) as writer:
        writer.write_step(0, {"initial_states": initial, "states": states, "routing": routing,
                              "importance": importance, "active": active,
                              "token_mask": np.array([1, 1, 1], dtype=np.uint8)})
        writer.write_step(1, {"initial_states": initial, "states": second_states, "routing": second_routing,
                              "importance": importance, "active": active,
                              "token_mask": np.array([1, 1, 0], dtype=np.uint8)})
    return Recording.open(path)


@pytest.fixture
def recording(tmp_path) -> Recording:
    return _write_recording(tmp_path / "summary.nsm")


def _row(table, step, layer, state):
    # Read the "flags" column as row["flags"], because row.flags is a pandas attribute.
    rows = table[(table.step == step) & (table.layer == layer) & (table.state == state)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_summary_one_row_per_step_layer_state(recording):
    table = summarize_recording(recording)
    assert len(table) == 2 * 3 * 3  # P × (L+1) × S
    assert list(table.columns) == [
        "step", "step_label", "layer", "state", "norm", "drift", "importance", "active", "load", "load_share",
        "non_finite", "dead", "collapsed_onto", "duplicate_of", "flags",
    ]
    assert set(summarize_recording(recording, step=1).step) == {1}


def test_summary_layer_zero_has_no_routing(recording):
    row = _row(summarize_recording(recording, 0), 0, 0, 2)
    assert row.norm == pytest.approx(math.sqrt(2))
    assert math.isnan(row.drift)
    assert math.isnan(row.load)
    assert row.active is pd.NA
    assert row["flags"] == ""


def test_summary_dead_and_duplicate_flags(recording):
    table = summarize_recording(recording, 0)
    dead = _row(table, 0, 1, 2)
    assert dead.load == 0.0
    assert bool(dead.dead) is True
    assert dead["flags"] == "dead"
    assert bool(dead.active) is False
    duplicate = _row(table, 0, 1, 0)
    assert duplicate.duplicate_of == "1"
    assert duplicate["flags"] == "duplicate"
    # State 0 went from (1, 0) to (1, 0): no drift. State 1 from (0, 1) to (2, 0): √(4 + 1).
    assert duplicate.drift == 0.0
    assert _row(table, 0, 1, 1).drift == pytest.approx(math.sqrt(5))


def test_summary_collapse_flag_and_load_share(recording):
    table = summarize_recording(recording, 0)
    top = _row(table, 0, 2, 0)
    # Layer 2 loads: state 0 gets 1 + 1 + 0 = 2 of 3 tokens' mass.
    assert top.load == pytest.approx(2.0)
    assert top.load_share == pytest.approx(2 / 3)
    assert bool(top.collapsed_onto) is True
    assert top["flags"] == "collapse"
    assert bool(_row(table, 0, 2, 1).collapsed_onto) is False


def test_summary_counts_only_real_tokens(recording):
    table = summarize_recording(recording, 1)
    # Step 1 has 2 real tokens, and the padding row of ones is left out. Layer 2 loads are
    # then (2, 0, 0).
    assert _row(table, 1, 2, 0).load == pytest.approx(2.0)
    assert _row(table, 1, 2, 2).load == 0.0


def test_summary_non_finite_state(recording):
    row = _row(summarize_recording(recording, 1), 1, 2, 2)
    assert row.non_finite == 1
    assert math.isnan(row.norm)
    assert "non-finite" in row["flags"]


def test_summary_rejects_invalid_step(recording):
    with pytest.raises(ValueError, match=r"step=5 is outside \[0, 1\]"):
        summarize_recording(recording, 5)


def test_summary_csv_round_trip(recording, tmp_path):
    table = summarize_recording(recording)
    text = table.to_csv(index=False)
    assert text.splitlines()[0].startswith("step,step_label,layer,state,norm")
    assert len(text.splitlines()) == len(table) + 1
