"""Model checkpoints: one safetensors file with the weights and a JSON config (no pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nsm_core.config import ConfigError, NSMConfig
from nsm_core.modules import NSMModel

CONFIG_KEY = "nsm_config"
INFO_KEY = "nsm_info"


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged or does not match its config."""


def save_checkpoint(model: NSMModel, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> Path:
    """Write weights and config atomically; `info` (task, accuracy, ...) must be JSON-serialisable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {CONFIG_KEY: model.config.to_json(), INFO_KEY: json.dumps(info or {})}

    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    try:
        save_file(tensors, temp_name, metadata=metadata)
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[NSMModel, dict[str, Any]]:
    """Return (model in eval mode, info dict) or raise CheckpointError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; check the path.")
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path.name} is not a readable safetensors checkpoint ({error}); "
            "checkpoints are written by `python -m nsm_core train`."
        ) from None

    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path.name} has no {CONFIG_KEY!r} metadata; it is not an NSM checkpoint.")
    try:
        config = NSMConfig.from_dict(json.loads(metadata[CONFIG_KEY]))
        info = json.loads(metadata.get(INFO_KEY, "{}"))
    except (json.JSONDecodeError, ConfigError, TypeError) as error:
        raise CheckpointError(f"{path.name} has an invalid config: {error}") from None

    model = NSMModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path.name} does not match its config: missing weights {missing[:5]}, "
            f"unexpected weights {unexpected[:5]}."
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{path.name}: weight {name!r} has shape {tuple(tensor.shape)}, but the config "
                f"needs {tuple(expected[name].shape)}."
            )
    model.load_state_dict(tensors)
    model.eval()
    return model, info if isinstance(info, dict) else {}
