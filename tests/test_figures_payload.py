"""Figure size: views of a large recording stay under MAX_FIGURE_BYTES and state their reduction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.figures.gates import gate_small_multiples
from app.figures.routing import (
    attention_graph,
    attention_heatmap,
    routing_graph,
    routing_heatmap,
    select_head,
    token_attention_heatmap,
)
from app.figures.states import states_animation, states_heatmap
from app.figures.style import MAX_FIGURE_BYTES, MAX_MARKED_CELLS
from app.figures.summary import drift_figure, entropy_figure, load_figure, timeline_figure
from app.figures.trajectories import projection_paths, trajectory_over_layers, trajectory_over_steps
from nsm_core.analysis import routing_entropy, state_drift, state_load, summarize_recording
from nsm_core.recording import Recording, RecordingWriter

pytestmark = pytest.mark.slow

# P steps, L layers, S states, D dims, T tokens, H heads, G gate channels.
DIMS = {"P": 2, "L": 2, "S": 256, "D": 256, "T": 512, "H": 2, "G": 2, "C": 0}
FIELDS = ["initial_states", "states", "routing", "state_attention", "gates", "importance", "active",
          "token_attention", "token_mask"]
LABELS = ["<s>", "a<b", "é", "🙂", "é(1/2)", "&", "the", " "]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Recording:
    path = tmp_path_factory.mktemp("large") / "large.nsm"
    rng = np.random.default_rng(0)
    num_layers, num_states, dim, num_tokens, heads = (DIMS[axis] for axis in "LSDTH")
    manifest = {
        "token_labels": [[LABELS[t % len(LABELS)] for t in range(num_tokens)] for _ in range(DIMS["P"])],
        "step_labels": ["first <half>", "second half"],
        "gate_names": ["update", "reset"],
        "model": {}, "versions": {}, "created": "now", "extra": {},
    }
    with RecordingWriter(path, DIMS, FIELDS, manifest) as writer:
        for step in range(DIMS["P"]):
            writer.write_step(step, {
                "initial_states": rng.standard_normal((num_states, dim)).astype(np.float32),
                "states": rng.standard_normal((num_layers, num_states, dim)).astype(np.float32),
                "routing": _softmax(3 * rng.standard_normal((num_layers, heads, num_tokens, num_states))),
                "state_attention": _softmax(3 * rng.standard_normal((num_layers, heads, num_states, num_states))),
                "gates": rng.uniform(size=(num_layers, num_states, DIMS["G"])).astype(np.float32),
                "importance": rng.uniform(size=(num_layers, num_states)).astype(np.float32),
                "active": (rng.uniform(size=(num_layers, num_states)) > 0.2).astype(np.uint8),
                "token_attention": _softmax(rng.standard_normal((num_layers, heads, num_tokens, num_tokens))),
                "token_mask": np.ones(num_tokens, dtype=np.uint8),
            })
    return Recording.open(path)


def _views(recording: Recording) -> dict:
    """Return (builder, phrase the subtitle must contain) for each figure of the large recording."""
    frame = recording.frame(0, 2)
    by_layer = recording.states_through_layers(0)  # [L+1, S, D]
    importance = np.concatenate([recording.array("importance")[0][:1], recording.array("importance")[0]])
    active = np.concatenate([recording.array("active")[0][:1], recording.array("active")[0]]).astype(bool)
    routing = select_head(frame.routing)  # [T, S]
    labels = frame.token_labels
    norms = np.stack([np.linalg.norm(recording.states_through_layers(p)[2], axis=1) for p in range(2)])  # [P, S]
    return {
        "states": (lambda: states_heatmap(frame.states, importance=frame.importance, active=frame.active),
                   "mean over blocks of 1 state × 2 dims"),
        "states difference": (lambda: states_heatmap(frame.states, diff_from=by_layer[1]), "mean over blocks"),
        "states animation": (lambda: states_animation(by_layer, importance_by_layer=importance, active_by_layer=active),
                             "mean over blocks of 1 state × 5 dims"),
        "routing": (lambda: routing_heatmap(routing, labels), "mean over blocks of 4 tokens × 1 state"),
        "routing with threshold": (lambda: routing_heatmap(routing, labels, threshold=0.01), "mean over blocks"),
        "routing graph": (lambda: routing_graph(routing, labels, threshold=0.0), "strongest 3000 of"),
        "state attention": (lambda: attention_heatmap(select_head(frame.state_attention)), "mean over blocks"),
        "state attention graph": (lambda: attention_graph(select_head(frame.state_attention), threshold=0.0),
                                  "strongest 3000 of"),
        "token attention": (lambda: token_attention_heatmap(select_head(frame.token_attention), labels),
                            "mean over blocks"),
        "gates": (lambda: gate_small_multiples(recording.array("gates")[0], recording.gate_names), None),
        "trajectory norm": (lambda: trajectory_over_layers(by_layer, "norm"), None),
        "trajectory dim": (lambda: trajectory_over_layers(by_layer, 3), None),
        "trajectory steps": (lambda: trajectory_over_steps(norms, recording.step_labels, "L2 norm (activation)"), None),
        "projection 2D": (lambda: projection_paths(by_layer, 2), None),
        "projection 3D": (lambda: projection_paths(by_layer, 3), None),
        "entropy": (lambda: entropy_figure(routing_entropy(frame.routing), labels, num_states=256), None),
        "load": (lambda: load_figure(state_load(routing), num_tokens=512), None),
        "drift": (lambda: drift_figure(state_drift(by_layer)), None),
        "timeline": (lambda: timeline_figure(summarize_recording(recording), step_labels=recording.step_labels), None),
    }


VIEW_NAMES = [
    "states", "states difference", "states animation", "routing", "routing with threshold", "routing graph",
    "state attention", "state attention graph", "token attention", "gates", "trajectory norm", "trajectory dim",
    "trajectory steps", "projection 2D", "projection 3D", "entropy", "load", "drift", "timeline",
]


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_large_recording_views_fit(recording, name):
    build, reduction = _views(recording)[name]
    fig = build()
    size = len(fig.to_json())
    assert size <= MAX_FIGURE_BYTES, f"{name}: {size} bytes of JSON"
    if reduction is not None:
        assert reduction in fig.layout.title.subtitle.text


def test_view_names_cover_every_view(recording):
    assert sorted(_views(recording)) == sorted(VIEW_NAMES)


def test_many_non_finite_cells_fit():
    rng = np.random.default_rng(1)
    weights = np.where(rng.uniform(size=(200, 200)) < 0.5, np.nan, 0.5).astype(np.float32)  # 40 000 cells
    fig = routing_heatmap(weights, [str(t) for t in range(200)])
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    marked = sum(len(trace.x) for trace in fig.data if trace.type == "scatter")
    assert marked == MAX_MARKED_CELLS
    assert f"NaN/±Inf symbols on the first {MAX_MARKED_CELLS} of" in fig.layout.title.subtitle.text


def test_many_state_lines_subsampled():
    states = np.random.default_rng(2).standard_normal((25, 4096, 2)).astype(np.float32)  # [L+1, S=4096, D]
    fig = trajectory_over_layers(states, "norm")
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    assert len(fig.data) == 256
    assert fig.data[1].name == "state 16"
    assert "1 in 16 states shown (states 0, 16, 32, …: 256 of 4096)" in fig.layout.title.subtitle.text


def test_long_step_axis_averaged():
    values = np.arange(50_000 * 4, dtype=np.float32).reshape(50_000, 4)  # [P, S]
    fig = trajectory_over_steps(values, [f"step {p}" for p in range(50_000)], "value (activation)")
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    # 40 000 points over 4 lines leave 10 000 positions: blocks of 5 steps.
    assert len(fig.data[0].y) == 10_000
    assert fig.data[0].y[0] == pytest.approx(np.mean([0, 4, 8, 12, 16]))
    assert "mean over blocks of 5 steps" in fig.layout.title.subtitle.text


def test_many_projection_paths_subsampled():
    states = np.random.default_rng(3).standard_normal((200, 1024, 3)).astype(np.float32)
    fig = projection_paths(states, 2)
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    # 40 000 points over 200 frames leave 200 paths: every 6th of 1024 states, 171 paths.
    assert len(fig.data) == 171
    assert "1 in 6 states shown" in fig.layout.title.subtitle.text


def test_many_tokens_entropy_averaged():
    entropy = np.linspace(0, 1, 20_000, dtype=np.float32)
    fig = entropy_figure(entropy, [str(t) for t in range(20_000)])
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    assert len(fig.data[0].y) == 2_000
    assert fig.layout.title.subtitle.text == "mean over blocks of 10 tokens"


def test_many_tokens_graph_keeps_connected_nodes():
    weights = np.zeros((20_000, 8), dtype=np.float32)
    weights[::10, 0] = 1.0  # only every 10th token routes anywhere
    fig = routing_graph(weights, ["x"] * 20_000, threshold=0.5)
    assert len(fig.to_json()) <= MAX_FIGURE_BYTES
    tokens = next(trace for trace in fig.data if trace.name == "tokens")
    assert len(tokens.y) == 2_000
    assert "18000 of 20000 tokens without a drawn edge left out" in fig.layout.title.subtitle.text


def test_json_is_valid(recording):
    build, _ = _views(recording)["routing"]
    json.loads(build().to_json())
