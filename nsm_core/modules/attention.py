"""Multi-head attention that exposes its per-head weights at a hook point."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nsm_core.modules.hooks import HookPoint


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of queries [B, Q, query_dim] over keys [B, K, key_dim].

    The weights [B, H, Q, K] pass through ``hook_weights`` before they mix the values, so
    a hook that replaces them changes the output.
    """

    def __init__(self, query_dim: int, key_dim: int, out_dim: int, num_heads: int) -> None:
        super().__init__()
        if out_dim % num_heads != 0:
            raise ValueError(f"out_dim={out_dim} is not divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = out_dim // num_heads
        self.query = nn.Linear(query_dim, out_dim)
        self.key = nn.Linear(key_dim, out_dim)
        self.value = nn.Linear(key_dim, out_dim)
        self.out = nn.Linear(out_dim, out_dim)
        self.hook_weights = HookPoint()  # [B, H, Q, K]

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, N, hd]

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return the attended values [B, Q, out_dim].

        key_mask: bool [K] or [B, K], True where a key may be attended to. A query whose
        keys are all masked gets NaN weights, which the recorder flags.
        """
        q = self._split_heads(self.query(queries))  # [B, H, Q, hd]
        k = self._split_heads(self.key(keys))  # [B, H, K, hd]
        v = self._split_heads(self.value(keys))  # [B, H, K, hd]

        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, H, Q, K]
        if key_mask is not None:
            mask = key_mask if key_mask.dim() == 1 else key_mask[:, None, None, :]
            logits = logits.masked_fill(~mask, float("-inf"))
        weights = self.hook_weights(F.softmax(logits, dim=-1))  # [B, H, Q, K]

        mixed = weights @ v  # [B, H, Q, hd]
        batch, _, length, _ = mixed.shape
        mixed = mixed.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim)
        return self.out(mixed)
