"""Checks that turn the bytes of a recording file into a trusted manifest and tensor table.

The reader relies on everything checked here. After parse_recording() returns, every field
listed in the manifest has a tensor of the expected dtype and shape. Each tensor lies inside
the file and overlaps no other. Every axis size is an integer no larger than the file, labels
are lists of strings of the right lengths, and the masks contain only 0 and 1 with the real
tokens first. Every failure raises RecordingError naming the file, the value and the fix.
The writer runs validate_manifest() on what it is about to write, so that every file it
commits passes these checks.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsm_core.recording.errors import RecordingError
from nsm_core.recording.labels import legible_text
from nsm_core.recording.schema import (
    DIM_NAMES,
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
# The writer leaves the header length at 0 until the last step is written; see writer.py.
UNFINISHED_PREFIX = b'{"__metadata__"'
# Axes a recording cannot be without: at least one step, layer, state and state dimension.
NON_EMPTY_AXES = ("P", "L", "S", "D")

DAMAGED_FIX = "Record it again, or ask the sender for a complete copy."


@dataclass(frozen=True)
class TensorEntry:
    """Location, dtype and shape of one stacked field in the file."""

    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int  # absolute byte offset of the first element in the file


def parse_recording(buffer: Any, size: int, source: str) -> tuple[dict[str, Any], dict[str, TensorEntry]]:
    """Return (manifest, {field: TensorEntry}) for the `size` bytes in `buffer`, or raise RecordingError."""
    header_size, header = _parse_header(buffer, size, source)

    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
        raise RecordingError(
            f"{source} is a safetensors file without an NSM manifest ({MANIFEST_KEY!r}); "
            "it is not an NSM recording. Create one with `python -m nsm_core record`."
        )
    manifest = _load_json(metadata[MANIFEST_KEY], "its manifest", source)
    validate_manifest(manifest, source, file_size=size)

    data_start = 8 + header_size
    tensors = _tensor_table(header, manifest, source, data_start, size - data_start)
    _validate_masks(buffer, tensors, source)
    return manifest, tensors


def _parse_header(buffer: Any, size: int, source: str) -> tuple[int, dict[str, Any]]:
    (header_size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if header_size == 0 and bytes(buffer[8 : 8 + len(UNFINISHED_PREFIX)]) == UNFINISHED_PREFIX:
        raise RecordingError(
            f"{source} is an unfinished recording: the program writing it stopped before the last "
            "step (it was killed, or the machine lost power). Record it again."
        )
    if header_size > MAX_HEADER_BYTES or header_size > size - 8:
        raise RecordingError(
            f"{source} is not a recording or is cut off: its header claims {header_size:,} bytes "
            f"but the file has {size:,} bytes. {DAMAGED_FIX}"
        )
    header = _load_json(bytes(buffer[8 : 8 + header_size]), "its header", source)
    if not isinstance(header, dict):
        raise RecordingError(f"{source} is not a recording: its header is not a JSON object. {DAMAGED_FIX}")
    return header_size, header


def _load_json(data: bytes | str, what: str, source: str) -> Any:
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError as error:
        problem = f"is not UTF-8 (byte {error.start})"
    except RecursionError:
        problem = "nests JSON arrays or objects too deeply"
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        problem = f"is not valid JSON ({error})"
    raise RecordingError(f"{source} is not a recording or is damaged: {what} {problem}. {DAMAGED_FIX}")


def validate_manifest(manifest: Any, source: str, *, file_size: int | None = None, fix: str = DAMAGED_FIX) -> None:
    """Raise RecordingError unless `manifest` is a complete manifest this version can read.

    Lone surrogates in labels are replaced by visible escapes, in place. With `file_size`,
    each axis must also be no longer than the file is in bytes, which bounds every loop
    over an axis by the file's size even when a field using that axis is empty. `fix` ends
    the messages that a rewrite of the file would cure.
    """
    if not isinstance(manifest, dict):
        raise RecordingError(f"{source}: the manifest is not a JSON object. {fix}")
    if manifest.get("format") != FORMAT_NAME:
        raise RecordingError(
            f"{source}: manifest field 'format' is {_preview(manifest.get('format'))}, expected "
            f"{FORMAT_NAME!r}; this is not an NSM recording."
        )
    version = manifest.get("schema_version")
    if type(version) is int and version > SCHEMA_VERSION:
        raise RecordingError(
            f"{source} uses recording schema version {version}, but this nsm_core reads versions up to "
            f"{SCHEMA_VERSION}. Upgrade NSM Inspector to open it."
        )
    for key, expected_type in MANIFEST_TYPES.items():
        if key not in manifest:
            raise RecordingError(f"{source}: the manifest lacks the field {key!r}. {fix}")
        value = manifest[key]
        if not isinstance(value, expected_type) or isinstance(value, bool):
            raise RecordingError(
                f"{source}: manifest field {key!r} is {type(value).__name__} {_preview(value)}, "
                f"expected {getattr(expected_type, '__name__', expected_type)}. {fix}"
            )
    if version < 1:
        raise RecordingError(f"{source}: schema_version={version} is invalid; versions start at 1.")
    if manifest["dtype"] not in FLOAT_DTYPES:
        raise RecordingError(f"{source}: dtype {_preview(manifest['dtype'])} is not one of {sorted(FLOAT_DTYPES)}.")

    _validate_fields(manifest["fields"], source, fix)
    _validate_dims(manifest["dims"], manifest["fields"], source, file_size, fix)
    _validate_labels(manifest, source)


def _validate_fields(fields: list[Any], source: str, fix: str) -> None:
    for name in fields:
        if not isinstance(name, str) or name not in FIELDS:
            raise RecordingError(f"{source}: unknown field {_preview(name)}; known fields are {sorted(FIELDS)}.")
    duplicates = sorted({name for name in fields if fields.count(name) > 1})
    if duplicates:
        raise RecordingError(f"{source}: the manifest lists the field(s) {duplicates} more than once. {fix}")
    for name in REQUIRED_FIELDS:
        if name not in fields:
            raise RecordingError(f"{source}: the required field {name!r} is missing. {fix}")


def _validate_dims(dims: dict[str, Any], fields: list[str], source: str, file_size: int | None, fix: str) -> None:
    for axis, value in dims.items():
        if axis not in DIM_NAMES:
            raise RecordingError(
                f"{source}: dims[{axis!r}] is not an axis of schema version {SCHEMA_VERSION}; "
                f"the axes are {''.join(DIM_NAMES)}. {fix}"
            )
        if type(value) is not int or value < 0:
            raise RecordingError(f"{source}: dims[{axis!r}] is {_preview(value)}, expected a non-negative integer.")
        if file_size is not None and value > file_size:
            raise RecordingError(
                f"{source}: dims[{axis!r}]={value} ({DIM_NAMES[axis]}) is more than the file's "
                f"{file_size:,} bytes, which no recording can hold; the header is damaged. {fix}"
            )
    needed_axes = {axis for name in fields for axis in FIELDS[name].axes}
    for axis in sorted(needed_axes):
        if axis not in dims:
            raise RecordingError(f"{source}: dims[{axis!r}] is missing, but field(s) of this recording use it.")
    for axis in NON_EMPTY_AXES:
        if dims[axis] < 1:
            raise RecordingError(
                f"{source}: dims[{axis!r}]=0 means the recording has no {DIM_NAMES[axis]}; "
                "there is nothing to show. Record at least one."
            )


def _validate_labels(manifest: dict[str, Any], source: str) -> None:
    dims = manifest["dims"]
    num_steps, num_tokens = dims["P"], dims.get("T", 0)
    labels = manifest["token_labels"]
    if len(labels) != num_steps:
        raise RecordingError(f"{source}: token_labels has {len(labels)} steps, expected P={num_steps}.")
    for step, step_labels in enumerate(labels):
        if not isinstance(step_labels, list) or len(step_labels) != num_tokens:
            raise RecordingError(
                f"{source}: token_labels[{step}] is {_preview(step_labels)}, expected a list of "
                f"T={num_tokens} strings."
            )
        _check_strings(step_labels, f"token_labels[{step}]", source)
        step_labels[:] = [legible_text(label) for label in step_labels]

    if len(manifest["step_labels"]) != num_steps:
        raise RecordingError(f"{source}: step_labels must be {num_steps} strings, one per step.")
    _check_strings(manifest["step_labels"], "step_labels", source)
    manifest["step_labels"] = [legible_text(label) for label in manifest["step_labels"]]

    gate_names = manifest["gate_names"]
    _check_strings(gate_names, "gate_names", source)
    if "gates" in manifest["fields"] and len(gate_names) != dims["G"]:
        raise RecordingError(f"{source}: gate_names has {len(gate_names)} names but G={dims['G']}.")
    manifest["gate_names"] = [legible_text(name) for name in gate_names]


def _check_strings(values: list[Any], name: str, source: str) -> None:
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise RecordingError(
                f"{source}: {name}[{index}] is {type(value).__name__} {_preview(value)}, expected a string."
            )


def _tensor_table(
    header: dict[str, Any], manifest: dict[str, Any], source: str, data_start: int, data_size: int
) -> dict[str, TensorEntry]:
    dims = manifest["dims"]
    tensors: dict[str, TensorEntry] = {}
    spans: list[tuple[int, int, str]] = []
    for name in manifest["fields"]:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise RecordingError(f"{source}: the manifest lists field {name!r} but the file has no such tensor. {DAMAGED_FIX}")
        expected_dtype = "U8" if FIELDS[name].kind == "mask" else FLOAT_DTYPES[manifest["dtype"]]
        if entry.get("dtype") != expected_dtype:
            raise RecordingError(
                f"{source}: tensor {name!r} has dtype {_preview(entry.get('dtype'))}, expected "
                f"{expected_dtype!r}. {DAMAGED_FIX}"
            )
        shape = entry.get("shape")
        expected_shape = field_shape(name, dims)
        if not isinstance(shape, list) or [type(size) for size in shape] != [int] * len(shape) \
                or tuple(shape) != expected_shape:
            raise RecordingError(
                f"{source}: tensor {name!r} has shape {_preview(shape)}, but the manifest's dims give "
                f"{describe_shape(FIELDS[name].axes, expected_shape)}. {DAMAGED_FIX}"
            )
        offsets = entry.get("data_offsets")
        if not isinstance(offsets, list) or len(offsets) != 2 or [type(value) for value in offsets] != [int, int]:
            raise RecordingError(f"{source}: tensor {name!r} has invalid data_offsets {_preview(offsets)}. {DAMAGED_FIX}")

        begin, end = offsets
        dtype = SAFETENSORS_DTYPES[expected_dtype]
        nbytes = int(np.prod(expected_shape, dtype=object)) * dtype.itemsize
        if nbytes > data_size:
            raise RecordingError(
                f"{source} is cut off or damaged: tensor {name!r} "
                f"{describe_shape(FIELDS[name].axes, expected_shape)} needs {nbytes:,} bytes, but the "
                f"file has only {data_size:,} bytes of data. {DAMAGED_FIX}"
            )
        if begin < 0 or end - begin != nbytes:
            raise RecordingError(
                f"{source}: tensor {name!r} spans bytes {begin}..{end} but its shape needs {nbytes:,} bytes. {DAMAGED_FIX}"
            )
        if end > data_size:
            raise RecordingError(
                f"{source} is cut off: tensor {name!r} needs bytes up to {end:,} of the data section, "
                f"but only {data_size:,} are present. {DAMAGED_FIX}"
            )
        if nbytes:
            spans.append((begin, end, name))
        tensors[name] = TensorEntry(dtype, expected_shape, data_start + begin)

    spans.sort()
    for (_, previous_end, previous), (begin, _, name) in zip(spans, spans[1:]):
        if begin < previous_end:
            raise RecordingError(
                f"{source}: tensors {previous!r} and {name!r} overlap in the file, so at least one "
                f"of them is wrong. {DAMAGED_FIX}"
            )
    return tensors


def _validate_masks(buffer: Any, tensors: dict[str, TensorEntry], source: str) -> None:
    """Check token_mask [P, T] and active [P, L, S]: small uint8 arrays read once at open."""
    if "token_mask" in tensors:
        mask = _read(buffer, tensors["token_mask"]).astype(np.int16)
        for step, row in enumerate(mask):
            if row.size and (row.max() > 1 or np.any(np.diff(row) > 0)):
                raise RecordingError(
                    f"{source}: token_mask of step {step} is {_preview(row.tolist())}; expected 1 for "
                    f"each real token followed by 0 for padding. {DAMAGED_FIX}"
                )
    if "active" in tensors:
        active = _read(buffer, tensors["active"])
        bad = np.argwhere(active > 1)
        if bad.size:
            step, layer, state = (int(index) for index in bad[0])
            raise RecordingError(
                f"{source}: active contains the value {int(active[step, layer, state])} at step {step}, "
                f"layer {layer + 1}, state {state}; expected 0 (pruned) or 1 (active). {DAMAGED_FIX}"
            )


def _read(buffer: Any, entry: TensorEntry) -> np.ndarray:
    count = int(np.prod(entry.shape, dtype=np.int64))
    return np.frombuffer(buffer, dtype=entry.dtype, count=count, offset=entry.offset).reshape(entry.shape)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
