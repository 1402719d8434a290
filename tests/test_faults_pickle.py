"""Pickles disguised as checkpoints or recordings are rejected without being unpickled.

Two independent witnesses show that nothing was unpickled. The first is a marker file that
the pickle creates when it is unpickled. The second is Python's audit event
``pickle.find_class``, which every unpickler raises before it looks up a global that the
pickle names (CPython 3.8 and later, C and Python implementations alike).
"""

from __future__ import annotations

import io
import pathlib
import pickle
import sys
import zipfile

import pytest
import torch

from nsm_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nsm_core.cli.main import main
from nsm_core.modules import NSMModel
from nsm_core.recording import Recording, RecordingError

_find_class_events: list[tuple[str, str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "pickle.find_class":
        _find_class_events.append(args)


# Audit hooks cannot be removed; this one only appends to a list and stays for the session.
sys.addaudithook(_audit)


class CreatesMarker:
    """Unpickling this object creates the file `marker`."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def marker(tmp_path) -> pathlib.Path:
    _find_class_events.clear()
    return tmp_path / "unpickled.marker"


def _assert_never_unpickled(marker: pathlib.Path) -> None:
    assert not marker.exists()
    assert _find_class_events == []


def _plain_pickle(marker: pathlib.Path) -> bytes:
    return pickle.dumps({"weights": CreatesMarker(marker)}, protocol=pickle.HIGHEST_PROTOCOL)


def _torch_zip_pickle(marker: pathlib.Path) -> bytes:
    # torch.save's zip layout with the payload in data.pkl, as a .pt or .bin checkpoint looks.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", _plain_pickle(marker))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _pickle_behind_safetensors_prefix(marker: pathlib.Path) -> bytes:
    # A plausible 8-byte header length followed by pickle bytes instead of JSON.
    payload = _plain_pickle(marker)
    return len(payload).to_bytes(8, "little") + payload


DISGUISES = {"plain": _plain_pickle, "torch-zip": _torch_zip_pickle, "length-prefixed": _pickle_behind_safetensors_prefix}


def test_marker_pickle_is_live(marker):
    # The witnesses work: unpickling the payload does create the marker and the audit event.
    pickle.loads(_plain_pickle(marker))

    assert marker.exists()
    assert ("pathlib", "Path.touch") in _find_class_events


@pytest.mark.parametrize("disguise", sorted(DISGUISES))
def test_pickle_as_checkpoint_rejected(tmp_path, marker, disguise):
    path = tmp_path / "model.safetensors"
    path.write_bytes(DISGUISES[disguise](marker))

    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(path)
    _assert_never_unpickled(marker)


@pytest.mark.parametrize("disguise", sorted(DISGUISES))
def test_pickle_as_recording_rejected(tmp_path, marker, disguise):
    path = tmp_path / "run.nsm"
    path.write_bytes(DISGUISES[disguise](marker))

    with pytest.raises(RecordingError, match="not a recording"):
        Recording.open(path)
    with pytest.raises(RecordingError):
        Recording.from_bytes(path.read_bytes(), "run.nsm")
    _assert_never_unpickled(marker)


def test_pickle_checkpoint_rejected_by_cli(tmp_path, marker, capsys):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(_torch_zip_pickle(marker))

    code = main(["record", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.nsm")])

    assert code == 1
    assert "model.pt is not a readable safetensors checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.nsm").exists()
    _assert_never_unpickled(marker)


def test_pickle_in_checkpoint_metadata_stays_text(tmp_path, marker, small_config):
    # A pickle placed in the config metadata is parsed as JSON, which it is not.
    path = save_checkpoint(NSMModel(small_config), tmp_path / "model.safetensors")
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    save_file(tensors, path, metadata={"nsm_config": _plain_pickle(marker).decode("latin-1")})

    with pytest.raises(CheckpointError, match="invalid 'nsm_config' metadata"):
        load_checkpoint(path)
    _assert_never_unpickled(marker)


def test_valid_checkpoint_still_loads(tmp_path, small_config):
    model = NSMModel(small_config)
    path = save_checkpoint(model, tmp_path / "model.safetensors", info={"task": "copy"})
    loaded, info = load_checkpoint(path)

    assert info == {"task": "copy"}
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
