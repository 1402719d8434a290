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
    """Return (model in eval mode, info dict) or raise CheckpointError naming the problem.

    The file is read with safetensors, which parses a JSON header and raw arrays and never
    unpickles, so a pickle renamed to .safetensors is rejected unread. Weight names and shapes
    are checked against the config before any weight is loaded or the model is built.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; check the path.")
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            config = _config_from_metadata(metadata, path)
            # Shapes only: a config may claim a model far larger than memory.
            with torch.device("meta"):
                expected = {name: tuple(tensor.shape) for name, tensor in NSMModel(config).state_dict().items()}
            _check_weights(path, expected, {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()})
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(
            f"{path.name} is not a readable safetensors checkpoint ({error}); "
            "checkpoints are written by `python -m nsm_core train`."
        ) from None

    model = NSMModel(config)
    model.load_state_dict(tensors)
    model.eval()
    info = _load_json_text(metadata.get(INFO_KEY, "{}"), INFO_KEY, path)
    return model, info if isinstance(info, dict) else {}


def _config_from_metadata(metadata: dict[str, str], path: Path) -> NSMConfig:
    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path.name} has no {CONFIG_KEY!r} metadata; it is not an NSM checkpoint.")
    try:
        return NSMConfig.from_dict(_load_json_text(metadata[CONFIG_KEY], CONFIG_KEY, path))
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{path.name} has an invalid config: {error}") from None


def _load_json_text(text: str, key: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        problem = "nests JSON too deeply"
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        problem = f"is not valid JSON ({error})"
    raise CheckpointError(f"{path.name} has invalid {key!r} metadata: it {problem}. Save the checkpoint again.")


def _check_weights(path: Path, expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path.name} does not match its config: missing weights {missing[:5]}, "
            f"unexpected weights {unexpected[:5]}."
        )
    for name, shape in shapes.items():
        if shape != expected[name]:
            raise CheckpointError(f"{path.name}: weight {name!r} has shape {shape}, but the config needs {expected[name]}.")
