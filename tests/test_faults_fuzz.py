"""Fuzz the reader with mutated recordings: the only error it may raise is RecordingError.

Each mutated file is opened and then read completely (every frame, label, lazy array and
summary statistic), because a file that opens cleanly must also read cleanly.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsm_core.cli.inspect import summarise
from nsm_core.recording import Recording, RecordingError
from recording_files import RecordingParts, record_small

FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
)


@functools.cache
def small_blob() -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return record_small(Path(folder) / "small.nsm").read_bytes()


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists, the root excluded."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(_json_paths(child, (*prefix, key)))
    return paths


@functools.cache
def editable_paths() -> list[tuple]:
    parts = RecordingParts.split(small_blob())
    # Token labels are long and alike; one step's list stands for all of them.
    return [path for path in _json_paths({"header": parts.header, "manifest": parts.manifest})
            if path[:2] != ("header", "__metadata__") and not (len(path) > 3 and path[1] == "token_labels")]


def read_everything(recording: Recording) -> None:
    """Touch every part of a recording that the CLI and the dashboard read."""
    repr(recording)
    summarise(recording)
    for step in range(recording.num_steps):
        recording.token_labels(step)
        recording.states_through_layers(step)
        for layer in range(recording.num_layers + 1):
            recording.frame(step, layer)
    for name in recording.fields:
        np.asarray(recording.array(name)).sum()


def check_reader(blob: bytes) -> None:
    try:
        recording = Recording.from_bytes(blob, "mutated.nsm")
    except RecordingError:
        return
    try:
        read_everything(recording)
    except RecordingError:
        pass


def _set(tree: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    if value is _DELETE:
        del tree[path[-1]]
    else:
        tree[path[-1]] = value


def _get(tree: dict, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


_DELETE = object()


def _edited(path: tuple, value: Any) -> bytes:
    parts = RecordingParts.split(small_blob()).copy()
    tree = {"header": parts.header, "manifest": parts.manifest}
    _set(tree, path, value)
    return parts.join()


def test_unmutated_recording_reads_completely():
    read_everything(Recording.from_bytes(small_blob(), "small.nsm"))
    assert len(editable_paths()) > 50


@FUZZ_SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8))
def test_fuzz_byte_flips(flips):
    data = bytearray(small_blob())
    for position, mask in flips:
        data[position % len(data)] ^= mask
    check_reader(bytes(data))


@FUZZ_SETTINGS
@given(fraction=st.floats(0.0, 1.0), tail=st.binary(max_size=16))
def test_fuzz_truncation(fraction, tail):
    blob = small_blob()
    check_reader(blob[: int(len(blob) * fraction)] + tail)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_json_field_edits(data):
    path = data.draw(st.sampled_from(editable_paths()))
    value = data.draw(st.just(_DELETE) | JSON_VALUES)
    check_reader(_edited(path, value))


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_numeric_nudges(data):
    # Small changes to sizes and offsets are the edits most likely to slip past a check.
    parts = RecordingParts.split(small_blob())
    tree = {"header": parts.header, "manifest": parts.manifest}
    numeric = [path for path in editable_paths() if type(_get(tree, path)) is int]
    path = data.draw(st.sampled_from(numeric))
    delta = data.draw(st.integers(-4, 4).filter(bool) | st.sampled_from([2**31, 2**62, 10**12, -(2**40)]))
    check_reader(_edited(path, _get(tree, path) + delta))


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_manifest_text_edits(data):
    # Edits to the manifest's JSON text rather than to its parsed value.
    parts = RecordingParts.split(small_blob())
    text = json.dumps(parts.manifest)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 12)))
    replacement = data.draw(st.sampled_from(["", "[", "{", "]", "}", '"', "0", "-1", "1e400", "null", "[" * 5000]))
    check_reader(parts.join(manifest_text=text[:start] + replacement + text[end:]))


@settings(max_examples=40, deadline=None, database=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.floats(0.0, 1.0))
def test_fuzz_files_on_disk(tmp_path_factory, flips, cut):
    data = bytearray(small_blob())
    for position, mask in flips:
        data[position % len(data)] ^= mask
    path = tmp_path_factory.mktemp("fuzz") / "mutated.nsm"
    path.write_bytes(bytes(data[: max(1, int(len(data) * cut))]))

    try:
        recording = Recording.open(path)
    except RecordingError:
        return
    try:
        read_everything(recording)
    except RecordingError:
        pass
