"""One NSM layer: route tokens to states, update the states, let them attend to each
other, then let the tokens read back from the states (hybrid attention)."""

from __future__ import annotations

import torch
from torch import nn

from nsm_core.config import NSMConfig
from nsm_core.modules.attention import MultiHeadAttention
from nsm_core.modules.gates import make_state_update
from nsm_core.modules.hooks import HookPoint
from nsm_core.modules.router import TokenRouter


class NSMLayer(nn.Module):
    """Hook points of a layer, with shapes:

    router.hook_weights            [B, H, T, S]  token→state routing
    update.hook_gates              [B, S, G]     mean gate activation per state
    state_attention.hook_weights   [B, H, S, S]  state↔state attention
    hook_states                    [B, S, D]     states after this layer
    readout.hook_weights           [B, H, T, S]  tokens reading from states (global)
    token_attention.hook_weights   [B, H, T, T]  token↔token attention (local), if enabled
    """

    def __init__(self, config: NSMConfig) -> None:
        super().__init__()
        dim, token_dim, heads = config.state_dim, config.token_dim, config.num_heads
        self.router = TokenRouter(config)
        self.update = make_state_update(config.gate, dim)
        self.state_attention = MultiHeadAttention(dim, dim, dim, heads)
        self.state_norm = nn.LayerNorm(dim)
        self.hook_states = HookPoint()

        self.readout = MultiHeadAttention(token_dim, dim, token_dim, heads)
        self.token_attention = (
            MultiHeadAttention(token_dim, token_dim, token_dim, heads) if config.token_attention else None
        )
        self.token_norm = nn.LayerNorm(token_dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(token_dim),
            nn.Linear(token_dim, 4 * token_dim),
            nn.GELU(),
            nn.Linear(4 * token_dim, token_dim),
        )

    def forward(
        self,
        tokens: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor | None,
        token_mask: torch.Tensor,
        state_mask: torch.Tensor,
        log_importance: torch.Tensor,
        write_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Map tokens [B, T, E] and states h, c [B, S, D] to their next values.

        Inactive states (state_mask False) pass through unchanged and are hidden from
        routing and attention; padding tokens (token_mask False) route nothing, and neither
        do tokens with write_mask False, although their routing weights are still computed
        and recorded. write_mask None means token_mask.
        """
        keep = state_mask[None, :, None]  # [1, S, 1]
        writers = token_mask if write_mask is None else write_mask

        # 1. Tokens write into states through the gated update.
        routed = self.router(tokens, h, state_mask, log_importance, writers)  # [B, S, D]
        h_next, c_next = self.update(routed, h, c)

        # 2. States exchange information, with a residual connection.
        h_next = self.state_norm(h_next + self.state_attention(h_next, h_next, state_mask))
        h_next = self.hook_states(torch.where(keep, h_next, h))
        if c_next is not None and c is not None:
            c_next = torch.where(keep, c_next, c)

        # 3. Tokens read global context from the states and local context from each other.
        context = self.readout(tokens, h_next, state_mask)
        if self.token_attention is not None:
            context = context + self.token_attention(tokens, tokens, token_mask)
        tokens = self.token_norm(tokens + context)
        tokens = tokens + self.mlp(tokens)

        return tokens, h_next, c_next
