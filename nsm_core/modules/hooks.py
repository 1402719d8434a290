"""Named observation points inside a model.

A HookPoint is an identity module placed where a tensor is worth seeing. Its dotted path in
the model (for example ``layers.0.router.hook_weights``) is the tensor's name. A forward hook
on it can read the tensor (recording) or return a replacement (interventions), and the rest of
the forward pass uses whatever the hook returned.
"""

from __future__ import annotations

import torch
from torch import nn


class HookPoint(nn.Module):
    """Identity module that exists to carry forward hooks."""

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor
