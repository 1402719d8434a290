"""Recording files: capture with forward hooks, stream to safetensors, read back lazily."""

from nsm_core.recording.errors import RecordingError
from nsm_core.recording.reader import Frame, Recording, open_recording
from nsm_core.recording.recorder import NSM_ADAPTER, TUTORIAL_ADAPTER, Adapter, Recorder, capture, record
from nsm_core.recording.schema import FIELDS, FILE_SUFFIX, SCHEMA_VERSION
from nsm_core.recording.writer import RecordingWriter

__all__ = [
    "Adapter", "FIELDS", "FILE_SUFFIX", "Frame", "NSM_ADAPTER", "Recorder", "Recording", "RecordingError",
    "RecordingWriter", "SCHEMA_VERSION", "TUTORIAL_ADAPTER", "capture", "open_recording", "record",
]
