"""Comparing recordings of different shapes raises ShapeMismatchError naming both; none broadcasts."""

from __future__ import annotations

import numpy as np
import pytest

from nsm_core.analysis.compare import (
    ShapeMismatchError,
    check_compatible,
    check_same_shape,
    compare_routing,
    compare_states,
)
from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel
from nsm_core.recording import Recording
from nsm_core.recording.runs import record_nsm
from nsm_core.tokenize import byte_labels, encode_bytes


def _record(path, text="abcdef", **config):
    model = NSMModel(NSMConfig(num_states=8, state_dim=16, token_dim=16, num_layers=2, num_heads=2).replace(**config))
    record_nsm(model.eval(), encode_bytes(text), path, token_labels=byte_labels(text))
    return Recording.open(path)


def test_states_of_8_and_16_states_rejected(tmp_path):
    first = _record(tmp_path / "eight.nsm")
    second = _record(tmp_path / "sixteen.nsm", num_states=16)

    with pytest.raises(ShapeMismatchError) as info:
        compare_states(first, second, step=0, layer=1)
    message = str(info.value)
    assert "the first recording, eight.nsm, has [S=8, D=16]" in message
    assert "the second, sixteen.nsm, has [S=16, D=16]" in message
    assert "states (8 vs 16)" in message


def test_single_state_is_not_broadcast(tmp_path):
    # numpy would broadcast [1, D] against [S, D] without a word.
    first = _record(tmp_path / "one.nsm", num_states=1)
    second = _record(tmp_path / "eight.nsm")

    with pytest.raises(ShapeMismatchError, match=r"\[S=1, D=16\].*\[S=8, D=16\]"):
        compare_states(first, second, step=0, layer=2)
    with pytest.raises(ShapeMismatchError):
        compare_states(second, first, step=0, layer=0)


def test_routing_of_6_and_9_tokens_rejected(tmp_path):
    first = _record(tmp_path / "six.nsm", text="abcdef")
    second = _record(tmp_path / "nine.nsm", text="abcdefghi")

    with pytest.raises(ShapeMismatchError) as info:
        compare_routing(first, second, step=0, layer=1)
    message = str(info.value)
    assert "six.nsm, has [H=2, T=6, S=8]" in message
    assert "nine.nsm, has [H=2, T=9, S=8]" in message
    assert "tokens (6 vs 9)" in message
    compare_states(first, second, step=0, layer=1)  # the states still agree in shape


def test_same_shapes_compare_exactly(tmp_path):
    first = _record(tmp_path / "a.nsm", seed=0)
    second = _record(tmp_path / "b.nsm", seed=1)
    a, b = first.frame(0, 2), second.frame(0, 2)

    states = compare_states(first, second, step=0, layer=2)
    routing = compare_routing(first, second, step=0, layer=2)

    assert np.array_equal(states.difference, b.states - a.states)
    assert np.allclose(states.distance, np.linalg.norm(b.states - a.states, axis=1), rtol=1e-6)
    assert states.max_abs_difference == float(np.abs(b.states - a.states).max())
    assert states.non_finite == 0
    assert np.array_equal(routing.difference, b.routing - a.routing)
    assert routing.total_variation.shape == (2, 6)
    assert ((routing.total_variation >= 0) & (routing.total_variation <= 1 + 1e-6)).all()


def test_recording_against_itself_is_identical(tmp_path):
    recording = _record(tmp_path / "a.nsm")
    comparison = compare_states(recording, recording, step=0, layer=1)

    assert not comparison.difference.any()
    assert comparison.max_abs_difference == 0.0
    assert np.allclose(comparison.cosine, 1.0, atol=1e-6)


def test_missing_frame_names_recording(tmp_path):
    first = _record(tmp_path / "two-layers.nsm")
    second = _record(tmp_path / "one-layer.nsm", num_layers=1)

    with pytest.raises(IndexError, match=r"layer=2 is outside one-layer.nsm's layers \[0, 1\]"):
        compare_states(first, second, step=0, layer=2)
    with pytest.raises(IndexError, match="step=1 is outside two-layers.nsm's steps"):
        compare_states(first, second, step=1, layer=0)


def test_routing_needs_a_layer(tmp_path):
    recording = _record(tmp_path / "a.nsm")

    with pytest.raises(ValueError, match="layer 0 contains only the initial states"):
        compare_routing(recording, recording, step=0, layer=0)


def test_check_compatible_names_both_recordings(tmp_path):
    first = _record(tmp_path / "a.nsm")
    second = _record(tmp_path / "b.nsm", state_dim=32, token_dim=32)

    check_compatible(first, first)
    with pytest.raises(ShapeMismatchError, match=r"a.nsm, has \[S=8, D=16\].*b.nsm, has \[S=8, D=32\]"):
        check_compatible(first, second)


def test_check_same_shape_accepts_equal_shapes():
    check_same_shape("x", ("a", (2, 3)), ("b", [2, 3]), "SD")
    with pytest.raises(ShapeMismatchError, match="state dim \\(3 vs 4\\)"):
        check_same_shape("x", ("a", (2, 3)), ("b", (2, 4)), "SD")
