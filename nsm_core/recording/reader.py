"""Lazy, validating reader of recording files.

Opening a recording reads and checks the header and the two small masks (validate.py lists
every check). Tensors are memory-mapped views, so a frame costs what the frame costs, not
what the file costs. Every problem with a file raises RecordingError with a message that
says what is wrong and what to do. No pickle is involved anywhere: the file is a safetensors
header, JSON, followed by raw little-endian arrays.
"""

from __future__ import annotations

import mmap
import operator
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsm_core.recording.errors import RecordingError
from nsm_core.recording.validate import TensorEntry, parse_recording

# Shorter than the 8-byte header length that every safetensors file starts with.
MIN_FILE_BYTES = 8


@dataclass
class Frame:
    """Everything recorded at one (step, layer). Layer 0 contains only the initial states.

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
        self.manifest, self._tensors = parse_recording(buffer, size, source)
        self.dims: dict[str, int] = dict(self.manifest["dims"])
        self.fields: list[str] = list(self.manifest["fields"])

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Recording:
        """Map the file at `path` read-only and validate it.

        Raises FileNotFoundError if nothing is at `path` and RecordingError for anything else
        that keeps the file from being read (a folder, no permission, a damaged file).
        """
        path = Path(path)
        try:
            # Check before opening: opening a FIFO would block until something writes to it.
            if not stat.S_ISREG(path.stat().st_mode):
                raise RecordingError(f"{str(path)!r} is not a regular file; pass the path of a .nsm recording.")
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size < MIN_FILE_BYTES:
                    raise RecordingError(
                        f"{path.name} is {size} bytes long, too short to be a recording; "
                        "it is empty or was cut off. Record it again or copy it again."
                    )
                buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except RecordingError:
            raise
        except FileNotFoundError:
            raise FileNotFoundError(f"recording {str(path)!r} does not exist; check the path.") from None
        except PermissionError:
            raise RecordingError(f"cannot read {str(path)!r}: permission denied. Check the file's permissions.") from None
        except ValueError as error:  # a NUL character in the path, or a file emptied after the size check
            raise RecordingError(f"cannot open {str(path)!r}: invalid path or empty file ({error}).") from None
        except OSError as error:
            raise RecordingError(f"cannot read {str(path)!r}: {error.strerror or error}.") from None
        # The mapping is what is read from now on; its length, not the earlier stat, is the size.
        return cls(buffer, len(buffer), path.name)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, name: str = "upload") -> Recording:
        """Validate a recording held in memory, such as an upload.

        `bytes` are used as they are; any other buffer (bytearray, memoryview of any format or
        layout) is copied, so later changes to it do not reach the recording.
        """
        if isinstance(data, bytes):
            view = memoryview(data)
        else:
            try:
                view = memoryview(memoryview(data).tobytes())
            except TypeError:
                raise TypeError(
                    f"from_bytes() takes bytes, bytearray or memoryview, not {type(data).__name__}; "
                    "for a Streamlit upload pass uploaded_file.getvalue()."
                ) from None
        if len(view) < MIN_FILE_BYTES:
            raise RecordingError(
                f"{name} is {len(view)} bytes long, too short to be a recording; "
                "it is empty or was cut off. Upload the complete .nsm file."
            )
        return cls(view, len(view), name)

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
        step = self._check_step(step)
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
        self._check_unchanged()
        entry: TensorEntry = self._tensors[name]
        count = int(np.prod(entry.shape, dtype=np.int64))
        return np.frombuffer(self._buffer, dtype=entry.dtype, count=count, offset=entry.offset).reshape(entry.shape)

    def states_through_layers(self, step: int) -> np.ndarray:
        """Return float32 states [L+1, S, D] of `step`: the initial states, then each layer's."""
        step = self._check_step(step)
        initial = self.array("initial_states")[step][None]
        return np.concatenate([initial, self.array("states")[step]]).astype(np.float32)

    def frame(self, step: int, layer: int) -> Frame:
        """Read frame (step, layer); layer 0 is the initial states, 1..L the layers' outputs."""
        step = self._check_step(step)
        layer = operator.index(layer)
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

    def _check_step(self, step: int) -> int:
        step = operator.index(step)
        if not 0 <= step < self.num_steps:
            raise IndexError(f"step={step} is outside [0, {self.num_steps - 1}].")
        return step

    def _check_unchanged(self) -> None:
        """Raise if the mapped file has shrunk: reading past its new end would kill the process (SIGBUS).

        RecordingWriter replaces a file by a rename, which leaves an open mapping intact. Only
        tools that rewrite a file in place (cp, some editors) change the size of a mapped file.
        """
        if not isinstance(self._buffer, mmap.mmap):
            return
        try:
            current = self._buffer.size()
        except (OSError, ValueError) as error:
            raise RecordingError(f"{self.source} can no longer be read ({error}); open it again.") from None
        if current != self.size_bytes:
            raise RecordingError(
                f"{self.source} changed on disk since it was opened ({self.size_bytes:,} bytes, now "
                f"{current:,}); open it again."
            )


def open_recording(path: str | os.PathLike[str]) -> Recording:
    return Recording.open(path)
