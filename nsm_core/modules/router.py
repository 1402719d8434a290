"""Token→state routing: every token spreads a unit of weight over the states."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nsm_core.config import NSMConfig
from nsm_core.modules.hooks import HookPoint

# Added to a state's routed mass before normalising, so that a state that receives almost
# nothing gets almost nothing instead of a noisy average of tiny weights.
ROUTING_MASS_PRIOR = 1.0


class TokenRouter(nn.Module):
    """Multi-head softmax routing of tokens [B, T, E] onto states [B, S, D].

    For each head, token t's weights over the states sum to 1 (a softmax over S with
    inactive states masked out, then optionally kept to the top-k). State s receives
    sum_t w[t, s] * value(token_t) / (sum_t w[t, s] + ROUTING_MASS_PRIOR).
    """

    def __init__(self, config: NSMConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.temperature = float(config.routing_temperature)
        self.top_k = config.routing_top_k
        self.query = nn.Linear(config.token_dim, config.state_dim)
        self.key = nn.Linear(config.state_dim, config.state_dim)
        self.value = nn.Linear(config.token_dim, config.state_dim)
        self.hook_weights = HookPoint()  # [B, H, T, S]

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, N, hd]

    def routing_weights(
        self,
        tokens: torch.Tensor,
        states: torch.Tensor,
        state_mask: torch.Tensor,
        log_importance: torch.Tensor,
    ) -> torch.Tensor:
        """Return routing weights [B, H, T, S]; rows sum to 1 over active states.

        state_mask: bool [S], True for active states. log_importance: [S], added to the
        logits so that important states attract more tokens.
        """
        q = self._split_heads(self.query(tokens))  # [B, H, T, hd]
        k = self._split_heads(self.key(states))  # [B, H, S, hd]

        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, H, T, S]
        logits = (logits + log_importance) / self.temperature
        logits = logits.masked_fill(~state_mask, float("-inf"))

        num_active = int(state_mask.sum())
        if self.top_k is not None and self.top_k < num_active:
            kth_largest = logits.topk(self.top_k, dim=-1).values[..., -1:]  # [B, H, T, 1]
            logits = logits.masked_fill(logits < kth_largest, float("-inf"))

        return F.softmax(logits, dim=-1)

    def routed_content(
        self, weights: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """Return what each state receives, [B, S, D], from weights [B, H, T, S].

        token_mask: bool [B, T], False for padding tokens, which route nothing.
        """
        v = self._split_heads(self.value(tokens))  # [B, H, T, hd]
        weights = weights * token_mask[:, None, :, None]

        routed = weights.transpose(-1, -2) @ v  # [B, H, S, hd]
        mass = weights.sum(dim=2)  # [B, H, S]
        routed = routed / (mass[..., None] + ROUTING_MASS_PRIOR)

        batch, _, num_states, _ = routed.shape
        return routed.transpose(1, 2).reshape(batch, num_states, -1)

    def forward(
        self,
        tokens: torch.Tensor,
        states: torch.Tensor,
        state_mask: torch.Tensor,
        log_importance: torch.Tensor,
        token_mask: torch.Tensor,
    ) -> torch.Tensor:
        weights = self.hook_weights(self.routing_weights(tokens, states, state_mask, log_importance))
        return self.routed_content(weights, tokens, token_mask)
