"""Validated configuration of an NSM model.

Shape letters used across the project (the recording schema documents them once more):
B batch, T tokens, S states, D state dim, E token dim, L layers, H heads, G gate channels.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

GATE_TYPES = ("gru", "lstm")

# Sizes beyond these are almost certainly a typo (a missing decimal point, an extra zero),
# and they would allocate gigabytes before anything useful happens.
MAX_STATES = 4096
MAX_DIM = 8192
MAX_LAYERS = 256
MAX_HEADS = 64


class ConfigError(ValueError):
    """Error for an NSM config field whose value is outside its allowed range."""


@dataclass(frozen=True)
class NSMConfig:
    """Hyperparameters of an NSM model.

    Every field is checked in ``__post_init__``; an invalid value raises ConfigError that
    names the field, the value and the allowed range.
    """

    num_states: int = 8  # S, persistent state slots
    state_dim: int = 64  # D
    token_dim: int = 64  # E, width of the token stream
    num_layers: int = 2  # L
    num_heads: int = 4  # H, shared by routing, state attention and readout
    gate: str = "gru"  # "gru" or "lstm"
    routing_temperature: float = 1.0  # divides routing logits; lower is sharper
    routing_top_k: int | None = None  # keep the k largest routing weights per token
    prune_threshold: float = 0.0  # states with importance below this are inactive; 0 keeps all
    token_attention: bool = True  # local token↔token attention beside the readout from states
    vocab_size: int = 256  # byte-level tokens by default
    input_dim: int | None = None  # feature vectors of this width instead of token ids
    num_classes: int | None = None  # per-sequence head; None means no head
    num_token_classes: int | None = None  # per-token head; None means no head
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int(self, "num_states", 1, MAX_STATES)
        _check_int(self, "state_dim", 1, MAX_DIM)
        _check_int(self, "token_dim", 1, MAX_DIM)
        _check_int(self, "num_layers", 1, MAX_LAYERS)
        _check_int(self, "num_heads", 1, MAX_HEADS)
        _check_int(self, "vocab_size", 1, 10_000_000)
        _check_int(self, "seed", 0, 2**63 - 1)

        if self.gate not in GATE_TYPES:
            raise ConfigError(f"gate={self.gate!r} is invalid; use one of {', '.join(GATE_TYPES)}.")

        for dim_field in ("state_dim", "token_dim"):
            if getattr(self, dim_field) % self.num_heads != 0:
                raise ConfigError(
                    f"{dim_field}={getattr(self, dim_field)} is not divisible by "
                    f"num_heads={self.num_heads}; choose a multiple of num_heads."
                )

        temperature = self.routing_temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ConfigError(f"routing_temperature={temperature!r} must be a number in [0.01, 100].")
        if not 0.01 <= float(temperature) <= 100.0:
            raise ConfigError(f"routing_temperature={temperature!r} is outside [0.01, 100].")

        if self.routing_top_k is not None:
            _check_int(self, "routing_top_k", 1, self.num_states)

        threshold = self.prune_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ConfigError(f"prune_threshold={threshold!r} must be a number in [0, 1].")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(
                f"prune_threshold={threshold!r} is outside [0, 1]; importance scores are "
                "sigmoid outputs, so thresholds outside that range prune nothing or everything."
            )

        if not isinstance(self.token_attention, bool):
            raise ConfigError(f"token_attention={self.token_attention!r} must be true or false.")
        for optional in ("input_dim", "num_classes", "num_token_classes"):
            if getattr(self, optional) is not None:
                _check_int(self, optional, 1, 10_000_000)

    @property
    def head_dim(self) -> int:
        return self.state_dim // self.num_heads

    @property
    def gate_names(self) -> tuple[str, ...]:
        """Names of the recorded gate channels (G) in the order they are stored."""
        return ("update", "reset") if self.gate == "gru" else ("input", "forget", "output")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> NSMConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NSMConfig:
        """Build a config from a dict such as a checkpoint's metadata, rejecting unknown keys."""
        if not isinstance(values, dict):
            raise ConfigError(f"config must be a JSON object, got {type(values).__name__}.")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {unknown}; known fields are {sorted(known)}."
            )
        return cls(**values)


def _check_int(config: NSMConfig, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} must be an integer in [{low}, {high}].")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside the allowed range [{low}, {high}].")
