"""Recorder, writer and reader: fidelity, round trips, lazy reads, hooks and adapters."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from torch import nn

from nsm_core.modules import NSMModel, TutorialConfig, TutorialDynamics
from nsm_core.recording import Adapter, Recorder, Recording, RecordingError, RecordingWriter, record
from nsm_core.recording.recorder import step_arrays
from nsm_core.recording.runs import record_nsm, record_tutorial
from nsm_core.tokenize import byte_labels, encode_bytes


def _hook_count(model: nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def _record_text(model, path, text="the cat sat", steps=1, dtype="float32"):
    return record_nsm(model, encode_bytes(text), path, token_labels=byte_labels(text), num_steps=steps, dtype=dtype)


def test_recording_does_not_change_outputs(small_model, tmp_path):
    ids = encode_bytes("the cat sat")
    with torch.inference_mode():
        unrecorded = small_model(ids[None]).state.h[0]
    _record_text(small_model, tmp_path / "run.nsm")
    recording = Recording.open(tmp_path / "run.nsm")

    final = recording.array("states")[0, -1]
    assert np.array_equal(final, unrecorded.numpy())  # bit for bit


def test_recorded_frames_match_hooks(small_model, tmp_path):
    ids = encode_bytes("abcde")
    seen: dict[str, torch.Tensor] = {}
    layer = small_model.layers[1]
    layer.router.hook_weights.register_forward_hook(lambda m, i, o: seen.setdefault("routing", o.clone()))
    layer.update.hook_gates.register_forward_hook(lambda m, i, o: seen.setdefault("gates", o.clone()))
    with torch.inference_mode():
        small_model(ids[None])
    for module in small_model.modules():
        module._forward_hooks.clear()

    _record_text(small_model, tmp_path / "run.nsm", text="abcde")
    frame = Recording.open(tmp_path / "run.nsm").frame(step=0, layer=2)

    assert np.array_equal(frame.routing, seen["routing"][0].numpy())
    assert np.array_equal(frame.gates, seen["gates"][0].numpy())
    assert frame.token_labels == ["a", "b", "c", "d", "e"]


def test_round_trip_is_bit_exact(tmp_path):
    dims = {"P": 2, "L": 3, "S": 4, "D": 5, "T": 0, "H": 0, "G": 0, "C": 0}
    rng = np.random.default_rng(0)
    steps = [
        {"initial_states": rng.standard_normal((4, 5)).astype(np.float32),
         "states": rng.standard_normal((3, 4, 5)).astype(np.float32)}
        for _ in range(2)
    ]
    manifest = {"token_labels": [[], []], "step_labels": ["a", "b"], "gate_names": [], "model": {},
                "versions": {}, "created": "now", "extra": {"note": "é"}}
    with RecordingWriter(tmp_path / "r.nsm", dims, ["initial_states", "states"], manifest) as writer:
        for step, arrays in reversed(list(enumerate(steps))):  # any order
            writer.write_step(step, arrays)
    recording = Recording.open(tmp_path / "r.nsm")

    for step, arrays in enumerate(steps):
        assert np.array_equal(recording.array("states")[step], arrays["states"])
        assert np.array_equal(recording.states_through_layers(step)[0], arrays["initial_states"])
    assert recording.extra == {"note": "é"}
    # The file is a plain safetensors file that the reference reader accepts.
    assert load_file(tmp_path / "r.nsm")["states"].shape == (2, 3, 4, 5)


def test_frame_read_is_lazy(small_model, tmp_path):
    _record_text(small_model, tmp_path / "run.nsm", text="x" * 40, steps=4)
    recording = Recording.open(tmp_path / "run.nsm")
    view = recording.array("routing")

    # A lazy view wraps the mapped file instead of owning a copy of its data.
    assert not view.flags.owndata
    assert view.base is not None
    frame = recording.frame(step=3, layer=1)
    assert frame.routing.shape == (2, 10, 4)
    assert frame.states.dtype == np.float32


def test_steps_carry_states(small_model, tmp_path):
    _record_text(small_model, tmp_path / "run.nsm", text="the cat sat on the mat", steps=3)
    recording = Recording.open(tmp_path / "run.nsm")

    assert recording.num_steps == 3
    for step in (1, 2):
        assert np.array_equal(recording.array("initial_states")[step], recording.array("states")[step - 1, -1])
    # 22 bytes in 3 chunks: 7, 8, 7 tokens; the short steps are padded to T=8.
    assert [len(recording.token_labels(step)) for step in range(3)] == [7, 8, 7]
    assert recording.frame(0, 1).routing.shape == (2, 7, 4)


def test_hooks_removed_after_exception(small_model):
    class Boom(RuntimeError):
        pass

    def explode(module, inputs, output):
        raise Boom("midway")

    handle = small_model.layers[1].update.register_forward_hook(explode)
    with pytest.raises(Boom):
        with Recorder(small_model):
            small_model(encode_bytes("abc")[None])
    handle.remove()

    assert _hook_count(small_model) == 0


def test_failed_forward_writes_no_file(small_model, tmp_path):
    calls = {"count": 0}

    def run_step(step, carry):
        calls["count"] += 1
        if step == 1:
            raise RuntimeError("forward failed")
        return small_model(encode_bytes("abc")[None])

    with pytest.raises(RuntimeError, match="forward failed"):
        record(small_model, run_step, 3, tmp_path / "run.nsm", token_labels=[["a", "b", "c"]] * 3)

    assert calls["count"] == 2
    assert list(tmp_path.iterdir()) == []
    assert _hook_count(small_model) == 0
    _record_text(small_model, tmp_path / "next.nsm")  # the next recording works
    assert Recording.open(tmp_path / "next.nsm").num_steps == 1


def test_stored_tensors_are_detached(small_config):
    model = NSMModel(small_config.replace(input_dim=3, num_classes=2)).train()
    inputs = torch.randn(2, 4, 3, requires_grad=True)
    with Recorder(model) as recorder:
        loss = model(inputs).sequence_logits.sum()
        captures = recorder.pop_step()
    loss.backward()  # the recorder left the graph intact

    assert inputs.grad is not None
    for name, tensors in captures.items():
        for tensor in tensors:
            assert not tensor.requires_grad, name
            assert tensor.grad_fn is None, name
            assert tensor.device.type == "cpu"
            assert tensor.dtype == torch.float32


def test_half_precision_model_records_float32(small_config, tmp_path):
    model = NSMModel(small_config).to(torch.bfloat16).eval()
    _record_text(model, tmp_path / "bf16.nsm")
    recording = Recording.open(tmp_path / "bf16.nsm")

    assert recording.array("states").dtype == np.float32
    assert np.isfinite(recording.array("states")).all()


def test_float16_storage(small_model, tmp_path):
    _record_text(small_model, tmp_path / "f16.nsm", dtype="float16")
    recording = Recording.open(tmp_path / "f16.nsm")

    assert recording.array("states").dtype == np.float16
    assert recording.frame(0, 1).states.dtype == np.float32


def test_tutorial_recording_matches_recipe(tmp_path):
    record_tutorial(TutorialDynamics(TutorialConfig(seed=5)), tmp_path / "t.nsm")
    trajectory = Recording.open(tmp_path / "t.nsm").states_through_layers(0)  # [L+1, S, D]

    torch.manual_seed(5)
    expected = [torch.randn(5, 10)]
    for _ in range(4):
        expected.append(expected[-1] + 0.1 * torch.randn(5, 10))
    assert np.array_equal(trajectory, torch.stack(expected).numpy())


class SlotMemoryGRU(nn.Module):
    """A user's own model: a GRU cell updates a slot memory [B, S, D] from a softmax router."""

    def __init__(self, num_slots: int = 3, dim: int = 4, steps: int = 2) -> None:
        super().__init__()
        self.router = nn.Softmax(dim=-1)
        self.cell = nn.GRUCell(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.memory = nn.Parameter(torch.randn(num_slots, dim))
        self.steps = steps

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens [B, T, D]
        batch, _, dim = tokens.shape
        memory = self.memory.expand(batch, -1, -1)
        for _ in range(self.steps):
            weights = self.router(self.query(tokens) @ memory.transpose(1, 2))  # [B, T, S]
            routed = weights.transpose(1, 2) @ tokens  # [B, S, D]
            memory = self.cell(routed.reshape(-1, dim), memory.reshape(-1, dim)).reshape(batch, -1, dim)
        return memory


def test_adapter_records_foreign_module(tmp_path):
    torch.manual_seed(0)
    model = SlotMemoryGRU()
    tokens = torch.randn(1, 5, 4)
    batch_of_slots = lambda output: output.reshape(1, 3, 4)  # noqa: E731  GRUCell returns [B·S, D]
    adapter = Adapter(states="cell", routing="router", transforms={"states": batch_of_slots})

    record(model, lambda step, carry: model(tokens), 1, tmp_path / "own.nsm", adapter=adapter,
           token_labels=[list("abcde")])
    recording = Recording.open(tmp_path / "own.nsm")

    assert recording.dims["L"] == 2  # the cell ran twice
    assert recording.frame(0, 1).routing.shape == (1, 5, 3)  # a head axis was added
    with torch.no_grad():
        assert np.array_equal(recording.array("states")[0, -1], model(tokens)[0].numpy())
    assert _hook_count(model) == 0


def test_adapter_pattern_without_match_is_rejected():
    model = SlotMemoryGRU()
    with pytest.raises(ValueError, match="matches no submodule"):
        with Recorder(model, Adapter(states="cells")):
            pass
    assert _hook_count(model) == 0


def test_model_without_adapter_is_rejected():
    with pytest.raises(TypeError, match="pass adapter="):
        Recorder(SlotMemoryGRU())


def test_long_recording_streams(small_model, tmp_path):
    text = "abcdefghij" * 20
    _record_text(small_model, tmp_path / "long.nsm", text=text, steps=200)
    recording = Recording.open(tmp_path / "long.nsm")

    assert recording.num_steps == 200
    assert recording.frame(199, 2).routing.shape == (2, 1, 4)


def test_writer_rejects_missing_steps(tmp_path):
    dims = {"P": 2, "L": 1, "S": 1, "D": 1}
    manifest = {"token_labels": [[], []], "step_labels": ["a", "b"], "gate_names": [], "model": {},
                "versions": {}, "created": "now", "extra": {}}
    writer = RecordingWriter(tmp_path / "r.nsm", dims, ["initial_states", "states"], manifest)
    writer.open()
    writer.write_step(0, {"initial_states": np.zeros((1, 1)), "states": np.zeros((1, 1, 1))})

    with pytest.raises(RecordingError, match="1 of 2 steps were never written"):
        writer.commit()
    assert list(tmp_path.iterdir()) == []


def _write_two_steps(path):
    dims = {"P": 2, "L": 2, "S": 3, "D": 4, "T": 0, "H": 0, "G": 0, "C": 0}
    rng = np.random.default_rng(1)
    steps = [
        {"initial_states": rng.standard_normal((3, 4)).astype(np.float32),
         "states": rng.standard_normal((2, 3, 4)).astype(np.float32)}
        for _ in range(2)
    ]
    manifest = {"token_labels": [[], []], "step_labels": ["a", "b"], "gate_names": [], "model": {},
                "versions": {}, "created": "now", "extra": {}}
    with RecordingWriter(path, dims, ["initial_states", "states"], manifest) as writer:
        for step, arrays in enumerate(steps):
            writer.write_step(step, arrays)
    return steps


def test_writer_completes_partial_writes(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    calls = []

    def short_pwrite(descriptor, data, offset):
        calls.append(offset)
        return real_pwrite(descriptor, bytes(data)[:7], offset)  # at most 7 bytes per call

    monkeypatch.setattr(os, "pwrite", short_pwrite)
    steps = _write_two_steps(tmp_path / "r.nsm")
    recording = Recording.open(tmp_path / "r.nsm")

    assert len(calls) > 4  # the 96-byte states slices took many calls
    for step, arrays in enumerate(steps):
        assert np.array_equal(recording.array("states")[step], arrays["states"])
        assert np.array_equal(recording.array("initial_states")[step], arrays["initial_states"])


def test_writer_without_pwrite(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "pwrite")
    steps = _write_two_steps(tmp_path / "r.nsm")
    recording = Recording.open(tmp_path / "r.nsm")

    for step, arrays in enumerate(steps):
        assert np.array_equal(recording.array("states")[step], arrays["states"])


def test_step_arrays_reuse_buffers():
    first = {"states": [torch.full((3, 4), 1.0), torch.full((3, 4), 2.0)]}
    second = {"states": [torch.full((3, 4), 5.0), torch.full((3, 4), 6.0)]}
    buffers: dict[str, torch.Tensor] = {}

    arrays_first = step_arrays(first, num_tokens=0, buffers=buffers)
    arrays_second = step_arrays(second, num_tokens=0, buffers=buffers)

    assert np.shares_memory(arrays_first["states"], arrays_second["states"])
    assert np.array_equal(arrays_second["states"][:, 0, 0], [5.0, 6.0])
    # Without buffers every call returns new memory.
    assert not np.shares_memory(step_arrays(first, 0)["states"], step_arrays(second, 0)["states"])
