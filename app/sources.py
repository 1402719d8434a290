"""Sources of the dashboard's recordings: bundled examples, uploads, a server folder and live runs.

Every loader returns a LoadedRecording: the open Recording and a key naming its content,
on which the cached derived data (app/frames.py) is keyed. Opened recordings and models are
Streamlit resources (st.cache_resource), so an upload is parsed once per file content and a
live run is recorded once per set of parameters, whatever the number of reruns.

A server folder is the only way to reach the server's file system, and nothing outside it
can be opened: resolve_in_folder() rejects absolute names, `..` components and symlinks whose
target lies outside the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import streamlit as st

from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel
from nsm_core.recording import FILE_SUFFIX, Recording, RecordingError
from nsm_core.recording.runs import record_nsm
from nsm_core.tokenize import byte_labels, encode_bytes

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "recordings"
# File name in BUNDLED_DIR -> what the sidebar calls it (short: the sidebar is narrow).
BUNDLED_RECORDINGS = {
    "digits.nsm": "Digits: one test image",
    "digits_training.nsm": "Digits: one image in training",
    "recall.nsm": "Recall: 8 pairs",
    "recall_hard.nsm": "Recall: 16 pairs, 8 states",
    "recall_split_failing.nsm": "Recall split: fails to bind",
    "untrained.nsm": "Untrained: the cat sat…",
    "tutorial.nsm": "Teaching example, 5 × 10",
}
# The recording the dashboard opens with no choice by the user; switch it here.
DEFAULT_RECORDING = "digits.nsm"

RECORDINGS_DIR_FLAG = "--recordings-dir"
RECORDINGS_DIR_ENV = "NSM_RECORDINGS_DIR"
# A folder listing stops here, so that pointing the flag at a huge tree stays responsive.
MAX_LISTED_FILES = 500

# Opened recordings kept per kind of source. Uploads and live runs hold their bytes in memory.
MAX_CACHED_RECORDINGS = 8
BYTES_PER_MB = 1024 * 1024  # Streamlit's server.maxUploadSize counts MB of 2^20 bytes

# Live runs: byte-level tokens, so the text length in UTF-8 bytes is T. Token attention is
# stored as [P, L, H, T, T], so at the largest live settings (8 layers, 8 heads) 256 tokens
# take 16 MB per recording in memory, and 1024 tokens would take 256 MB.
MAX_LIVE_TOKENS = 256
LIVE_TOKEN_DIM = 64  # divisible by every head count the live controls offer


class SourceError(ValueError):
    """A recording source is unusable: a rejected path, a missing folder, an oversized upload."""


@dataclass(frozen=True)
class LoadedRecording:
    """An open recording, the key of its content and the name shown to the user."""

    key: str
    recording: Recording
    name: str
    data: bytes | None = None  # the file's bytes when it exists only in memory (live runs)


# Bundled examples ----------------------------------------------------------------------------


@st.cache_resource(max_entries=MAX_CACHED_RECORDINGS, show_spinner=False)
def _open_bundled(name: str) -> Recording:
    return Recording.open(BUNDLED_DIR / name)


def load_bundled(name: str = DEFAULT_RECORDING) -> LoadedRecording:
    """Open one of the recordings shipped in assets/recordings."""
    if name not in BUNDLED_RECORDINGS:
        raise SourceError(
            f"{name!r} is not a bundled recording; choose one of {', '.join(BUNDLED_RECORDINGS)}."
        )
    return LoadedRecording(f"bundled:{name}", _open_bundled(name), name)


# Uploads -------------------------------------------------------------------------------------


def upload_limit_mb() -> int:
    """Return the upload limit in MB, Streamlit's server.maxUploadSize."""
    return int(st.get_option("server.maxUploadSize"))


def check_upload_size(name: str, size: int, limit_mb: int) -> None:
    """Raise SourceError when an upload of `size` bytes exceeds `limit_mb`.

    The browser enforces the same limit, but a client can bypass it, so the server checks too.
    """
    if size > limit_mb * BYTES_PER_MB:
        raise SourceError(
            f"{name} is {size / BYTES_PER_MB:.1f} MB, over the upload limit of {limit_mb} MB. "
            f"Put the file in the server's recordings folder ({RECORDINGS_DIR_FLAG}) instead, "
            "or record fewer steps, or record with --dtype float16."
        )


@st.cache_resource(max_entries=MAX_CACHED_RECORDINGS, show_spinner="Reading the recording…")
def _open_upload(digest: str, name: str, _data: bytes) -> Recording:
    # Keyed on the content's digest; the bytes themselves are not hashed on every rerun.
    return Recording.from_bytes(_data, name)


def load_upload(name: str, data: bytes, digest: str | None = None) -> LoadedRecording:
    """Parse an uploaded recording once per content; raise SourceError or RecordingError.

    `digest` is the SHA-256 hex digest of `data` if the caller has it already.
    """
    check_upload_size(name, len(data), upload_limit_mb())
    if not name.endswith(FILE_SUFFIX):
        raise SourceError(f"{name} does not end in {FILE_SUFFIX}; upload a recording made by `nsm_core record`.")
    digest = digest or content_digest(data)
    return LoadedRecording(f"upload:{digest}", _open_upload(digest, name, data), name)


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Server folder -------------------------------------------------------------------------------


def parse_app_args(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Return (recordings folder or None, unrecognised arguments) from the app's arguments.

    The folder comes from `--recordings-dir DIR` after `streamlit run app/streamlit_app.py --`,
    or else from the NSM_RECORDINGS_DIR environment variable.
    """
    parser = argparse.ArgumentParser(prog="streamlit run app/streamlit_app.py --", add_help=False)
    parser.add_argument(RECORDINGS_DIR_FLAG, dest="recordings_dir", type=Path)
    known, unknown = parser.parse_known_args(argv)
    folder = known.recordings_dir
    if folder is None and os.environ.get(RECORDINGS_DIR_ENV):
        folder = Path(os.environ[RECORDINGS_DIR_ENV])
    return folder, unknown


def check_folder(folder: Path) -> Path:
    """Return the folder's resolved path; raise SourceError if it is not an existing folder."""
    if not folder.exists():
        raise SourceError(
            f"recordings folder {str(folder)!r} does not exist; pass an existing folder with "
            f"{RECORDINGS_DIR_FLAG} or {RECORDINGS_DIR_ENV}."
        )
    if not folder.is_dir():
        raise SourceError(f"{str(folder)!r} is a file, not a folder; pass the folder that contains it.")
    return folder.resolve()


def list_folder(folder: Path) -> tuple[list[str], bool]:
    """List the .nsm files in `folder` and its subfolders as sorted POSIX names relative to it.

    Symlinks are listed only when their target lies inside the folder; symlinked folders are
    not entered. Returns (names, truncated), truncated when more than MAX_LISTED_FILES exist.
    """
    root = check_folder(folder)
    names: list[str] = []
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for file_name in sorted(files):
            if file_name.startswith(".") or not file_name.endswith(FILE_SUFFIX):
                continue
            path = Path(directory) / file_name
            if not _is_inside(path.resolve(), root) or not path.is_file():
                continue
            names.append(path.relative_to(root).as_posix())
            if len(names) > MAX_LISTED_FILES:
                return sorted(names[:MAX_LISTED_FILES]), True
    return sorted(names), False


def resolve_in_folder(folder: Path, name: str) -> Path:
    """Return the file that `name` designates inside `folder`; raise SourceError otherwise.

    `name` is relative, with "/" between components, as list_folder() returns it. Absolute
    names, drive letters, backslashes, `..` components and paths whose symlinks lead out of
    the folder are rejected, so nothing outside the folder can be opened.
    """
    root = check_folder(folder)
    rule = "choose a recording listed from the server folder"
    if not name or "\x00" in name or "\\" in name:
        raise SourceError(f"recording name {name!r} is invalid; {rule}.")
    relative = PurePosixPath(name)
    if relative.is_absolute() or PureWindowsPath(name).drive:
        raise SourceError(f"recording name {name!r} is an absolute path; {rule}.")
    if ".." in relative.parts:
        raise SourceError(f"recording name {name!r} contains '..'; {rule}.")
    if relative.suffix != FILE_SUFFIX:
        raise SourceError(f"recording name {name!r} does not end in {FILE_SUFFIX}; {rule}.")

    path = (root / relative).resolve()
    if not _is_inside(path, root):
        raise SourceError(f"recording {name!r} points outside the recordings folder (a symlink); {rule}.")
    if not path.is_file():
        raise SourceError(f"recording {name!r} is not a file in the recordings folder; {rule}.")
    return path


@st.cache_resource(max_entries=MAX_CACHED_RECORDINGS, show_spinner="Opening the recording…")
def _open_file(path: str, modified_ns: int, size: int) -> Recording:
    # Keyed on modification time and size too, so that a rewritten file is opened again.
    return Recording.open(path)


def load_from_folder(folder: Path, name: str) -> LoadedRecording:
    """Open `name` from the server folder; raise SourceError or RecordingError."""
    path = resolve_in_folder(folder, name)
    stat = path.stat()
    recording = _open_file(str(path), stat.st_mtime_ns, stat.st_size)
    return LoadedRecording(f"folder:{path}:{stat.st_mtime_ns}:{stat.st_size}", recording, name)


def _is_inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


# Live runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveSettings:
    """Parameters of a live run: an NSM config (seeded weights) and the input it reads."""

    num_states: int = 8
    state_dim: int = 32
    num_layers: int = 3
    num_heads: int = 4
    gate: str = "gru"
    routing_temperature: float = 1.0
    routing_top_k: int | None = None
    prune_threshold: float = 0.0
    seed: int = 0
    steps: int = 2
    text: str = "the cat sat on the mat"

    def config(self) -> NSMConfig:
        """Build the NSMConfig; raises ConfigError naming an invalid field."""
        return NSMConfig(
            num_states=self.num_states,
            state_dim=self.state_dim,
            token_dim=LIVE_TOKEN_DIM,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            gate=self.gate,
            routing_temperature=self.routing_temperature,
            routing_top_k=self.routing_top_k,
            prune_threshold=self.prune_threshold,
            seed=self.seed,
        )

    def check_input(self) -> None:
        """Raise SourceError unless the text and steps make a valid run."""
        length = len(self.text.encode("utf-8"))
        if length == 0:
            raise SourceError("the input text is empty; type at least one character.")
        if length > MAX_LIVE_TOKENS:
            raise SourceError(
                f"the input text is {length} UTF-8 bytes (tokens), more than the live limit of "
                f"{MAX_LIVE_TOKENS}; shorten it, or record it with `python -m nsm_core record`."
            )
        if self.steps > length:
            raise SourceError(
                f"steps={self.steps} is more than the {length} tokens of the input; every step "
                f"needs at least one token, so choose {length} steps or fewer or type more text."
            )


@dataclass(frozen=True)
class _SharedModel:
    model: NSMModel
    # The recorder attaches hooks to the model, so two sessions must not record it at once.
    lock: threading.Lock


@st.cache_resource(max_entries=4, show_spinner="Building the model…")
def _build_model(config_json: str) -> _SharedModel:
    config = NSMConfig.from_dict(json.loads(config_json))
    return _SharedModel(NSMModel(config).eval(), threading.Lock())


@st.cache_resource(max_entries=MAX_CACHED_RECORDINGS, show_spinner="Running and recording the model…")
def _record_live(settings: LiveSettings) -> tuple[Recording, bytes]:
    shared = _build_model(settings.config().to_json())
    with shared.lock, tempfile.TemporaryDirectory(prefix="nsm-live-") as folder:
        path = Path(folder) / "live.nsm"
        record_nsm(
            shared.model,
            encode_bytes(settings.text),
            path,
            token_labels=byte_labels(settings.text),
            num_steps=settings.steps,
            extra={"input_text": settings.text, "live_settings": asdict(settings)},
        )
        data = path.read_bytes()
    logger.info("recorded a live run of %d bytes with %s", len(data), settings)
    return Recording.from_bytes(data, "live.nsm"), data


def load_live(settings: LiveSettings) -> LoadedRecording:
    """Run and record the model the settings describe; raise ConfigError or SourceError."""
    settings.config()
    settings.check_input()
    recording, data = _record_live(settings)
    digest = content_digest(json.dumps(asdict(settings), sort_keys=True).encode("utf-8"))
    return LoadedRecording(f"live:{digest}", recording, "live.nsm", data)

