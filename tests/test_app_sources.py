"""Dashboard sources: folder path safety, listing, app arguments, uploads and live runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app import sources, state
from app.sources import LiveSettings, SourceError
from nsm_core.config import ConfigError
from nsm_core.recording import Recording, RecordingError

DEFAULT_PATH = sources.BUNDLED_DIR / sources.DEFAULT_RECORDING
UNTRAINED_PATH = sources.BUNDLED_DIR / "untrained.nsm"  # its first half ends inside the data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A recordings folder with a nested file, a hidden temporary file and a text file."""
    root = tmp_path / "recordings"
    (root / "runs").mkdir(parents=True)
    data = DEFAULT_PATH.read_bytes()
    (root / "top.nsm").write_bytes(data)
    (root / "runs" / "nested.nsm").write_bytes(data)
    (root / ".top.nsm.123.tmp").write_bytes(data)
    (root / "notes.txt").write_text("not a recording")
    return root


def test_bundled_default_opens():
    loaded = sources.load_bundled()

    assert loaded.name == sources.DEFAULT_RECORDING
    assert loaded.key == f"bundled:{sources.DEFAULT_RECORDING}"
    assert loaded.recording.num_layers >= 1


def test_bundled_files_match_the_list():
    on_disk = sorted(path.name for path in sources.BUNDLED_DIR.glob("*.nsm"))

    assert sorted(sources.BUNDLED_RECORDINGS) == on_disk
    assert sources.DEFAULT_RECORDING in sources.BUNDLED_RECORDINGS


def test_every_bundled_recording_opens():
    for name in sources.BUNDLED_RECORDINGS:
        assert sources.load_bundled(name).recording.num_layers >= 1


def test_unknown_bundled_name_rejected():
    with pytest.raises(SourceError, match="'other.nsm' is not a bundled recording"):
        sources.load_bundled("other.nsm")


def test_folder_lists_nested_recordings_only(folder):
    names, truncated = sources.list_folder(folder)

    assert names == ["runs/nested.nsm", "top.nsm"]
    assert truncated is False


def test_folder_listing_skips_symlink_outside(folder, tmp_path):
    outside = tmp_path / "secret.nsm"
    outside.write_bytes(DEFAULT_PATH.read_bytes())
    (folder / "link.nsm").symlink_to(outside)
    (folder / "inside-link.nsm").symlink_to(folder / "top.nsm")
    (folder / "linked-dir").symlink_to(tmp_path, target_is_directory=True)

    names, _ = sources.list_folder(folder)

    assert "link.nsm" not in names
    assert "inside-link.nsm" in names
    assert not any(name.startswith("linked-dir") for name in names)


def test_folder_listing_truncates(folder, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LISTED_FILES", 1)

    names, truncated = sources.list_folder(folder)

    assert len(names) == 1
    assert truncated is True


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../secret.nsm", "contains '..'"),
        ("runs/../../secret.nsm", "contains '..'"),
        ("/etc/passwd.nsm", "is an absolute path"),
        ("C:/recordings/x.nsm", "is an absolute path"),
        ("runs\\nested.nsm", "is invalid"),
        ("", "is invalid"),
        ("top.nsm\x00.txt", "is invalid"),
        ("notes.txt", "does not end in .nsm"),
        ("missing.nsm", "is not a file"),
        ("runs", "does not end in .nsm"),
    ],
)
def test_folder_rejects_unsafe_name(folder, name, fragment):
    with pytest.raises(SourceError, match=fragment):
        sources.resolve_in_folder(folder, name)


def test_folder_rejects_symlink_outside(folder, tmp_path):
    outside = tmp_path / "secret.nsm"
    outside.write_bytes(DEFAULT_PATH.read_bytes())
    (folder / "link.nsm").symlink_to(outside)

    with pytest.raises(SourceError, match="points outside the recordings folder"):
        sources.load_from_folder(folder, "link.nsm")


def test_folder_rejects_symlinked_subfolder_outside(folder, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.nsm").write_bytes(DEFAULT_PATH.read_bytes())
    (folder / "away").symlink_to(tmp_path / "elsewhere", target_is_directory=True)

    with pytest.raises(SourceError, match="points outside"):
        sources.resolve_in_folder(folder, "away/x.nsm")


def test_folder_opens_nested_file(folder):
    loaded = sources.load_from_folder(folder, "runs/nested.nsm")

    assert loaded.name == "runs/nested.nsm"
    assert np.array_equal(loaded.recording.array("states"), Recording.open(DEFAULT_PATH).array("states"))


def test_folder_reopens_rewritten_file(folder):
    first = sources.load_from_folder(folder, "top.nsm")
    tutorial = (sources.BUNDLED_DIR / "tutorial.nsm").read_bytes()
    (folder / "top.nsm").write_bytes(tutorial)
    os.utime(folder / "top.nsm", ns=(1, 1))

    second = sources.load_from_folder(folder, "top.nsm")

    assert second.key != first.key
    assert second.recording.num_states == 5


def test_folder_damaged_file_raises_recording_error(folder):
    (folder / "bad.nsm").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")

    with pytest.raises(RecordingError, match="header is not valid JSON"):
        sources.load_from_folder(folder, "bad.nsm")


def test_missing_folder_rejected(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        sources.list_folder(tmp_path / "nowhere")


def test_file_as_folder_rejected(folder):
    with pytest.raises(SourceError, match="is a file, not a folder"):
        sources.list_folder(folder / "top.nsm")


def test_app_args_flag_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.RECORDINGS_DIR_ENV, str(tmp_path / "from-env"))

    folder, unknown = sources.parse_app_args(["--recordings-dir", str(tmp_path / "from-flag"), "--other"])

    assert folder == tmp_path / "from-flag"
    assert unknown == ["--other"]


def test_app_args_environment_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.RECORDINGS_DIR_ENV, str(tmp_path))

    assert sources.parse_app_args([]) == (tmp_path, [])


def test_app_args_without_folder(monkeypatch):
    monkeypatch.delenv(sources.RECORDINGS_DIR_ENV, raising=False)

    assert sources.parse_app_args([]) == (None, [])


def test_upload_size_limit_message():
    limit = 2
    sources.check_upload_size("ok.nsm", limit * sources.BYTES_PER_MB, limit)

    with pytest.raises(SourceError, match=r"big.nsm is 2.0 MB, over the upload limit of 2 MB"):
        sources.check_upload_size("big.nsm", limit * sources.BYTES_PER_MB + 1, limit)


def test_upload_parsed_once_per_content():
    data = DEFAULT_PATH.read_bytes()

    first = sources.load_upload("a.nsm", data)
    second = sources.load_upload("a.nsm", bytes(data))

    assert first.key == second.key == f"upload:{sources.content_digest(data)}"
    assert first.recording is second.recording


def test_upload_damaged_file_raises_recording_error():
    data = UNTRAINED_PATH.read_bytes()

    with pytest.raises(RecordingError, match="cut off"):
        sources.load_upload("cut.nsm", data[: len(data) // 2])


def test_upload_wrong_suffix_rejected():
    with pytest.raises(SourceError, match="does not end in .nsm"):
        sources.load_upload("run.csv", DEFAULT_PATH.read_bytes())


def test_live_run_records_settings():
    settings = LiveSettings(num_states=3, state_dim=8, num_layers=2, num_heads=2, steps=2, text="abcd", seed=5)

    loaded = sources.load_live(settings)

    recording = loaded.recording
    assert (recording.num_steps, recording.num_layers, recording.num_states, recording.state_dim) == (2, 2, 3, 8)
    assert recording.token_labels(0) == ["a", "b"]
    assert recording.extra["live_settings"]["seed"] == 5
    assert Recording.from_bytes(loaded.data, "copy.nsm").num_states == 3
    assert sources.load_live(settings).recording is recording


def test_live_runs_differ_by_seed():
    first = sources.load_live(LiveSettings(num_states=2, state_dim=4, num_heads=1, steps=1, text="ab", seed=1))
    second = sources.load_live(LiveSettings(num_states=2, state_dim=4, num_heads=1, steps=1, text="ab", seed=2))

    assert first.key != second.key
    assert not np.array_equal(first.recording.array("states"), second.recording.array("states"))


@pytest.mark.parametrize(
    ("changes", "error", "fragment"),
    [
        ({"text": ""}, SourceError, "the input text is empty"),
        ({"text": "ab", "steps": 3}, SourceError, "steps=3 is more than the 2 tokens"),
        ({"text": "x" * (sources.MAX_LIVE_TOKENS + 1)}, SourceError, "more than the live limit"),
        ({"state_dim": 4, "num_heads": 8}, ConfigError, "state_dim=4 is not divisible by num_heads=8"),
        ({"num_states": 2, "routing_top_k": 3}, ConfigError, "routing_top_k=3 is outside"),
    ],
)
def test_live_settings_rejected(changes, error, fragment):
    with pytest.raises(error, match=fragment):
        sources.load_live(LiveSettings(**changes))


def test_shape_description_counts_singular():
    tutorial = sources.load_bundled("tutorial.nsm").recording

    assert state.describe_shape(tutorial) == "1 step × 4 layers, 5 states × 10 dims"
