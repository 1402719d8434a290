"""Layout of a recording file: the shape vocabulary, the stored fields and the manifest.

Shape letters, used in names, comments and error messages throughout the project:

    P  steps (input chunks; or training checkpoints), the "time" axis
    L  layers, the "depth" axis; frame (p, 0) holds the initial states of step p and
       frame (p, l) for l in 1..L holds what layer l produced
    S  state slots          D  state dim
    T  tokens per step (shorter steps are padded; token_mask marks real tokens)
    H  heads                G  gate channels (GRU: update, reset; LSTM: input, forget, output)
    C  classes of the per-sequence head

A recording is one safetensors file. Each field below is a single tensor stacked over steps
and layers, so reading frame (p, l) touches one contiguous slice per field. The JSON manifest
is stored as the safetensors metadata entry ``nsm_manifest``.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT_NAME = "nsm-recording"
SCHEMA_VERSION = 1
MANIFEST_KEY = "nsm_manifest"
FILE_SUFFIX = ".nsm"

DIM_NAMES = {
    "P": "steps",
    "L": "layers",
    "S": "states",
    "D": "state dim",
    "T": "tokens",
    "H": "heads",
    "G": "gate channels",
    "C": "classes",
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    axes: tuple[str, ...]
    kind: str  # "float" (float32 or float16 as recorded) or "mask" (uint8, 0 or 1)
    per_layer: bool  # stored for layers 1..L; otherwise once per step
    description: str


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("initial_states", ("P", "S", "D"), "float", False, "states entering layer 1"),
        FieldSpec("states", ("P", "L", "S", "D"), "float", True, "states after the layer"),
        FieldSpec("routing", ("P", "L", "H", "T", "S"), "float", True, "token→state routing weights"),
        FieldSpec("state_attention", ("P", "L", "H", "S", "S"), "float", True, "state↔state attention"),
        FieldSpec("gates", ("P", "L", "S", "G"), "float", True, "mean gate activation per state"),
        FieldSpec("importance", ("P", "L", "S"), "float", True, "importance score per state, in [0, 1]"),
        FieldSpec("active", ("P", "L", "S"), "mask", True, "1 for active states, 0 for pruned"),
        FieldSpec("readout", ("P", "L", "H", "T", "S"), "float", True, "tokens reading from states"),
        FieldSpec("token_attention", ("P", "L", "H", "T", "T"), "float", True, "token↔token attention"),
        FieldSpec("token_mask", ("P", "T"), "mask", False, "1 for real tokens, 0 for padding"),
        FieldSpec("sequence_logits", ("P", "C"), "float", False, "per-sequence head output"),
    )
}

REQUIRED_FIELDS = ("initial_states", "states")
FLOAT_DTYPES = {"float32": "F32", "float16": "F16"}

# Manifest keys and the JSON types they must have.
MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "schema_version": int,
    "dims": dict,
    "fields": list,
    "dtype": str,
    "token_labels": list,
    "step_labels": list,
    "gate_names": list,
    "model": dict,
    "versions": dict,
    "created": str,
    "extra": dict,
}


def field_shape(name: str, dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(dims[axis] for axis in FIELDS[name].axes)


def step_shape(name: str, dims: dict[str, int]) -> tuple[int, ...]:
    """Shape of one step's slice of a field (the field's shape without its leading P)."""
    return field_shape(name, dims)[1:]


def describe_shape(axes: tuple[str, ...], shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(f"{axis}={size}" for axis, size in zip(axes, shape)) + "]"
