"""Build small recordings and take their bytes apart, for tests that damage files on purpose.

A recording is an 8-byte little-endian header length, a JSON header whose ``__metadata__``
entry contains the manifest as a JSON string, then the raw tensor data.
"""

from __future__ import annotations

import copy
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel
from nsm_core.recording.runs import record_nsm
from nsm_core.recording.schema import MANIFEST_KEY
from nsm_core.tokenize import byte_labels, encode_bytes

# 2 steps of 3 and 2 tokens (T=3, so step 1 is padded), S=4, D=8, L=2, H=2, GRU gates.
SMALL_CONFIG = NSMConfig(num_states=4, state_dim=8, token_dim=8, num_layers=2, num_heads=2, seed=3)
SMALL_TEXT = "abcde"


def record_small(path: Path, text: str = SMALL_TEXT, steps: int = 2, **config: Any) -> Path:
    model = NSMModel(SMALL_CONFIG.replace(**config)).eval()
    return record_nsm(model, encode_bytes(text), path, token_labels=byte_labels(text), num_steps=steps)


@dataclass
class RecordingParts:
    """The decoded pieces of a recording; join() puts them back together as bytes."""

    header: dict[str, Any]  # tensor entries; __metadata__ is replaced by `manifest` on join
    manifest: Any
    data: bytes

    @classmethod
    def split(cls, blob: bytes) -> RecordingParts:
        (header_size,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + header_size])
        manifest = json.loads(header["__metadata__"][MANIFEST_KEY])
        return cls(header, manifest, blob[8 + header_size :])

    def copy(self) -> RecordingParts:
        return RecordingParts(copy.deepcopy(self.header), copy.deepcopy(self.manifest), self.data)

    def join(self, manifest_text: str | None = None, header_text: str | None = None) -> bytes:
        """Serialise again; manifest_text or header_text replace the JSON verbatim when given."""
        header = copy.deepcopy(self.header)
        header["__metadata__"] = {MANIFEST_KEY: manifest_text if manifest_text is not None else json.dumps(self.manifest)}
        text = header_text if header_text is not None else json.dumps(header)
        encoded = text.encode("utf-8")
        return struct.pack("<Q", len(encoded)) + encoded + self.data
