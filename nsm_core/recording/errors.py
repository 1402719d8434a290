class RecordingError(ValueError):
    """A recording file is missing, damaged, of an unknown version or inconsistent."""
