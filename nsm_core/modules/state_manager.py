"""Initial states, importance scores, pruning and allocation of state slots."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

# sigmoid(3.0) ≈ 0.95: new slots start clearly above any sensible prune threshold.
INITIAL_IMPORTANCE_LOGIT = 3.0


class StateManager(nn.Module):
    """Owns the S state slots: their initial values, importance and which are in use.

    A slot is *allocated* until prune() frees it, and *active* for a forward pass when it is
    allocated and its importance (sigmoid of a learnable logit, in [0, 1]) is at least the
    threshold. At least one slot, the most important allocated one, is always active.
    """

    def __init__(self, num_states: int, state_dim: int) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.initial = nn.Parameter(torch.randn(num_states, state_dim) / math.sqrt(state_dim))
        self.importance_logits = nn.Parameter(torch.full((num_states,), INITIAL_IMPORTANCE_LOGIT))
        self.register_buffer("allocated", torch.ones(num_states, dtype=torch.bool))

    @property
    def num_states(self) -> int:
        return self.initial.shape[0]

    def importance(self) -> torch.Tensor:
        """Importance scores [S] in [0, 1]."""
        return torch.sigmoid(self.importance_logits)

    def log_importance(self) -> torch.Tensor:
        return F.logsigmoid(self.importance_logits)

    def active_mask(self, threshold: float = 0.0) -> torch.Tensor:
        """Return bool [S]: allocated slots whose importance is at least threshold, never none."""
        importance = self.importance().detach()
        active = self.allocated & (importance >= threshold)
        if not bool(active.any()):
            candidates = importance.masked_fill(~self.allocated, float("-inf"))
            active = torch.zeros_like(active)
            active[int(candidates.argmax())] = True
        return active

    def initial_states(self, batch_size: int) -> torch.Tensor:
        return self.initial.unsqueeze(0).expand(batch_size, -1, -1)  # [B, S, D]

    @torch.no_grad()
    def prune(self, threshold: float) -> list[int]:
        """Free every allocated slot below threshold, keeping at least one; return freed indices."""
        keep = self.active_mask(threshold)
        freed = (self.allocated & ~keep).nonzero().flatten().tolist()
        self.allocated &= keep
        if freed:
            logger.info("pruned states %s below importance %.3f", freed, threshold)
        return freed

    @torch.no_grad()
    def allocate(self, count: int = 1) -> list[int]:
        """Bring `count` slots into use, reusing freed slots before growing S; return indices.

        Growing replaces the parameters, so an optimizer built before must be rebuilt.
        """
        if count < 1:
            raise ValueError(f"count={count} must be at least 1.")
        free = (~self.allocated).nonzero().flatten().tolist()[:count]
        for index in free:
            self.initial[index].normal_(0.0, 1.0 / math.sqrt(self.state_dim))
            self.importance_logits[index] = INITIAL_IMPORTANCE_LOGIT
            self.allocated[index] = True

        grow = count - len(free)
        if grow:
            first_new = self.num_states
            new_rows = torch.randn(grow, self.state_dim, device=self.initial.device)
            new_rows = new_rows.to(self.initial.dtype) / math.sqrt(self.state_dim)
            new_logits = torch.full((grow,), INITIAL_IMPORTANCE_LOGIT, device=self.initial.device)
            self.initial = nn.Parameter(torch.cat([self.initial.data, new_rows]))
            self.importance_logits = nn.Parameter(
                torch.cat([self.importance_logits.data, new_logits.to(self.importance_logits.dtype)])
            )
            self.allocated = torch.cat(
                [self.allocated, torch.ones(grow, dtype=torch.bool, device=self.allocated.device)]
            )
            free += list(range(first_new, first_new + grow))
        logger.info("allocated states %s", free)
        return free
