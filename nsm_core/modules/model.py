"""The NSM model: embedding → L layers of hybrid attention → per-token and per-sequence heads."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nsm_core.config import NSMConfig
from nsm_core.modules.hooks import HookPoint
from nsm_core.modules.layer import NSMLayer
from nsm_core.modules.state_manager import StateManager


@dataclass
class NSMState:
    """States carried from one step (input chunk) to the next: h and, for LSTM gates, c."""

    h: torch.Tensor  # [B, S, D]
    c: torch.Tensor | None = None  # [B, S, D]

    def detach(self) -> NSMState:
        return NSMState(self.h.detach(), None if self.c is None else self.c.detach())


@dataclass
class NSMOutput:
    tokens: torch.Tensor  # [B, T, E] final token stream
    state: NSMState  # states after the last layer, to feed into the next step
    token_logits: torch.Tensor | None  # [B, T, num_token_classes]
    sequence_logits: torch.Tensor | None  # [B, num_classes]


def sinusoidal_positions(length: int, dim: int, offset: int = 0) -> torch.Tensor:
    """Fixed position codes [length, dim]; positions start at offset so chunks continue."""
    position = torch.arange(offset, offset + length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return codes


class NSMModel(nn.Module):
    """Neural State Machine with S persistent state slots.

    Model-level hook points: ``hook_initial_states`` [B, S, D], ``hook_importance`` [S] and
    ``hook_active`` [S] (bool as float), each called once per forward pass; each layer's
    hook points are listed in NSMLayer.
    """

    def __init__(self, config: NSMConfig) -> None:
        super().__init__()
        self.config = config
        # Seeded construction that leaves the caller's global RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._build(config)

    def _build(self, config: NSMConfig) -> None:
        if config.input_dim is None:
            self.embed: nn.Module = nn.Embedding(config.vocab_size, config.token_dim)
        else:
            self.embed = nn.Linear(config.input_dim, config.token_dim)
        self.states = StateManager(config.num_states, config.state_dim)
        self.layers = nn.ModuleList(NSMLayer(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.token_dim)
        self.token_head = (
            nn.Linear(config.token_dim, config.num_token_classes) if config.num_token_classes else None
        )
        self.sequence_head = (
            nn.Linear(config.state_dim + config.token_dim, config.num_classes) if config.num_classes else None
        )
        self.hook_initial_states = HookPoint()
        self.hook_importance = HookPoint()
        self.hook_active = HookPoint()

    def embed_inputs(self, inputs: torch.Tensor, position_offset: int = 0) -> torch.Tensor:
        """Embed token ids [B, T] or feature vectors [B, T, input_dim] to [B, T, E]."""
        config = self.config
        if config.input_dim is None:
            if inputs.dtype not in (torch.int32, torch.int64) or inputs.dim() != 2:
                raise ValueError(
                    f"expected token ids of shape [B, T] and an integer dtype, got "
                    f"{tuple(inputs.shape)} {inputs.dtype}; pass input_dim in the config for vectors."
                )
            if inputs.numel() and (int(inputs.min()) < 0 or int(inputs.max()) >= config.vocab_size):
                raise ValueError(
                    f"token ids range over [{int(inputs.min())}, {int(inputs.max())}] but "
                    f"vocab_size={config.vocab_size}; ids must lie in [0, {config.vocab_size - 1}]."
                )
        elif inputs.dim() != 3 or inputs.shape[-1] != config.input_dim:
            raise ValueError(
                f"expected feature vectors of shape [B, T, {config.input_dim}], got {tuple(inputs.shape)}."
            )

        tokens = self.embed(inputs)
        positions = sinusoidal_positions(inputs.shape[1], config.token_dim, position_offset)
        return tokens + positions.to(tokens.dtype).to(tokens.device)

    def forward(
        self,
        inputs: torch.Tensor,
        state: NSMState | None = None,
        token_mask: torch.Tensor | None = None,
        position_offset: int = 0,
        write_mask: torch.Tensor | None = None,
    ) -> NSMOutput:
        """Run all layers on one step of input.

        inputs: token ids [B, T] or features [B, T, input_dim]. state: the previous step's
        output state, or None to start from the learned initial states. token_mask: bool
        [B, T], False for padding. write_mask: bool [B, T], False for tokens that only read
        from the states (such as recall queries); None lets every real token write.
        """
        tokens = self.embed_inputs(inputs, position_offset)  # [B, T, E]
        batch, length, _ = tokens.shape
        if token_mask is None:
            token_mask = torch.ones(batch, length, dtype=torch.bool, device=tokens.device)
        write_mask = self._check_write_mask(write_mask, token_mask)

        if state is None:
            h = self.states.initial_states(batch).to(tokens.dtype)
            c = None
        else:
            h, c = state.h, state.c
        h = self.hook_initial_states(h)  # [B, S, D]

        importance = self.hook_importance(self.states.importance())  # [S]
        state_mask = self.states.active_mask(self.config.prune_threshold)  # [S]
        self.hook_active(state_mask.to(importance.dtype))
        log_importance = self.states.log_importance().to(tokens.dtype)
        if self.config.gate == "lstm" and c is None:
            c = torch.zeros_like(h)

        for layer in self.layers:
            tokens, h, c = layer(tokens, h, c, token_mask, state_mask, log_importance, write_mask)

        tokens = self.final_norm(tokens)
        token_logits = self.token_head(tokens) if self.token_head is not None else None
        sequence_logits = None
        if self.sequence_head is not None:
            pooled_states = (h * state_mask[None, :, None]).sum(1) / state_mask.sum()  # [B, D]
            weights = token_mask[..., None].to(tokens.dtype)
            pooled_tokens = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # [B, E]
            sequence_logits = self.sequence_head(torch.cat([pooled_states, pooled_tokens], dim=-1))

        return NSMOutput(tokens, NSMState(h, c), token_logits, sequence_logits)

    @staticmethod
    def _check_write_mask(write_mask: torch.Tensor | None, token_mask: torch.Tensor) -> torch.Tensor:
        """Return the bool [B, T] mask of tokens that route into states: real and allowed to write."""
        if write_mask is None:
            return token_mask
        if write_mask.dtype != torch.bool or write_mask.shape != token_mask.shape:
            raise ValueError(
                f"write_mask must be bool of shape {tuple(token_mask.shape)} (one flag per token), "
                f"got {write_mask.dtype} {tuple(write_mask.shape)}."
            )
        return token_mask & write_mask.to(token_mask.device)
