"""Capture per-layer snapshots from a model with forward hooks, and stream them to a file.

The recorder reads tensors at named submodules (hook points in our models, any submodule in
a user's model). An Adapter maps each recording field to the submodule whose output it records:

    adapter = Adapter(
        states="cell",                  # called once per layer; output [B, S, D]
        routing="router.softmax",       # output [B, H, T, S] or, with no head axis, [B, T, S]
        transforms={"states": lambda output: output[0]},  # pick a tensor out of a tuple
    )

Each pattern is a module path where ``*`` matches one path component (``layers.*.hook_states``).
Every call of a matching module during one step appends one layer to that field, so a
cell that is called L times per step yields L layers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import logging
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nsm_core.recording.schema import FIELDS
from nsm_core.recording.writer import RecordingWriter

logger = logging.getLogger(__name__)

# Fields captured once per step rather than once per layer.
STEP_FIELDS = ("initial_states", "importance", "active")
# Fields whose captured tensors carry a leading batch axis.
BATCHED_FIELDS = ("initial_states", "states", "routing", "state_attention", "gates", "readout", "token_attention")
# Fields that may come without a head axis; one is added (H = 1).
HEADED_FIELDS = ("routing", "state_attention", "readout", "token_attention")


@dataclass
class Adapter:
    """Mapping from recording fields to the submodules whose outputs they record. Only `states` is required."""

    states: str
    initial_states: str | None = None
    routing: str | None = None
    state_attention: str | None = None
    gates: str | None = None
    importance: str | None = None
    active: str | None = None
    readout: str | None = None
    token_attention: str | None = None
    transforms: dict[str, Callable[[Any], torch.Tensor]] = field(default_factory=dict)
    batch_first: bool = True  # False when the module outputs carry no batch axis
    gate_names: Sequence[str] | None = None

    def patterns(self) -> dict[str, str]:
        return {
            name: getattr(self, name)
            for name in ("initial_states", "states", "routing", "state_attention", "gates",
                         "importance", "active", "readout", "token_attention")
            if getattr(self, name) is not None
        }


NSM_ADAPTER = Adapter(
    initial_states="hook_initial_states",
    states="layers.*.hook_states",
    routing="layers.*.router.hook_weights",
    state_attention="layers.*.state_attention.hook_weights",
    gates="layers.*.update.hook_gates",
    importance="hook_importance",
    active="hook_active",
    readout="layers.*.readout.hook_weights",
    token_attention="layers.*.token_attention.hook_weights",
)

TUTORIAL_ADAPTER = Adapter(initial_states="hook_initial_states", states="layers.*.hook_states")


def default_adapter(model: nn.Module) -> Adapter:
    """Return the adapter for our own model classes; other modules need an explicit one."""
    from nsm_core.modules import NSMModel, TutorialDynamics

    if isinstance(model, NSMModel):
        return NSM_ADAPTER
    if isinstance(model, TutorialDynamics):
        return TUTORIAL_ADAPTER
    raise TypeError(
        f"{type(model).__name__} is not an NSM model; pass adapter=Adapter(states='<module path>', ...) "
        "to say which submodule outputs are the states (see nsm_core.recording.recorder)."
    )


class Recorder:
    """Attach capture hooks while inside a `with` block; collect one step at a time.

    Captured tensors are detached, copied to the CPU and widened to float32, so the model's
    outputs, gradients and devices are untouched. Hooks are removed when the block ends,
    also when the forward pass raises.
    """

    def __init__(self, model: nn.Module, adapter: Adapter | None = None, batch_index: int = 0) -> None:
        self.model = model
        self.adapter = adapter or default_adapter(model)
        self.batch_index = batch_index
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._captures: dict[str, list[torch.Tensor]] = {}

    def __enter__(self) -> Recorder:
        try:
            named_modules = list(self.model.named_modules())
            for field_name, pattern in self.adapter.patterns().items():
                modules = _match_modules(named_modules, pattern)
                if not modules:
                    if field_name == "token_attention":
                        continue  # models built without local attention have no such module
                    names = [name for name, _ in named_modules if name][:20]
                    raise ValueError(
                        f"adapter field {field_name}={pattern!r} matches no submodule of "
                        f"{type(self.model).__name__}; some module paths are {names}."
                    )
                for module in modules:
                    self._handles.append(module.register_forward_hook(self._make_hook(field_name)))
        except BaseException:
            self._remove_hooks()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._remove_hooks()
        self._captures = {}

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _make_hook(self, field_name: str) -> Callable[..., None]:
        transform = self.adapter.transforms.get(field_name)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            tensor = transform(output) if transform is not None else output
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(
                    f"the output recorded as {field_name!r} is {type(tensor).__name__}, not a tensor; "
                    f"add transforms={{{field_name!r}: lambda output: ...}} to the adapter."
                )
            if self.adapter.batch_first and field_name in BATCHED_FIELDS:
                tensor = tensor[self.batch_index]
            # Detach and copy: the model keeps its tensors, the recording gets its own.
            self._captures.setdefault(field_name, []).append(
                tensor.detach().to(device="cpu", dtype=torch.float32, copy=True)
            )

        return hook

    def pop_step(self) -> dict[str, list[torch.Tensor]]:
        """Return and clear what was captured since the last call, field -> one tensor per call."""
        captures, self._captures = self._captures, {}
        return captures


def _match_modules(named_modules: list[tuple[str, nn.Module]], pattern: str) -> list[nn.Module]:
    parts = pattern.split(".")
    matched = []
    for name, module in named_modules:
        name_parts = name.split(".") if name else []
        if len(name_parts) == len(parts) and all(fnmatch.fnmatchcase(n, p) for n, p in zip(name_parts, parts)):
            matched.append(module)
    return matched


def step_arrays(
    captures: dict[str, list[torch.Tensor]],
    num_tokens: int,
    buffers: dict[str, torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:
    """Stack one step's captures into per-step arrays, padding the token axes to num_tokens.

    Per-layer fields become [L, ...]; initial_states [S, D]; importance and active, captured
    once per step, are repeated over L. Head axes are added where a module had none.
    `buffers`, if given, keeps the stacked tensors from one call to the next and stacks into
    them again, so the returned arrays are overwritten by the next call with the same dict.
    Reusing memory matters for large steps, where fresh pages cost as much as the copy.
    """
    if "states" not in captures:
        raise ValueError("no states were captured in this step; did the forward pass run inside the recorder?")
    num_layers = len(captures["states"])
    arrays: dict[str, np.ndarray] = {}

    for name, tensors in captures.items():
        if name in STEP_FIELDS:
            value = tensors[-1].numpy()
            if name == "initial_states":
                arrays[name] = value
            else:
                arrays[name] = np.repeat(value[None], num_layers, axis=0)
            continue
        if len(tensors) != num_layers:
            raise ValueError(
                f"captured {len(tensors)} layers of {name!r} but {num_layers} of 'states'; every "
                "per-layer module in the adapter must run once per layer."
            )
        stacked = _stack(name, tensors, buffers).numpy()  # [L, ...]
        if name in HEADED_FIELDS and stacked.ndim == 3:
            stacked = stacked[:, None]  # [L, 1, ...]
        arrays[name] = _pad_tokens(name, stacked, num_tokens)

    if "initial_states" not in arrays:
        arrays["initial_states"] = arrays["states"][0] * np.nan  # unknown: shown as missing
    return arrays


def _stack(name: str, tensors: list[torch.Tensor], buffers: dict[str, torch.Tensor] | None) -> torch.Tensor:
    if buffers is None:
        return torch.stack(tensors)
    shape = (len(tensors), *tensors[0].shape)
    buffer = buffers.get(name)
    if buffer is None or tuple(buffer.shape) != shape:
        buffer = buffers[name] = torch.empty(shape, dtype=tensors[0].dtype)
    return torch.stack(tensors, out=buffer)


def _pad_tokens(name: str, array: np.ndarray, num_tokens: int) -> np.ndarray:
    """Pad the T axes of `array` (per-step shape [L, ...]) with NaN up to num_tokens."""
    axes = FIELDS[name].axes[1:]  # drop P
    pad = []
    for axis_name, size in zip(axes, array.shape):
        if axis_name == "T":
            if size > num_tokens:
                raise ValueError(f"{name!r} has T={size} tokens, more than the recording's T={num_tokens}.")
            pad.append((0, num_tokens - size))
        else:
            pad.append((0, 0))
    if any(after for _, after in pad):
        return np.pad(array, pad, constant_values=np.nan)
    return array


def library_versions() -> dict[str, str]:
    from nsm_core import __version__

    return {"nsm_core": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def build_manifest(
    *,
    model_info: dict[str, Any],
    token_labels: list[list[str]],
    step_labels: list[str],
    gate_names: Sequence[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "token_labels": token_labels,
        "step_labels": step_labels,
        "gate_names": list(gate_names),
        "model": model_info,
        "versions": library_versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": extra or {},
    }


def record(
    model: nn.Module,
    run_step: Callable[[int, Any], Any],
    num_steps: int,
    path: str | os.PathLike[str],
    *,
    adapter: Adapter | None = None,
    token_labels: Sequence[Sequence[str]] | None = None,
    step_labels: Sequence[str] | None = None,
    model_info: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    dtype: str = "float32",
    sequence_logits: Callable[[Any], torch.Tensor | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Run `run_step(step, carry) -> carry` for each step under the recorder; write `path`.

    `carry` starts as None and is whatever run_step returns (states to carry into the next
    step). token_labels[p] lists step p's tokens; steps shorter than the longest are padded.
    Nothing is written under `path` unless every step succeeds.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps} must be at least 1.")
    if token_labels is not None:
        _check_token_labels(token_labels, num_steps)
    step_labels = list(step_labels) if step_labels is not None else [f"step {p}" for p in range(num_steps)]
    if len(step_labels) != num_steps:
        raise ValueError(f"step_labels has {len(step_labels)} entries but num_steps={num_steps}.")

    adapter = adapter or default_adapter(model)
    num_tokens = max((len(labels) for labels in token_labels), default=0) if token_labels else None
    gate_names = list(adapter.gate_names or getattr(getattr(model, "config", None), "gate_names", ()) or ())

    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(Recorder(model, adapter))
        writer: RecordingWriter | None = None
        buffers: dict[str, torch.Tensor] = {}  # safe to reuse: write_step copies before returning
        carry = None
        for step in range(num_steps):
            carry = run_step(step, carry)
            arrays = _assemble_step(recorder.pop_step(), num_tokens, token_labels, step, buffers)
            if sequence_logits is not None and (logits := sequence_logits(carry)) is not None:
                arrays["sequence_logits"] = logits.detach().to("cpu", torch.float32).reshape(-1).numpy()

            if writer is None:
                dims = _dims_from_step(arrays, num_steps, gate_names)
                num_tokens = dims["T"]
                labels = _padded_labels(token_labels, num_steps, num_tokens)
                manifest = build_manifest(
                    model_info=_with_dtype(model_info or {"kind": type(model).__name__}, model),
                    token_labels=labels,
                    step_labels=step_labels,
                    gate_names=gate_names[: dims["G"]] if "gates" in arrays else gate_names,
                    extra=extra,
                )
                writer = RecordingWriter(path, dims, list(arrays), manifest, dtype)
                # Register the cleanup before open(), so that no signal can come between the two.
                stack.push(writer)
                writer.open()
            writer.write_step(step, arrays)
            if progress is not None:
                progress(step)
    return Path(path)


def _check_token_labels(token_labels: Sequence[Sequence[str]], num_steps: int) -> None:
    if len(token_labels) != num_steps:
        raise ValueError(f"token_labels has {len(token_labels)} steps but num_steps={num_steps}.")
    for step, labels in enumerate(token_labels):
        if isinstance(labels, str):
            raise TypeError(
                f"token_labels[{step}] is the string {labels[:20]!r}, not a list; pass one list of "
                "token strings per step, for example [list(text)]."
            )
        for index, label in enumerate(labels):
            if not isinstance(label, str):
                raise TypeError(
                    f"token_labels[{step}][{index}] is {type(label).__name__} {label!r}, not a string; "
                    "pass each token's text, for example tokenizer.decode([token_id])."
                )


def _with_dtype(model_info: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Add the dtype of the model's parameters, so that a reader can trace ±Inf to float16 overflow."""
    parameter = next(model.parameters(), None)
    if parameter is None or "dtype" in model_info:
        return model_info
    return {**model_info, "dtype": str(parameter.dtype).removeprefix("torch.")}


def _assemble_step(
    captures: dict[str, list[torch.Tensor]],
    num_tokens: int | None,
    token_labels: Sequence[Sequence[str]] | None,
    step: int,
    buffers: dict[str, torch.Tensor],
) -> dict[str, np.ndarray]:
    token_count = None
    for name in ("routing", "readout"):
        if name in captures:
            token_count = captures[name][0].shape[-2]
    if num_tokens is None:
        num_tokens = token_count or 0
    arrays = step_arrays(captures, num_tokens, buffers)
    if token_count is not None:
        real = len(token_labels[step]) if token_labels is not None else token_count
        arrays["token_mask"] = (np.arange(num_tokens) < real).astype(np.uint8)
    return arrays


def _dims_from_step(arrays: dict[str, np.ndarray], num_steps: int, gate_names: Sequence[str]) -> dict[str, int]:
    num_layers, num_states, state_dim = arrays["states"].shape
    dims = {"P": num_steps, "L": num_layers, "S": num_states, "D": state_dim, "T": 0, "H": 0, "G": 0, "C": 0}
    for name in ("routing", "readout"):
        if name in arrays:
            dims["H"], dims["T"] = arrays[name].shape[1], arrays[name].shape[2]
    if "state_attention" in arrays:
        dims["H"] = arrays["state_attention"].shape[1]
    if "token_mask" in arrays:
        dims["T"] = arrays["token_mask"].shape[0]
    if "gates" in arrays:
        dims["G"] = arrays["gates"].shape[-1]
    if "sequence_logits" in arrays:
        dims["C"] = arrays["sequence_logits"].shape[0]
    return dims


def _padded_labels(token_labels: Sequence[Sequence[str]] | None, num_steps: int, num_tokens: int) -> list[list[str]]:
    if token_labels is None:
        return [[str(t) for t in range(num_tokens)] for _ in range(num_steps)]
    return [list(labels) + [""] * (num_tokens - len(labels)) for labels in token_labels]


@contextlib.contextmanager
def capture(model: nn.Module, adapter: Adapter | None = None) -> Iterator[Recorder]:
    """Hooks for the duration of a `with` block, for callers that handle steps themselves."""
    with Recorder(model, adapter) as recorder:
        yield recorder
