"""Lazy, validating reader of recording files.

Opening a recording reads and checks only the header; tensors are memory-mapped views, so a
frame costs what the frame costs, not what the file costs. Every problem with a file raises
RecordingError with a message that says what is wrong and what to do. No pickle is involved
anywhere: the file is a safetensors header, JSON, followed by raw little-endian arrays.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsm_core.recording.errors import RecordingError
from nsm_core.recording.schema import (
    FIELDS,
    FLOAT_DTYPES,
    FORMAT_NAME,
    MANIFEST_KEY,
    MANIFEST_TYPES,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    describe_shape,
    field_shape,
)

# A header larger than this is not one we wrote (token labels of 10^6 tokens fit easily).
MAX_HEADER_BYTES = 256 * 1024 * 1024
SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "U8": np.dtype("u1")}


@dataclass
class Frame:
    """Everything recorded at one (step, layer). Layer 0 holds the initial states only.

    Arrays are float32 copies (masks are bool); fields the recording lacks are None.
    """

    step: int
    layer: int
    states: np.ndarray  # [S, D]
    routing: np.ndarray | None  # [H, T, S]
    state_attention: np.ndarray | None  # [H, S, S]
    gates: np.ndarray | None  # [S, G]
    importance: np.ndarray | None  # [S]
    active: np.ndarray | None  # [S] bool
    readout: np.ndarray | None  # [H, T, S]
    token_attention: np.ndarray | None  # [H, T, T]
    token_labels: list[str]  # the T' real tokens of this step; padding is cut off


class Recording:
    """A recording file opened for reading. Build with Recording.open(path) or from_bytes()."""

    def __init__(self, buffer: Any, size: int, source: str) -> None:
        self._buffer = buffer
        self.source = source
        self.size_bytes = size
        self.manifest, self._tensors = _parse_and_validate(buffer, size, source)
        self.dims: dict[str, int] = dict(self.manifest["dims"])
        self.fields: list[str] = list(self.manifest["fields"])

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Recording:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"recording {str(path)!r} does not exist; check the path.")
        if not path.is_file():
            raise RecordingError(f"{str(path)!r} is not a regular file; pass the path of a .nsm recording.")
        size = path.stat().st_size
        if size < 8:
            raise RecordingError(
                f"{path.name} is {size} bytes long, too short to be a recording; "
                "it is empty or was cut off. Record it again or copy it again."
            )
        with open(path, "rb") as file:
            buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(buffer, size, path.name)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "upload") -> Recording:
        if len(data) < 8:
            raise RecordingError(
                f"{name} is {len(data)} bytes long, too short to be a recording; "
                "it is empty or was cut off. Upload the complete .nsm file."
            )
        return cls(memoryview(data), len(data), name)

    def __repr__(self) -> str:
        dims = ", ".join(f"{axis}={size}" for axis, size in self.dims.items())
        return f"Recording({self.source!r}, {dims}, fields={self.fields})"

    # Shape helpers -----------------------------------------------------------------------

    @property
    def num_steps(self) -> int:
        return self.dims["P"]

    @property
    def num_layers(self) -> int:
        return self.dims["L"]

    @property
    def num_states(self) -> int:
        return self.dims["S"]

    @property
    def state_dim(self) -> int:
        return self.dims["D"]

    @property
    def num_tokens(self) -> int:
        return self.dims.get("T", 0)

    @property
    def num_heads(self) -> int:
        return self.dims.get("H", 0)

    @property
    def gate_names(self) -> list[str]:
        return list(self.manifest["gate_names"])

    @property
    def step_labels(self) -> list[str]:
        return list(self.manifest["step_labels"])

    @property
    def model_info(self) -> dict[str, Any]:
        return dict(self.manifest["model"])

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.manifest["extra"])

    def has(self, name: str) -> bool:
        return name in self._tensors

    def token_labels(self, step: int) -> list[str]:
        """Labels of the real (unpadded) tokens of `step`."""
        self._check_step(step)
        labels = self.manifest["token_labels"][step]
        if self.has("token_mask"):
            mask = self.array("token_mask")[step].astype(bool)
            return [label for label, keep in zip(labels, mask) if keep]
        return list(labels)

    # Reading -----------------------------------------------------------------------------

    def array(self, name: str) -> np.ndarray:
        """Return the whole stacked field as a read-only lazy view (no data is read yet)."""
        if name not in self._tensors:
            raise KeyError(f"this recording has no field {name!r}; it has {self.fields}.")
        dtype, shape, begin = self._tensors[name]
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self._buffer, dtype=dtype, count=count, offset=begin).reshape(shape)

    def states_through_layers(self, step: int) -> np.ndarray:
        """Return float32 states [L+1, S, D] of `step`: the initial states, then each layer's."""
        self._check_step(step)
        initial = self.array("initial_states")[step][None]
        return np.concatenate([initial, self.array("states")[step]]).astype(np.float32)

    def frame(self, step: int, layer: int) -> Frame:
        """Read frame (step, layer); layer 0 is the initial states, 1..L the layers' outputs."""
        self._check_step(step)
        if not 0 <= layer <= self.num_layers:
            raise IndexError(f"layer={layer} is outside [0, {self.num_layers}] (0 = initial states).")
        real_tokens = self._real_token_count(step)

        def per_layer(name: str, token_axes: tuple[int, ...] = ()) -> np.ndarray | None:
            if layer == 0 or name not in self._tensors:
                return None
            values = np.array(self.array(name)[step, layer - 1], dtype=np.float32)
            for axis in token_axes:
                values = np.take(values, np.arange(real_tokens), axis=axis)
            return values

        if layer == 0:
            states = np.array(self.array("initial_states")[step], dtype=np.float32)
        else:
            states = np.array(self.array("states")[step, layer - 1], dtype=np.float32)
        active = per_layer("active")

        return Frame(
            step=step,
            layer=layer,
            states=states,
            routing=per_layer("routing", (1,)),
            state_attention=per_layer("state_attention"),
            gates=per_layer("gates"),
            importance=per_layer("importance"),
            active=None if active is None else active.astype(bool),
            readout=per_layer("readout", (1,)),
            token_attention=per_layer("token_attention", (1, 2)),
            token_labels=self.token_labels(step),
        )

    def _real_token_count(self, step: int) -> int:
        if self.has("token_mask"):
            return int(self.array("token_mask")[step].sum())
        return self.num_tokens

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.num_steps:
            raise IndexError(f"step={step} is outside [0, {self.num_steps - 1}].")


def open_recording(path: str | os.PathLike[str]) -> Recording:
    return Recording.open(path)


def _parse_and_validate(buffer: Any, size: int, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (manifest, {field: (dtype, shape, absolute byte offset)}) or raise RecordingError."""
    fix = "Record it again, or ask the sender for a complete copy."

    (header_size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if header_size > MAX_HEADER_BYTES or header_size > size - 8:
        raise RecordingError(
            f"{source} is not a recording or is cut off: its header claims {header_size} bytes "
            f"but the file has {size} bytes. {fix}"
        )
    try:
        header = json.loads(bytes(buffer[8 : 8 + header_size]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordingError(f"{source} is not a recording: its header is not valid JSON ({error}). {fix}") from None
    if not isinstance(header, dict):
        raise RecordingError(f"{source} is not a recording: its header is not a JSON object. {fix}")

    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise RecordingError(
            f"{source} is a safetensors file without an NSM manifest ({MANIFEST_KEY!r}); "
            "it is not an NSM recording. Create one with `python -m nsm_core record`."
        )
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except json.JSONDecodeError as error:
        raise RecordingError(f"{source}: the manifest is not valid JSON ({error}). {fix}") from None
    _validate_manifest(manifest, source)

    data_start = 8 + header_size
    data_size = size - data_start
    dims = manifest["dims"]
    tensors: dict[str, Any] = {}
    for name in manifest["fields"]:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise RecordingError(f"{source}: the manifest lists field {name!r} but the file has no such tensor. {fix}")
        expected_dtype = "U8" if FIELDS[name].kind == "mask" else FLOAT_DTYPES[manifest["dtype"]]
        if entry.get("dtype") != expected_dtype:
            raise RecordingError(
                f"{source}: tensor {name!r} has dtype {entry.get('dtype')!r}, expected {expected_dtype!r}. {fix}"
            )
        shape = entry.get("shape")
        expected_shape = field_shape(name, dims)
        if not isinstance(shape, list) or tuple(shape) != expected_shape:
            raise RecordingError(
                f"{source}: tensor {name!r} has shape {shape}, but the manifest's dims give "
                f"{describe_shape(FIELDS[name].axes, expected_shape)}. {fix}"
            )
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(value, int) and not isinstance(value, bool) for value in offsets)
        ):
            raise RecordingError(f"{source}: tensor {name!r} has invalid data_offsets {offsets!r}. {fix}")
        begin, end = offsets
        dtype = SAFETENSORS_DTYPES[expected_dtype]
        nbytes = int(np.prod(expected_shape, dtype=object)) * dtype.itemsize
        if begin < 0 or end - begin != nbytes:
            raise RecordingError(
                f"{source}: tensor {name!r} spans bytes {begin}..{end} but its shape needs {nbytes} bytes. {fix}"
            )
        if end > data_size:
            raise RecordingError(
                f"{source} is cut off: tensor {name!r} needs bytes up to {end} of the data section, "
                f"but only {data_size} are present ({size} bytes in all). {fix}"
            )
        tensors[name] = (dtype, expected_shape, data_start + begin)
    return manifest, tensors


def _validate_manifest(manifest: Any, source: str) -> None:
    if not isinstance(manifest, dict):
        raise RecordingError(f"{source}: the manifest is not a JSON object.")
    if manifest.get("format") != FORMAT_NAME:
        raise RecordingError(
            f"{source}: manifest format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}; "
            "this is not an NSM recording."
        )
    version = manifest.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise RecordingError(
            f"{source} uses recording schema version {version}, but this nsm_core reads versions up to "
            f"{SCHEMA_VERSION}. Upgrade NSM Inspector to open it."
        )
    for key, expected_type in MANIFEST_TYPES.items():
        if key not in manifest:
            raise RecordingError(f"{source}: the manifest lacks the field {key!r}. Record the file again.")
        value = manifest[key]
        if not isinstance(value, expected_type) or isinstance(value, bool):
            raise RecordingError(
                f"{source}: manifest field {key!r} is {type(value).__name__} {_preview(value)}, "
                f"expected {getattr(expected_type, '__name__', expected_type)}. Record the file again."
            )
    if version < 1:
        raise RecordingError(f"{source}: schema_version={version} is invalid; versions start at 1.")
    if manifest["dtype"] not in FLOAT_DTYPES:
        raise RecordingError(f"{source}: dtype {manifest['dtype']!r} is not one of {sorted(FLOAT_DTYPES)}.")

    fields = manifest["fields"]
    for name in fields:
        if name not in FIELDS:
            raise RecordingError(f"{source}: unknown field {name!r}; known fields are {sorted(FIELDS)}.")
    for name in REQUIRED_FIELDS:
        if name not in fields:
            raise RecordingError(f"{source}: the required field {name!r} is missing.")

    dims = manifest["dims"]
    needed_axes = {axis for name in fields for axis in FIELDS[name].axes}
    for axis in sorted(needed_axes):
        value = dims.get(axis)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RecordingError(f"{source}: dims[{axis!r}] is {_preview(value)}, expected a non-negative integer.")
    if dims["P"] < 1:
        raise RecordingError(f"{source}: the recording has no steps (P=0).")

    labels = manifest["token_labels"]
    num_tokens = dims.get("T", 0)
    if len(labels) != dims["P"] or any(
        not isinstance(step, list) or len(step) != num_tokens or not all(isinstance(t, str) for t in step)
        for step in labels
    ):
        raise RecordingError(
            f"{source}: token_labels must be {dims['P']} lists of {num_tokens} strings (P × T)."
        )
    if len(manifest["step_labels"]) != dims["P"] or not all(isinstance(s, str) for s in manifest["step_labels"]):
        raise RecordingError(f"{source}: step_labels must be {dims['P']} strings, one per step.")
    if "gates" in fields and len(manifest["gate_names"]) != dims["G"]:
        raise RecordingError(
            f"{source}: gate_names has {len(manifest['gate_names'])} names but G={dims['G']}."
        )


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
