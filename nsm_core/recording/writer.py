"""Streaming, atomic writer of recording files.

The safetensors layout is fixed by the shapes, which are known before the first step, so the
header is written first and each step's slices go straight to their offsets. Memory stays at
one step however long the recording. The file is written under a temporary name and renamed
into place only after every step has been written and synced, so an interrupted recording
never leaves a file under the requested name. Until then the header length stays 0, so a
temporary file left behind by a killed process is rejected as unfinished even if renamed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import struct
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from nsm_core.recording.errors import RecordingError
from nsm_core.recording.labels import legible_text
from nsm_core.recording.schema import (
    FIELDS,
    FLOAT_DTYPES,
    FORMAT_NAME,
    MANIFEST_KEY,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    describe_shape,
    field_shape,
    step_shape,
)
from nsm_core.recording.validate import NON_EMPTY_AXES, validate_manifest

logger = logging.getLogger(__name__)

# The safetensors format requires the data section to start on an 8-byte boundary.
HEADER_ALIGNMENT = 8
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
# A random name of 8 hex digits matches a given leftover file with probability 16^-8.
TEMPORARY_NAME_ATTEMPTS = 100
TEMPORARY_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows only


class RecordingWriter:
    """Write a recording of P steps, one step at a time.

    Use as a context manager: leaving the block normally commits the file, leaving it with
    an exception deletes the temporary file and leaves `path` as it was.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dims: dict[str, int],
        fields: list[str],
        manifest: dict[str, Any],
        dtype: str = "float32",
    ) -> None:
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype={dtype!r} is invalid; use one of {sorted(FLOAT_DTYPES)}.")
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown recording field(s) {unknown}; known: {sorted(FIELDS)}.")
        missing = [name for name in REQUIRED_FIELDS if name not in fields]
        if missing:
            raise ValueError(f"a recording needs the field(s) {missing}.")
        for name in fields:
            for axis in FIELDS[name].axes:
                if type(dims.get(axis)) is not int or dims[axis] < 0:
                    raise ValueError(f"dims[{axis!r}]={dims.get(axis)!r} must be a non-negative integer.")
        for axis in NON_EMPTY_AXES:
            if dims[axis] < 1:
                raise ValueError(f"a recording needs at least one of each of P, L, S and D, got {axis}={dims[axis]}.")

        self.path = Path(path)
        self.dims = dict(dims)
        self.fields = [name for name in FIELDS if name in fields]  # schema order
        self.dtype = dtype
        self.manifest = {
            **manifest,
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            "dims": self.dims,
            "fields": self.fields,
            "dtype": dtype,
        }
        self._manifest_json = self._checked_manifest_json()
        self._numpy_dtypes = {
            name: np.dtype(np.uint8) if FIELDS[name].kind == "mask" else np.dtype(dtype)
            for name in self.fields
        }
        self._offsets: dict[str, int] = {}
        self._written_steps: set[int] = set()
        self._file = None
        self._temp_path: Path | None = None
        self._header_length = 0
        # Finite values that became ±Inf when stored as float16, per field.
        self.float16_overflow: dict[str, int] = {}

    def _checked_manifest_json(self) -> str:
        """Return the manifest as JSON after checking it as the reader will; raise ValueError if it fails."""
        for key in ("token_labels", "step_labels", "gate_names"):
            if key not in self.manifest:
                raise ValueError(f"the manifest lacks {key!r}; build it with recorder.build_manifest().")
        self.manifest["step_labels"] = [_legible(label) for label in self.manifest["step_labels"]]
        self.manifest["gate_names"] = [_legible(label) for label in self.manifest["gate_names"]]
        self.manifest["token_labels"] = [
            [_legible(label) for label in labels] if isinstance(labels, (list, tuple)) else labels
            for labels in self.manifest["token_labels"]
        ]
        try:
            text = json.dumps(self.manifest, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"the manifest of {self.path.name} cannot be stored as JSON ({error}); pass plain "
                "strings, finite numbers, lists and dicts in model_info and extra."
            ) from None
        try:
            validate_manifest(json.loads(text), f"the manifest of {self.path.name}",
                              fix="Fix the arguments of RecordingWriter.")
        except RecordingError as error:
            raise ValueError(str(error)) from None
        return text

    def __enter__(self) -> RecordingWriter:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary file and write the header."""
        header: dict[str, Any] = {"__metadata__": {MANIFEST_KEY: self._manifest_json}}
        offset = 0
        for name in self.fields:
            shape = field_shape(name, self.dims)
            nbytes = int(np.prod(shape, dtype=np.int64)) * self._numpy_dtypes[name].itemsize
            kind = "U8" if FIELDS[name].kind == "mask" else FLOAT_DTYPES[self.dtype]
            header[name] = {"dtype": kind, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self._offsets[name] = offset
            offset += nbytes
        self._data_size = offset

        header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
        header_bytes += b" " * (-len(header_bytes) % HEADER_ALIGNMENT)
        self._data_start = 8 + len(header_bytes)

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = self._create_temporary_file()
            self._header_length = len(header_bytes)
            self._file.write(struct.pack("<Q", 0))  # the real length is written by commit()
            self._file.write(header_bytes)
            self._file.flush()  # steps go straight to the descriptor, after the header
            # Reserve the data section; unwritten steps stay zero until commit() rejects them.
            self._file.truncate(self._data_start + self._data_size)
        except BaseException:  # also SystemExit from a signal handler
            self.abort()
            raise
        logger.debug("writing %s (%d data bytes) via %s", self.path, self._data_size, self._temp_path)

    def _create_temporary_file(self) -> BinaryIO:
        """Create `.NAME.XXXXXXXX.tmp` beside `path`, naming it in _temp_path before it exists.

        Unlike tempfile.mkstemp, which returns the name only after creating the file, this
        leaves no moment in which a signal could strand a file that abort() cannot find.
        """
        for _ in range(TEMPORARY_NAME_ATTEMPTS):
            self._temp_path = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
            try:
                descriptor = os.open(self._temp_path, TEMPORARY_FILE_FLAGS, 0o600)
            except FileExistsError:
                continue
            return os.fdopen(descriptor, "w+b")
        raise FileExistsError(
            f"failed to create a temporary file beside {self.path} in {TEMPORARY_NAME_ATTEMPTS} attempts; "
            f"delete leftover .{self.path.name}.*.tmp files there."
        )

    def write_step(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """Write step `step` of every field; arrays[name] has the field's shape without P."""
        if self._file is None:
            raise RuntimeError("write_step() called outside the writer's context; use `with RecordingWriter(...)`.")
        if not 0 <= step < self.dims["P"]:
            raise ValueError(f"step={step} is outside [0, {self.dims['P'] - 1}].")
        missing = [name for name in self.fields if name not in arrays]
        if missing:
            raise ValueError(f"step {step} lacks the field(s) {missing}.")

        for name in self.fields:
            expected = step_shape(name, self.dims)
            array = np.asarray(arrays[name])
            if array.shape != expected:
                raise ValueError(
                    f"field {name!r} at step {step} has shape {array.shape}, expected "
                    f"{describe_shape(FIELDS[name].axes[1:], expected)}."
                )
            with np.errstate(over="ignore"):  # float16 overflow is counted below, not warned per cast
                data = np.ascontiguousarray(array, dtype=self._numpy_dtypes[name])
            if data.dtype == np.float16:
                self._count_float16_overflow(name, step, array, data)
            self._write_at(self._data_start + self._offsets[name] + step * data.nbytes, data)
        self._written_steps.add(step)

    def _count_float16_overflow(self, name: str, step: int, array: np.ndarray, stored: np.ndarray) -> None:
        overflowed = int(np.count_nonzero(np.isinf(stored) & np.isfinite(array)))
        if overflowed:
            if name not in self.float16_overflow:
                logger.warning(
                    "%s: %d value(s) of %r at step %d lie beyond the float16 range ±%g and are stored as "
                    "±Inf; record with dtype='float32' to keep them", self.path.name, overflowed, name, step,
                    FLOAT16_MAX,
                )
            self.float16_overflow[name] = self.float16_overflow.get(name, 0) + overflowed

    def _write_at(self, offset: int, data: np.ndarray) -> None:
        """Write the bytes of the C-contiguous array `data` at `offset`, without copying them first."""
        if data.nbytes == 0:
            return  # memoryview cannot cast an empty shape, and there is nothing to write
        view = memoryview(data).cast("B")
        if not hasattr(os, "pwrite"):  # Windows
            self._file.seek(offset)
            self._file.write(view)
            return
        # One positioned system call per field: no seek, and no flush of Python's buffer.
        # pwrite may write less than asked (Linux caps one call near 2 GiB), so loop.
        descriptor = self._file.fileno()
        while view:
            written = os.pwrite(descriptor, view, offset)
            view, offset = view[written:], offset + written

    def commit(self) -> Path:
        """Write the header length, sync and rename the file to `path`; raise if a step is missing.

        If anything fails, the temporary file is deleted and `path` is left as it was.
        """
        if self._file is None or self._temp_path is None:
            raise RuntimeError("commit() called before open().")
        missing = sorted(set(range(self.dims["P"])) - self._written_steps)
        if missing:
            self.abort()
            raise RecordingError(
                f"{len(missing)} of {self.dims['P']} steps were never written (first: {missing[0]}); "
                f"{self.path} was not created."
            )
        try:
            self._file.flush()
            os.fsync(self._file.fileno())  # all data is on disk before the header says it is complete
            self._file.seek(0)
            self._file.write(struct.pack("<Q", self._header_length))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.replace(self._temp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._temp_path = None
        _sync_folder(self.path.parent)
        if self.float16_overflow:
            logger.warning("%s: values stored as ±Inf after float16 overflow: %s", self.path.name, self.float16_overflow)
        logger.info("wrote %s (%d steps)", self.path, self.dims["P"])
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; `path` is left untouched."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp_path is not None:
            self._temp_path.unlink(missing_ok=True)
            self._temp_path = None


def _legible(label: Any) -> Any:
    return legible_text(label) if isinstance(label, str) else label


def _sync_folder(folder: Path) -> None:
    """Sync the folder entry of a renamed file, so that the rename survives a power loss (POSIX only)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        logger.debug("could not sync folder %s: %s", folder, error)
    finally:
        os.close(descriptor)
