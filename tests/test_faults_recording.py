"""Faults while recording: a raising forward pass, training mode, half precision, signals."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import torch
from torch import nn

from nsm_core.cli.inspect import summarise
from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel
from nsm_core.recording import Adapter, Recorder, Recording, RecordingError, RecordingWriter, record
from nsm_core.recording.runs import record_nsm
from nsm_core.tokenize import byte_labels, encode_bytes


def _hook_count(model: nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def _record_text(model, path, text="the cat sat", steps=1, dtype="float32"):
    return record_nsm(model, encode_bytes(text), path, token_labels=byte_labels(text), num_steps=steps, dtype=dtype)


# A forward pass that raises midway --------------------------------------------------------------


def test_forward_raising_inside_layer_leaves_nothing(small_model, tmp_path):
    _record_text(small_model, tmp_path / "before.nsm", steps=2)
    before = Recording.open(tmp_path / "before.nsm")
    calls = {"count": 0}

    def explode_on_step_one(module, inputs, output):
        # Raise from the second layer's update in step 1, after step 0 was written and
        # after step 1's first layer was captured.
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("gate overflow")

    handle = small_model.layers[1].update.register_forward_hook(explode_on_step_one)
    with pytest.raises(RuntimeError, match="gate overflow"):
        _record_text(small_model, tmp_path / "failed.nsm", steps=2)
    handle.remove()

    assert sorted(path.name for path in tmp_path.iterdir()) == ["before.nsm"]  # no file, no temporary file
    assert _hook_count(small_model) == 0

    _record_text(small_model, tmp_path / "after.nsm", steps=2)
    after = Recording.open(tmp_path / "after.nsm")
    for name in before.fields:
        assert np.array_equal(after.array(name), before.array(name), equal_nan=True), name


def test_adapter_transform_raising_leaves_nothing(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))

    def bad_transform(output):
        raise ValueError("cannot reshape")

    adapter = Adapter(states="*", transforms={"states": bad_transform})
    with pytest.raises(ValueError, match="cannot reshape"):
        record(model, lambda step, carry: model(torch.ones(1, 3)), 2, tmp_path / "x.nsm", adapter=adapter)

    assert list(tmp_path.iterdir()) == []
    assert _hook_count(model) == 0


# Training mode -------------------------------------------------------------------------------------


def _record_training(model, optimizer, num_steps, path):
    """Record `num_steps` training steps on fresh inputs that require grad.

    Returns (number of captured tensors, shapes of those that carry a graph, RSS after each step).
    The spy on pop_step inspects each capture without keeping it alive.
    """
    process = psutil.Process()
    seen = {"count": 0, "with_graph": [], "rss": []}

    def run_step(step, previous):
        inputs = torch.randn(1, 128, 8, requires_grad=True)
        state = None if previous is None else previous.state.detach()
        output = model(inputs, state=state)
        optimizer.zero_grad()
        output.sequence_logits.sum().backward()
        optimizer.step()
        return output

    original_pop = Recorder.pop_step

    def spying_pop(self):
        captures = original_pop(self)
        for tensors in captures.values():
            for tensor in tensors:
                seen["count"] += 1
                if tensor.requires_grad or tensor.grad_fn is not None:
                    seen["with_graph"].append(tuple(tensor.shape))
        return captures

    Recorder.pop_step = spying_pop
    try:
        record(model, run_step, num_steps, path, token_labels=[[str(t) for t in range(128)]] * num_steps,
               progress=lambda step: seen["rss"].append(process.memory_info().rss))
    finally:
        Recorder.pop_step = original_pop
    return seen["count"], seen["with_graph"], seen["rss"]


@pytest.fixture
def one_thread():
    # On a busy machine, OpenMP threads that wait for each other make these small steps
    # many times slower; one thread measures the same memory behaviour.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_recording_memory_is_flat(tmp_path, one_thread):
    torch.manual_seed(0)
    config = NSMConfig(num_states=16, state_dim=64, token_dim=64, num_layers=2, num_heads=4, input_dim=8,
                       num_classes=3)
    model = NSMModel(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    short_count, _, rss_short = _record_training(model, optimizer, 20, tmp_path / "short.nsm")
    long_count, with_graph, rss_long = _record_training(model, optimizer, 200, tmp_path / "long.nsm")

    # Every capture of the 200 steps was inspected, and no stored copy carries a graph.
    assert long_count == 10 * short_count
    assert with_graph == []
    # Keeping each step's captures would add about 180 × step_bytes between the two runs, and
    # keeping the graphs several times more. Flat memory stays well under a quarter of that.
    step_bytes = (tmp_path / "long.nsm").stat().st_size / 200
    growth = max(rss_long) - max(rss_short)
    assert growth < 0.25 * 180 * step_bytes, f"RSS grew {growth / 2**20:.0f} MiB from 20 to 200 steps"
    assert Recording.open(tmp_path / "long.nsm").num_steps == 200


# Half precision -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_values_widened_exactly(small_config, tmp_path, dtype):
    model = NSMModel(small_config).to(dtype).eval()
    ids = encode_bytes("the cat")
    with torch.inference_mode():
        expected = model(ids[None]).state.h[0].float().numpy()
    _record_text(model, tmp_path / "half.nsm", text="the cat")
    recording = Recording.open(tmp_path / "half.nsm")

    assert recording.array("states").dtype == np.float32
    assert np.array_equal(recording.array("states")[0, -1], expected)
    assert recording.model_info["dtype"] == str(dtype).removeprefix("torch.")


class Amplifier(nn.Module):
    """Three layers, each multiplying the states [1, S, D] by 1000: 0.5, 500, 5e5, 5e8."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1000.0))
        self.hook_initial = nn.Identity()
        self.layers = nn.ModuleList(nn.Identity() for _ in range(3))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        states = self.hook_initial(states)
        for layer in self.layers:
            states = layer(states * self.scale)
        return states


AMPLIFIER_ADAPTER = Adapter(states="layers.*", initial_states="hook_initial")


def test_float16_model_overflow_flagged(tmp_path):
    model = Amplifier().half()
    start = torch.full((1, 2, 3), 0.5, dtype=torch.float16)
    record(model, lambda step, carry: model(start), 1, tmp_path / "f16.nsm", adapter=AMPLIFIER_ADAPTER)
    recording = Recording.open(tmp_path / "f16.nsm")
    summary = summarise(recording)
    states = summary["value_ranges"]["states"]

    # 5e5 exceeds float16's maximum of 65504: layers 2 and 3 are +Inf, 2 × 2 × 3 cells.
    assert np.isposinf(recording.frame(0, 2).states).all()
    assert states["posinf"] == 12
    assert states["max"] == 500.0
    assert states["first_non_finite"] == [0, 2]
    (warning,) = summary["warnings"]
    assert "states has 0 NaN, 12 +Inf and 0 -Inf values (first at step 0, layer 2)" in warning
    assert "65504" in warning


def test_float16_storage_overflow_flagged(tmp_path, caplog):
    model = Amplifier()  # float32: 5e5 and 5e8 are finite until stored as float16
    start = torch.full((1, 2, 3), 0.5)
    with caplog.at_level(logging.WARNING, logger="nsm_core.recording.writer"):
        record(model, lambda step, carry: model(start), 1, tmp_path / "f16.nsm", adapter=AMPLIFIER_ADAPTER,
               dtype="float16")
    summary = summarise(Recording.open(tmp_path / "f16.nsm"))

    assert "12 value(s) of 'states' at step 0 lie beyond the float16 range" in caplog.text
    assert summary["value_ranges"]["states"]["posinf"] == 12
    assert "float16 holds values only up to ±65504" in summary["warnings"][0]


def test_inspect_prints_overflow_warning(tmp_path, capsys):
    from nsm_core.cli.main import main

    model = Amplifier().half()
    start = torch.full((1, 2, 3), 0.5, dtype=torch.float16)
    record(model, lambda step, carry: model(start), 1, tmp_path / "f16.nsm", adapter=AMPLIFIER_ADAPTER)

    assert main(["inspect", str(tmp_path / "f16.nsm")]) == 0
    output = capsys.readouterr().out
    assert "warning: states has 0 NaN, 12 +Inf" in output


# What the writer is given ---------------------------------------------------------------------------


MANIFEST = {"token_labels": [["a"]], "step_labels": ["s"], "gate_names": [], "model": {}, "versions": {},
            "created": "now", "extra": {}}
DIMS = {"P": 1, "L": 1, "S": 1, "D": 1, "T": 1}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"token_labels": [[7]]}, "token_labels[0][0] is int 7"),
        ({"token_labels": [["a", "b"]]}, "token_labels[0]"),
        ({"extra": {"loss": float("nan")}}, "cannot be stored as JSON"),
        ({"extra": {"loss": np.float32(0.5)}}, "cannot be stored as JSON"),
        ({"gate_names": [None]}, "gate_names[0]"),
    ],
    ids=["int-label", "label-count", "nan", "numpy-scalar", "gate-name"],
)
def test_writer_rejects_unreadable_manifest(tmp_path, change, fragment):
    with pytest.raises(ValueError) as info:
        RecordingWriter(tmp_path / "x.nsm", DIMS, ["initial_states", "states"], {**MANIFEST, **change})

    assert fragment in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_record_rejects_non_string_labels(small_model, tmp_path):
    with pytest.raises(TypeError, match=r"token_labels\[0\]\[1\] is int 98"):
        record(small_model, lambda step, carry: small_model(encode_bytes("ab")[None]), 1, tmp_path / "x.nsm",
               token_labels=[["a", 98]])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("zero_axis", ["L", "S", "D"])
def test_writer_rejects_empty_axis(tmp_path, zero_axis):
    with pytest.raises(ValueError, match=f"{zero_axis}=0"):
        RecordingWriter(tmp_path / "x.nsm", {**DIMS, zero_axis: 0}, ["initial_states", "states"], MANIFEST)


def test_commit_failure_removes_temporary_file(tmp_path):
    (tmp_path / "x.nsm").mkdir()  # os.replace cannot put a file where a folder is
    writer = RecordingWriter(tmp_path / "x.nsm", DIMS, ["initial_states", "states"], MANIFEST)

    with pytest.raises(OSError):
        with writer:
            writer.write_step(0, {"initial_states": np.ones((1, 1)), "states": np.ones((1, 1, 1))})
    assert [path.name for path in tmp_path.iterdir()] == ["x.nsm"]
    assert (tmp_path / "x.nsm").is_dir()


def _interrupt_after_creating(interruption):
    """Return an os.fdopen stand-in that raises as a signal handler would, right after the file exists."""

    def interrupted_fdopen(descriptor, mode):
        os.close(descriptor)
        raise interruption()

    return interrupted_fdopen


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_interruption_while_opening_leaves_nothing(tmp_path, monkeypatch, interruption):
    monkeypatch.setattr("nsm_core.recording.writer.os.fdopen", _interrupt_after_creating(interruption))
    writer = RecordingWriter(tmp_path / "x.nsm", DIMS, ["initial_states", "states"], MANIFEST)

    with pytest.raises(interruption):
        writer.open()
    assert list(tmp_path.iterdir()) == []


def test_interruption_while_record_opens_leaves_nothing(small_model, tmp_path, monkeypatch):
    monkeypatch.setattr("nsm_core.recording.writer.os.fdopen", _interrupt_after_creating(KeyboardInterrupt))

    with pytest.raises(KeyboardInterrupt):
        _record_text(small_model, tmp_path / "x.nsm", steps=2)
    assert list(tmp_path.iterdir()) == []
    assert _hook_count(small_model) == 0


# Signals during a long `record` ---------------------------------------------------------------------


def _size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _start_long_recording(tmp_path):
    """Start `python -m nsm_core record` on 10^5 one-token steps; return it once it writes steps.

    Waiting until the temporary file is larger than its header means the signal lands while
    steps are written, the long phase that a user interrupts, rather than inside open().
    """
    (tmp_path / "input.txt").write_text("x" * 100_000)
    out = tmp_path / "out" / "long.nsm"
    command = [
        sys.executable, "-m", "nsm_core", "record", "--input-file", str(tmp_path / "input.txt"),
        "--steps", "100000", "--states", "2", "--state-dim", "4", "--token-dim", "4", "--heads", "1",
        "--layers", "1", "--out", str(out),
    ]
    log = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115  closed by the caller via process.wait
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 300  # a guard against a hung child, not a timing assertion
    while not any(_size(path) > 8 for path in out.parent.glob(".long.nsm.*.tmp")):
        if process.poll() is not None:
            raise AssertionError(f"record exited early: {(tmp_path / 'stderr.txt').read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("record never created its temporary file")
        time.sleep(0.05)
    return process, out, log


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal_number", "exit_code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_record_stopped_by_signal_leaves_nothing(tmp_path, signal_number, exit_code):
    process, out, log = _start_long_recording(tmp_path)
    process.send_signal(signal_number)
    code = process.wait(timeout=120)
    log.close()

    assert code == exit_code, (tmp_path / "stderr.txt").read_text()
    assert list(out.parent.iterdir()) == []  # neither the recording nor its temporary file


@pytest.mark.slow
def test_record_killed_leaves_no_valid_file(tmp_path):
    process, out, log = _start_long_recording(tmp_path)
    process.kill()
    code = process.wait(timeout=120)
    log.close()

    assert code == -signal.SIGKILL
    assert not out.exists()
    leftovers = list(out.parent.iterdir())
    assert [path.name.startswith(".long.nsm.") and path.suffix == ".tmp" for path in leftovers] == [True]
    # Even renamed to the real name, the leftover is rejected as unfinished.
    shutil.copy(leftovers[0], out)
    with pytest.raises(RecordingError, match="long.nsm is an unfinished recording"):
        Recording.open(out)
