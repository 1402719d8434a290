"""Awkward values and sizes: NaN and ±Inf, constant and empty matrices, tiny shapes, odd labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nsm_core.cli.inspect import summarise
from nsm_core.cli.main import main
from nsm_core.recording import Adapter, Recording, RecordingWriter, record
from nsm_core.recording.labels import legible_text
from nsm_core.recording.stats import field_stats, non_finite_warnings, recording_stats


class MaskedRouter(nn.Module):
    """Routes T tokens [1, T, D] onto S states; tokens listed in `blocked` may use no state.

    A blocked token's logits are all -inf, so its softmax row is NaN, as in a model whose
    state mask leaves a token with no active state.
    """

    def __init__(self, num_states: int = 4, dim: int = 3, blocked: tuple[int, ...] = (1,)) -> None:
        super().__init__()
        self.memory = nn.Parameter(torch.randn(num_states, dim))
        self.blocked = blocked
        self.router = nn.Softmax(dim=-1)
        self.cell = nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = tokens @ self.memory.T  # [1, T, S]
        logits[:, list(self.blocked)] = float("-inf")
        weights = self.router(logits)
        return self.cell(weights.nan_to_num().transpose(1, 2) @ tokens)  # [1, S, D]


ROUTER_ADAPTER = Adapter(states="cell", routing="router")


def _record_masked(path, labels=("a", "b", "c"), **kwargs):
    torch.manual_seed(0)
    model = MaskedRouter(**kwargs)
    tokens = torch.randn(1, len(labels), 3)
    with torch.no_grad():
        record(model, lambda step, carry: model(tokens), 1, path, adapter=ROUTER_ADAPTER, token_labels=[list(labels)])
    return Recording.open(path)


# NaN and ±Inf -----------------------------------------------------------------------------------------


def test_token_with_every_state_masked_is_counted(tmp_path):
    recording = _record_masked(tmp_path / "masked.nsm")
    routing = recording.frame(0, 1).routing  # [H=1, T=3, S=4]
    stats = field_stats(recording, "routing")

    assert np.isnan(routing[0, 1]).all()
    assert np.allclose(routing[0, [0, 2]].sum(axis=-1), 1.0, atol=1e-6)
    assert stats.nan == 4  # one token row of S=4 weights
    assert stats.posinf == stats.neginf == 0
    assert stats.count == 12
    assert stats.first_non_finite == (0, 1)
    assert 0.0 <= stats.min <= stats.max <= 1.0  # the range ignores the NaN row


def test_summary_names_non_finite_fields(tmp_path):
    recording = _record_masked(tmp_path / "masked.nsm")
    summary = summarise(recording)

    assert summary["value_ranges"]["routing"]["nan"] == 4
    assert summary["value_ranges"]["states"]["nan"] == 0
    routing_warnings = [warning for warning in summary["warnings"] if warning.startswith("routing")]
    assert routing_warnings == [
        "routing has 4 NaN, 0 +Inf and 0 -Inf values (first at step 0, layer 1). A NaN row means every "
        "entry of a softmax was masked, for example a token with no active state."
    ]


def test_missing_initial_states_reported_as_not_recorded(tmp_path):
    recording = _record_masked(tmp_path / "masked.nsm")  # the adapter names no initial_states module
    warnings = non_finite_warnings(recording, recording_stats(recording))

    assert any(warning.startswith("initial_states were not recorded") for warning in warnings)


def _write(path, routing, states=None, token_mask=None):
    """Write a one-step, one-layer recording with the given routing [H, T, S]."""
    heads, tokens, num_states = routing.shape
    dims = {"P": 1, "L": 1, "S": num_states, "D": 2, "T": tokens, "H": heads}
    manifest = {"token_labels": [[f"t{t}" for t in range(tokens)]], "step_labels": ["s"], "gate_names": [],
                "model": {}, "versions": {}, "created": "now", "extra": {}}
    fields = ["initial_states", "states", "routing"] + ([] if token_mask is None else ["token_mask"])
    if states is None:
        states = np.zeros((num_states, 2), dtype=np.float32)
    arrays = {"initial_states": states, "states": states[None], "routing": routing[None]}
    if token_mask is not None:
        arrays["token_mask"] = token_mask
    with RecordingWriter(path, dims, fields, manifest) as writer:
        writer.write_step(0, arrays)
    return Recording.open(path)


def test_infinite_states_counted_by_sign(tmp_path):
    states = np.array([[np.inf, 1.0], [-np.inf, np.nan], [2.0, np.inf]], dtype=np.float32)
    recording = _write(tmp_path / "inf.nsm", np.full((1, 2, 3), 1 / 3, dtype=np.float32), states=states)
    stats = field_stats(recording, "states")

    assert (stats.nan, stats.posinf, stats.neginf) == (1, 2, 1)
    assert (stats.min, stats.max) == (1.0, 2.0)
    assert stats.first_non_finite == (0, 1)
    assert field_stats(recording, "initial_states").first_non_finite == (0, 0)


def test_padding_nan_is_not_counted(tmp_path):
    # The last of 3 tokens is padding: its NaN row is by design and is left out.
    routing = np.full((1, 3, 2), 0.5, dtype=np.float32)
    routing[0, 2] = np.nan
    recording = _write(tmp_path / "padded.nsm", routing, token_mask=np.array([1, 1, 0], dtype=np.uint8))
    stats = field_stats(recording, "routing")

    assert stats.nan == 0
    assert stats.count == 4
    assert recording.frame(0, 1).routing.shape == (1, 2, 2)


def test_constant_routing_has_exact_range(tmp_path):
    recording = _write(tmp_path / "uniform.nsm", np.full((1, 5, 8), 0.125, dtype=np.float32))
    stats = field_stats(recording, "routing")

    assert (stats.min, stats.max) == (0.125, 0.125)
    assert stats.non_finite == 0
    assert non_finite_warnings(recording, recording_stats(recording)) == []


def test_all_nan_routing_has_no_range(tmp_path):
    recording = _write(tmp_path / "all-nan.nsm", np.full((2, 3, 4), np.nan, dtype=np.float32))
    stats = field_stats(recording, "routing")

    assert (stats.min, stats.max) == (None, None)
    assert stats.nan == stats.count == 24


def test_inspect_json_of_all_nan_is_valid_json(tmp_path, capsys):
    _write(tmp_path / "all-nan.nsm", np.full((1, 2, 2), np.nan, dtype=np.float32))

    assert main(["inspect", str(tmp_path / "all-nan.nsm"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # strict JSON: no NaN literals
    assert summary["value_ranges"]["routing"] == {
        "count": 4, "min": None, "max": None, "nan": 4, "posinf": 0, "neginf": 0, "first_non_finite": [0, 1],
    }


# Tiny shapes -------------------------------------------------------------------------------------------


TINY_CASES = {
    "0 tokens": (["--input", ""], {"T": 0}),
    "1 token": (["--input", "a"], {"T": 1}),
    "1 state": (["--states", "1"], {"S": 1}),
    "1 layer": (["--layers", "1"], {"L": 1}),
    "1 head": (["--heads", "1"], {"H": 1}),
    "all ones": (["--input", "a", "--states", "1", "--layers", "1", "--heads", "1", "--state-dim", "1",
                  "--token-dim", "1"], {"T": 1, "S": 1, "L": 1, "H": 1, "D": 1}),
    "tutorial 1×1×1": (["--preset", "tutorial", "--states", "1", "--state-dim", "1", "--layers", "1"],
                       {"S": 1, "D": 1, "L": 1}),
}


@pytest.mark.parametrize("case", sorted(TINY_CASES))
def test_tiny_recording_reads_completely(tmp_path, capsys, case):
    flags, expected_dims = TINY_CASES[case]
    out = tmp_path / "tiny.nsm"
    assert main(["record", *flags, "--out", str(out)]) == 0
    recording = Recording.open(out)

    for axis, size in expected_dims.items():
        assert recording.dims[axis] == size, axis
    for layer in range(recording.num_layers + 1):
        frame = recording.frame(0, layer)
        assert frame.states.shape == (recording.num_states, recording.state_dim)
        if layer and recording.has("routing"):
            assert frame.routing.shape == (recording.num_heads, recording.num_tokens, recording.num_states)
            assert frame.token_attention.shape == (recording.num_heads, recording.num_tokens, recording.num_tokens)
    assert recording.states_through_layers(0).shape == (recording.num_layers + 1, recording.num_states,
                                                        recording.state_dim)
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_zero_tokens_have_no_routing_range(tmp_path):
    assert main(["record", "--input", "", "--out", str(tmp_path / "empty.nsm")]) == 0
    recording = Recording.open(tmp_path / "empty.nsm")
    stats = field_stats(recording, "routing")

    assert recording.token_labels(0) == []
    assert stats.count == 0
    assert (stats.min, stats.max) == (None, None)


# Token labels ------------------------------------------------------------------------------------------


MARKUP_LABELS = ["<s>", "</s>", "a<b", "&amp;", "é", "😀", "e\u0301", "é(1/2)", "<script>x</script>", ""]


def test_markup_and_unicode_labels_round_trip(tmp_path, capsys):
    recording = _record_masked(tmp_path / "labels.nsm", labels=MARKUP_LABELS, blocked=())

    assert recording.token_labels(0) == MARKUP_LABELS
    assert main(["inspect", str(tmp_path / "labels.nsm"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["token_labels"] == [MARKUP_LABELS]
    assert main(["inspect", str(tmp_path / "labels.nsm")]) == 0
    text = capsys.readouterr().out
    for label in ("'<s>'", "'</s>'", "'a<b'", "'&amp;'", "'é'", "'😀'"):
        assert label in text


def test_byte_fragment_labels_stay_printable(tmp_path, capsys):
    # A byte-level tokenizer splits "é" (0xC3 0xA9); decoding each byte with surrogateescape
    # gives a lone surrogate, which no encoder accepts.
    fragments = [bytes([byte]).decode("utf-8", "surrogateescape") for byte in "é".encode()]
    recording = _record_masked(tmp_path / "bytes.nsm", labels=["a", *fragments], blocked=())

    assert recording.token_labels(0) == ["a", "\\xc3", "\\xa9"]
    assert main(["inspect", str(tmp_path / "bytes.nsm")]) == 0
    assert "\\\\xc3" in capsys.readouterr().out  # repr() doubles the backslash


def test_legible_text_escapes_only_lone_surrogates():
    assert legible_text("<s>é😀") == "<s>é😀"
    assert legible_text("a\udcc3b") == "a\\xc3b"
    assert legible_text("\ud83d") == "\\ud83d"  # half of an emoji's surrogate pair
    assert legible_text("") == ""
