"""The teaching example: states evolved over layers by small random updates."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nsm_core.modules.hooks import HookPoint


@dataclass(frozen=True)
class TutorialConfig:
    num_states: int = 5  # S
    state_dim: int = 10  # D
    num_layers: int = 4  # L
    noise_scale: float = 0.1  # standard deviation of each layer's update
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("num_states", 1), ("state_dim", 1), ("num_layers", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} must be an integer of at least {low}.")
        if not 0.0 <= float(self.noise_scale) <= 100.0:
            raise ValueError(f"noise_scale={self.noise_scale!r} is outside [0, 100].")


class TutorialDynamics(nn.Module):
    """states_0 = randn(S, D); states_l = states_{l-1} + noise_scale * randn(S, D).

    Draws come from a private generator seeded with config.seed, which yields the same
    numbers as ``torch.manual_seed(seed)`` followed by the same ``torch.randn`` calls.
    Successive forward calls (steps) continue the same random stream from the last states.
    Hook points: ``hook_initial_states`` and ``layers.{l}.hook_states``, each [1, S, D].
    """

    def __init__(self, config: TutorialConfig | None = None) -> None:
        super().__init__()
        self.config = config or TutorialConfig()
        self.layers = nn.ModuleList(_TutorialLayer() for _ in range(self.config.num_layers))
        self.hook_initial_states = HookPoint()
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def reset(self) -> None:
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def forward(self, states: torch.Tensor | None = None) -> torch.Tensor:
        """Return the states [1, S, D] after all layers, starting from `states` if given."""
        shape = (self.config.num_states, self.config.state_dim)
        if states is None:
            states = torch.randn(shape, generator=self.generator).unsqueeze(0)
        states = self.hook_initial_states(states)
        for layer in self.layers:
            noise = torch.randn(shape, generator=self.generator).unsqueeze(0)
            states = layer.hook_states(states + self.config.noise_scale * noise)
        return states


class _TutorialLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_states = HookPoint()
