"""Gated state updates in the style of GRU and LSTM cells, applied to every state slot."""

from __future__ import annotations

import torch
from torch import nn

from nsm_core.modules.hooks import HookPoint


class GRUStateUpdate(nn.Module):
    """GRU-style update of states h [B, S, D] from routed input x [B, S, D].

    Same equations and weight layout as torch.nn.GRUCell (reset, update, candidate):
    r = σ(W_r x + U_r h), z = σ(W_z x + U_z h), n = tanh(W_n x + r ⊙ U_n h),
    h' = (1 − z) ⊙ n + z ⊙ h. Records the mean over D of (z, r) as gates [B, S, 2].
    """

    gate_names = ("update", "reset")

    def __init__(self, state_dim: int) -> None:
        super().__init__()
        self.input_proj = nn.Linear(state_dim, 3 * state_dim)
        self.hidden_proj = nn.Linear(state_dim, 3 * state_dim)
        self.hook_gates = HookPoint()  # [B, S, G]

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        x_r, x_z, x_n = self.input_proj(x).chunk(3, dim=-1)  # each [B, S, D]
        h_r, h_z, h_n = self.hidden_proj(h).chunk(3, dim=-1)

        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        self.hook_gates(torch.stack([update.mean(-1), reset.mean(-1)], dim=-1))  # [B, S, 2]

        return (1 - update) * candidate + update * h, None


class LSTMStateUpdate(nn.Module):
    """LSTM-style update of states (h, c) [B, S, D] from routed input x [B, S, D].

    Same equations and weight layout as torch.nn.LSTMCell (input, forget, cell, output):
    c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'). Records the mean over D of (i, f, o) as
    gates [B, S, 3].
    """

    gate_names = ("input", "forget", "output")

    def __init__(self, state_dim: int) -> None:
        super().__init__()
        self.input_proj = nn.Linear(state_dim, 4 * state_dim)
        self.hidden_proj = nn.Linear(state_dim, 4 * state_dim)
        self.hook_gates = HookPoint()  # [B, S, G]

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if c is None:
            c = torch.zeros_like(h)
        i, f, g, o = (self.input_proj(x) + self.hidden_proj(h)).chunk(4, dim=-1)  # each [B, S, D]

        input_gate = torch.sigmoid(i)
        forget_gate = torch.sigmoid(f)
        output_gate = torch.sigmoid(o)
        self.hook_gates(
            torch.stack([input_gate.mean(-1), forget_gate.mean(-1), output_gate.mean(-1)], dim=-1)
        )  # [B, S, 3]

        c_next = forget_gate * c + input_gate * torch.tanh(g)
        return output_gate * torch.tanh(c_next), c_next


def make_state_update(gate: str, state_dim: int) -> GRUStateUpdate | LSTMStateUpdate:
    if gate == "gru":
        return GRUStateUpdate(state_dim)
    if gate == "lstm":
        return LSTMStateUpdate(state_dim)
    raise ValueError(f"gate={gate!r} is invalid; use 'gru' or 'lstm'.")
