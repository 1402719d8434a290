"""Damaged, foreign and hostile recording files: each raises RecordingError with a clear message."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nsm_core.recording import Recording, RecordingError, RecordingWriter
from nsm_core.recording.schema import MANIFEST_TYPES, SCHEMA_VERSION
from recording_files import RecordingParts, record_small


@pytest.fixture(scope="module")
def small_blob(tmp_path_factory) -> bytes:
    return record_small(tmp_path_factory.mktemp("small") / "small.nsm").read_bytes()


@pytest.fixture
def parts(small_blob) -> RecordingParts:
    return RecordingParts.split(small_blob).copy()


def _rejection(blob: bytes, name: str = "damaged.nsm") -> str:
    with pytest.raises(RecordingError) as info:
        Recording.from_bytes(blob, name)
    return str(info.value)


def test_small_recording_is_valid(small_blob):
    recording = Recording.from_bytes(small_blob, "small.nsm")

    assert recording.dims == {"P": 2, "L": 2, "S": 4, "D": 8, "T": 3, "H": 2, "G": 2, "C": 0}
    assert recording.token_labels(0) == ["a", "b"]  # padded to T=3
    assert recording.token_labels(1) == ["c", "d", "e"]


# Random bytes, empty and cut-off files -------------------------------------------------------


@pytest.mark.parametrize(
    "blob",
    [random.Random(0).randbytes(8), bytes(range(8)), b"\xff" * 8, b"\x00" * 8, b"PK\x03\x04\x14\x00\x00\x00"],
    ids=["random", "counting", "ones", "zeros", "zip"],
)
def test_eight_random_bytes_rejected(tmp_path, blob):
    path = tmp_path / "noise.nsm"
    path.write_bytes(blob)

    for load in (lambda: Recording.open(path), lambda: Recording.from_bytes(blob, "noise.nsm")):
        with pytest.raises(RecordingError) as info:
            load()
        assert "noise.nsm" in str(info.value)
        assert "not a recording" in str(info.value)


def test_empty_file_rejected(tmp_path):
    path = tmp_path / "empty.nsm"
    path.write_bytes(b"")

    with pytest.raises(RecordingError, match="empty.nsm is 0 bytes long"):
        Recording.open(path)
    with pytest.raises(RecordingError, match="0 bytes long"):
        Recording.from_bytes(b"", "empty.nsm")


@pytest.mark.parametrize("keep", ["8 bytes", "12 bytes", "half", "all but 1 byte"])
def test_cut_off_file_rejected(tmp_path, small_blob, keep):
    length = {"8 bytes": 8, "12 bytes": 12, "half": len(small_blob) // 2, "all but 1 byte": len(small_blob) - 1}[keep]
    path = tmp_path / "cut.nsm"
    path.write_bytes(small_blob[:length])

    with pytest.raises(RecordingError, match="cut off") as info:
        Recording.open(path)
    assert "cut.nsm" in str(info.value)


def test_every_truncation_rejected(small_blob):
    for length in range(0, len(small_blob), 7):
        with pytest.raises(RecordingError):
            Recording.from_bytes(small_blob[:length], f"first {length} bytes")


def test_unfinished_recording_rejected(tmp_path):
    # What a killed recorder leaves behind: a complete-looking temporary file never committed.
    dims = {"P": 1, "L": 1, "S": 2, "D": 2}
    manifest = {"token_labels": [[]], "step_labels": ["a"], "gate_names": [], "model": {},
                "versions": {}, "created": "now", "extra": {}}
    writer = RecordingWriter(tmp_path / "run.nsm", dims, ["initial_states", "states"], manifest)
    writer.open()
    writer.write_step(0, {"initial_states": np.ones((2, 2)), "states": np.ones((1, 2, 2))})
    writer._file.flush()
    (leftover,) = [path for path in tmp_path.iterdir() if path.suffix == ".tmp"]
    shutil.copy(leftover, tmp_path / "renamed.nsm")
    writer.abort()

    with pytest.raises(RecordingError, match="renamed.nsm is an unfinished recording"):
        Recording.open(tmp_path / "renamed.nsm")


# Header claims that do not fit the file ------------------------------------------------------


def test_header_claiming_huge_axis_rejected(parts):
    parts.manifest["dims"]["D"] = 10**12

    message = _rejection(parts.join())
    assert "dims['D']=1000000000000" in message
    assert "damaged.nsm" in message


def test_header_claiming_huge_tensor_rejected(parts):
    # Every axis fits the file, but initial_states [P=2, S=4, D=3000] alone needs 96,000 bytes.
    state_dim = 3000
    parts.manifest["dims"]["D"] = state_dim
    parts.manifest["fields"] = ["initial_states", "states"]
    begin = 0
    for name, shape in (("initial_states", [2, 4, state_dim]), ("states", [2, 2, 4, state_dim])):
        nbytes = int(np.prod(shape)) * 4
        parts.header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + nbytes]}
        begin += nbytes

    message = _rejection(parts.join())
    assert "'initial_states'" in message
    assert "96,000 bytes" in message
    assert "cut off" in message


def test_header_claiming_ten_to_twelve_elements_rejected(parts):
    parts.manifest["dims"].update({"S": 10**4, "D": 10**4})
    parts.manifest["fields"] = ["initial_states", "states"]
    parts.header["states"]["shape"] = [2, 2, 10**4, 10**4]  # 4·10^8 elements; the product is what counts
    parts.header["states"]["data_offsets"] = [0, 2 * 2 * 10**8 * 4]

    message = _rejection(parts.join())
    assert "10000" in message


def test_offsets_disagreeing_with_shape_rejected(parts):
    begin, _ = parts.header["states"]["data_offsets"]
    parts.header["states"]["data_offsets"] = [begin, begin + 8]

    assert "'states' spans bytes" in _rejection(parts.join())


@pytest.mark.parametrize("offsets", [[0.0, 64.0], [False, True], [0], "0-64", [-4, 60], None])
def test_malformed_offsets_rejected(parts, offsets):
    parts.header["states"]["data_offsets"] = offsets

    assert "'states'" in _rejection(parts.join())


def test_overlapping_tensors_rejected(parts):
    # routing claims the bytes of states; both entries are otherwise consistent.
    states_begin, _ = parts.header["states"]["data_offsets"]
    begin, end = parts.header["routing"]["data_offsets"]
    parts.header["routing"]["data_offsets"] = [states_begin, states_begin + end - begin]

    message = _rejection(parts.join())
    assert "overlap" in message
    assert "'routing'" in message
    assert "'states'" in message


# Manifest problems ------------------------------------------------------------------------------


def test_newer_schema_version_rejected(parts):
    parts.manifest["schema_version"] = SCHEMA_VERSION + 1

    message = _rejection(parts.join())
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "Upgrade NSM Inspector" in message


@pytest.mark.parametrize("key", sorted(MANIFEST_TYPES))
def test_manifest_missing_field_rejected(parts, key):
    del parts.manifest[key]

    assert repr(key) in _rejection(parts.join())


WRONG_TYPES = {str: 3, int: "1", list: "x", dict: ["x"]}


@pytest.mark.parametrize("key", sorted(MANIFEST_TYPES))
def test_manifest_wrongly_typed_field_rejected(parts, key):
    parts.manifest[key] = WRONG_TYPES[MANIFEST_TYPES[key]]

    assert repr(key) in _rejection(parts.join())


def test_manifest_bool_version_rejected(parts):
    parts.manifest["schema_version"] = True

    assert "'schema_version'" in _rejection(parts.join())


def test_manifest_shape_disagreeing_with_tensor_rejected(parts):
    parts.manifest["dims"]["S"] = 5

    message = _rejection(parts.join())
    assert "'initial_states' has shape [2, 4, 8]" in message
    assert "[P=2, S=5, D=8]" in message


def test_tensor_shape_disagreeing_with_manifest_rejected(parts):
    parts.header["states"]["shape"] = [2, 2, 8, 4]

    message = _rejection(parts.join())
    assert "'states' has shape [2, 2, 8, 4]" in message
    assert "[P=2, L=2, S=4, D=8]" in message


@pytest.mark.parametrize("where", ["header", "manifest"])
def test_deeply_nested_json_rejected(parts, where):
    nested = "[" * 100_000 + "]" * 100_000
    if where == "header":
        blob = parts.join(header_text=nested)
    else:
        blob = parts.join(manifest_text=nested)

    assert "JSON" in _rejection(blob)


def test_integer_too_long_for_json_rejected(parts):
    manifest_text = json.dumps(parts.manifest).replace('"schema_version": 1', '"schema_version": ' + "9" * 5000)

    assert "JSON" in _rejection(parts.join(manifest_text=manifest_text))


@pytest.mark.parametrize(
    "fields",
    [["initial_states", "states", ["routing"]], ["initial_states", "states", 3],
     ["initial_states", "states", None], ["initial_states", "states", "states"]],
    ids=["list", "int", "null", "duplicate"],
)
def test_malformed_field_list_rejected(parts, fields):
    parts.manifest["fields"] = fields

    assert "field" in _rejection(parts.join())


@pytest.mark.parametrize(
    ("axis", "value"),
    [("C", "x"), ("C", 10**30), ("C", -1), ("S", 0), ("L", 0), ("D", 0), ("T", True), ("Q", 3)],
)
def test_malformed_dims_rejected(parts, axis, value):
    parts.manifest["dims"][axis] = value

    message = _rejection(parts.join())
    assert f"dims[{axis!r}]" in message


def test_gate_names_must_be_strings(parts):
    parts.manifest["gate_names"] = [1, 2]

    assert "gate_names" in _rejection(parts.join())


@pytest.mark.parametrize(
    "labels",
    [["ab", ["c", "d", "e"]], [["a", "b"], ["c", "d", "e"]], [[1, 2, 3], ["c", "d", "e"]], [{"a": 1}, []]],
    ids=["string-step", "short-step", "int-labels", "dict-step"],
)
def test_token_labels_must_be_lists_of_strings(parts, labels):
    parts.manifest["token_labels"] = labels

    assert "token_labels" in _rejection(parts.join())


def _with_mask_bytes(parts: RecordingParts, name: str, values: list[int]) -> bytes:
    begin, end = parts.header[name]["data_offsets"]
    assert end - begin == len(values)
    data = bytearray(parts.data)
    data[begin:end] = bytes(values)
    parts.data = bytes(data)
    return parts.join()


@pytest.mark.parametrize("mask", [[1, 1, 0, 1, 1, 255], [1, 1, 0, 2, 1, 1], [1, 1, 0, 1, 0, 1]],
                         ids=["255", "2", "gap"])
def test_malformed_token_mask_rejected(parts, mask):
    message = _rejection(_with_mask_bytes(parts, "token_mask", mask))

    assert "token_mask" in message
    assert "step 1" in message


def test_malformed_active_mask_rejected(parts):
    values = [1] * (2 * 2 * 4)
    values[5] = 7
    message = _rejection(_with_mask_bytes(parts, "active", values))

    assert "active" in message
    assert "7" in message


# How the bytes arrive ---------------------------------------------------------------------------


def test_open_directory_rejected(tmp_path):
    with pytest.raises(RecordingError, match="not a regular file"):
        Recording.open(tmp_path)


def test_open_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Recording.open(tmp_path / "nope.nsm")


def test_open_path_with_nul_rejected(tmp_path):
    with pytest.raises(RecordingError, match="invalid path"):
        Recording.open(str(tmp_path / "a\0b.nsm"))


def test_from_bytes_copies_mutable_buffer(small_blob):
    buffer = bytearray(small_blob)
    recording = Recording.from_bytes(buffer, "upload.nsm")
    expected = recording.frame(0, 1).states
    buffer[:] = bytes(len(buffer))

    assert np.array_equal(recording.frame(0, 1).states, expected)


def test_from_bytes_accepts_any_memoryview(small_blob):
    expected = Recording.from_bytes(small_blob).frame(1, 2).routing
    padded = small_blob + bytes(-len(small_blob) % 4)
    as_ints = memoryview(np.frombuffer(padded, dtype=np.int32))  # itemsize 4: len() counts items
    strided = memoryview(np.repeat(np.frombuffer(small_blob, dtype=np.uint8), 2)[::2])  # not contiguous

    for view in (memoryview(small_blob), as_ints, strided):
        recording = Recording.from_bytes(view, "upload.nsm")
        assert np.array_equal(recording.frame(1, 2).routing, expected, equal_nan=True)


def test_from_bytes_rejects_text():
    with pytest.raises(TypeError, match="getvalue"):
        Recording.from_bytes("not bytes", "upload.nsm")


def test_file_shrinking_while_open_raises(tmp_path):
    # Run in a child: if the reader touched unmapped pages, SIGBUS would kill the process.
    path = record_small(tmp_path / "shrinks.nsm")
    script = textwrap.dedent(
        f"""
        import os
        from nsm_core.recording import Recording, RecordingError
        recording = Recording.open({str(path)!r})
        recording.frame(1, 2)
        os.truncate({str(path)!r}, os.path.getsize({str(path)!r}) // 2)
        try:
            recording.frame(1, 2)
        except RecordingError as error:
            print("RecordingError:", error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert "RecordingError: shrinks.nsm changed on disk" in result.stdout
    assert "open it again" in result.stdout
